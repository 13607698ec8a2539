import Foundation
import LruNet

/// The statistics of every finished run under a results directory, one section per group
/// (data set, recipe, epochs), and the verdict of the rule docs/reuse-study.md fixed before the runs.
struct StudyReport {
    struct Arm {
        let reuse: Int
        let runs: [StudyResult]
        var accuracies: [Double] { runs.map(\.testAccuracy) }
    }
    struct Group {
        let name: String
        let arms: [Arm]
        let curves: [Int: [[Double]]]   // N -> per run, test accuracy per epoch
        var epochs: Int { arms[0].runs[0].epochs }
        /// The group's name without its budget: groups that differ only in epochs form a trend.
        var series: String { name.replacingOccurrences(of: "-e\(epochs)", with: "") }
    }

    /// One N against N = 1 over the budgets of one series, on the seed all of them share.
    struct Trend {
        struct Row {
            let epochs: Int
            let base: StudyResult, reused: StudyResult       // the shared seed's runs
            let baseArm: Arm, reusedArm: Arm                 // every seed of the budget
        }
        let series: String
        let reuse: Int
        let seed: Int
        let rows: [Row]
        var differences: [Double] { rows.map { $0.reused.testAccuracy - $0.base.testAccuracy } }
    }

    /// The paper's Fashion-MNIST gain of N = 10 over N = 1, in points.
    static let claimedGain = 2.29
    let results: String
    let groups: [Group]
    let trends: [Trend]

    init(results: String) throws {
        self.results = results
        let fm = FileManager.default
        var groups: [Group] = []
        let decoder = JSONDecoder()
        for group in ((try? fm.contentsOfDirectory(atPath: results)) ?? []).sorted() {
            let dir = (results as NSString).appendingPathComponent(group)
            var runs: [StudyResult] = [], curves: [Int: [[Double]]] = [:]
            for run in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
                let path = "\(dir)/\(run)/result.json"
                guard let data = fm.contents(atPath: path) else { continue }
                let r: StudyResult
                do { r = try decoder.decode(StudyResult.self, from: data) }
                catch { throw IOError.malformed(path: path, detail: "not a study result (\(error))") }
                runs.append(r)
                if let log = try? String(contentsOfFile: "\(dir)/\(run)/log.csv", encoding: .utf8) {
                    let accuracy = log.split(separator: "\n").dropFirst().compactMap { line in
                        line.split(separator: ",", omittingEmptySubsequences: false).dropFirst(5).first.flatMap { Double($0) }
                    }
                    curves[r.reuse, default: []].append(accuracy)
                }
            }
            guard !runs.isEmpty else { continue }
            let arms = Dictionary(grouping: runs, by: \.reuse).map { Arm(reuse: $0.key, runs: $0.value.sorted { $0.seed < $1.seed }) }
                .sorted { $0.reuse < $1.reuse }
            groups.append(Group(name: group, arms: arms, curves: curves))
        }
        self.groups = groups
        self.trends = Self.trends(groups)
    }

    /// Every series with at least two budgets that each have N = 1 and the same other N.
    static func trends(_ groups: [Group]) -> [Trend] {
        var out: [Trend] = []
        for (series, members) in Dictionary(grouping: groups, by: \.series).sorted(by: { $0.key < $1.key }) where members.count >= 2 {
            let budgets = members.sorted { $0.epochs < $1.epochs }
            guard budgets.allSatisfy({ g in g.arms.contains { $0.reuse == 1 } }) else { continue }
            let reuses = budgets.dropFirst().reduce(Set(budgets[0].arms.map(\.reuse))) { $0.intersection($1.arms.map(\.reuse)) }
            for n in reuses.sorted() where n != 1 {
                let pairs = budgets.map { g in (g.arms.first { $0.reuse == 1 }!, g.arms.first { $0.reuse == n }!) }
                let shared = pairs.dropFirst().reduce(Set(pairs[0].0.runs.map(\.seed)).intersection(pairs[0].1.runs.map(\.seed))) {
                    $0.intersection($1.0.runs.map(\.seed)).intersection($1.1.runs.map(\.seed))
                }
                guard let seed = shared.min() else { continue }
                let rows = zip(budgets, pairs).map { g, p in
                    Trend.Row(epochs: g.epochs, base: p.0.runs.first { $0.seed == seed }!, reused: p.1.runs.first { $0.seed == seed }!,
                              baseArm: p.0, reusedArm: p.1)
                }
                out.append(Trend(series: series, reuse: n, seed: seed, rows: rows))
            }
        }
        return out
    }

    /// McNemar's p between two runs on the same test images.
    static func mcNemar(_ base: StudyResult, _ reused: StudyResult) -> Double? {
        compare(Arm(reuse: 1, runs: [base]), Arm(reuse: reused.reuse, runs: [reused])).mcNemar.first?.p
    }

    /// The trend half of the rule: which way the shared seed's difference moves, and whether it
    /// turns positive (McNemar p < 0.05 at the largest budget).
    static func trendVerdict(_ t: Trend) -> String {
        guard let direction = StudyStatistics.trend(t.differences), let last = t.rows.last else { return "needs two budgets" }
        let p = mcNemar(last.base, last.reused) ?? 1
        let turns = t.differences.last! > 0 && p < 0.05
        let sign = t.differences.last! > 0 ? "positive" : "not positive"
        return "the difference \(direction.rawValue); at \(last.epochs) epochs it is \(sign) (McNemar p = \(String(format: "%.3g", p))): "
            + (turns ? "it turns in favour of reuse" : "it does not turn in favour of reuse")
    }

    /// Against N = 1: the difference of means with Welch's 95% interval, and McNemar per common seed.
    struct Comparison {
        let reuse: Int
        let difference: Double
        let interval: (low: Double, high: Double)?
        /// The fewer seeds of the two arms.
        let seeds: Int
        let mcNemar: [(seed: Int, onlyBase: Int, onlyReused: Int, p: Double)]
    }

    static func compare(_ base: Arm, _ arm: Arm) -> Comparison {
        let w = StudyStatistics.welch(base.accuracies, arm.accuracies)
        var tests: [(Int, Int, Int, Double)] = []
        for r in arm.runs {
            guard let b = base.runs.first(where: { $0.seed == r.seed }), b.testTotal == r.testTotal else { continue }
            var onlyBase = 0, onlyReused = 0
            for (x, y) in zip(b.correctness(), r.correctness()) {
                switch (x, y) {
                case (true, false): onlyBase += 1
                case (false, true): onlyReused += 1
                default: break
                }
            }
            tests.append((r.seed, onlyBase, onlyReused, StudyStatistics.mcNemar(onlyFirstCorrect: onlyBase, onlySecondCorrect: onlyReused)))
        }
        return Comparison(reuse: arm.reuse, difference: StudyStatistics.mean(arm.accuracies) - StudyStatistics.mean(base.accuracies),
                          interval: w.map { ($0.low, $0.high) }, seeds: min(arm.runs.count, base.runs.count), mcNemar: tests)
    }

    /// Seeds per arm the rule asks for before it gives a verdict.
    static let seedsForVerdict = 3

    /// The rule fixed in docs/reuse-study.md before any run.
    static func verdict(_ c: Comparison) -> String {
        guard let i = c.interval, c.seeds >= seedsForVerdict else {
            return "none yet: the rule needs at least \(seedsForVerdict) seeds per arm (\(c.seeds) so far)"
        }
        if i.low > 0 && c.difference >= 1 { return "reproduced: the interval excludes 0 and the gain is at least 1 point" }
        if i.high < claimedGain / 2 { return String(format: "not reproduced at this budget: the interval's upper end is below %.3f, half the claimed %.2f", claimedGain / 2, claimedGain) }
        return "inconclusive at this budget: neither condition holds"
    }

    var markdown: String {
        func f(_ x: Double) -> String { x.isFinite ? String(format: "%.2f", x) : "-" }
        func signed(_ x: Double) -> String { x.isFinite ? String(format: "%+.2f", x) : "-" }
        var out = ["# Reuse study: results", "", "Written by `lrunet study` from the result files beside this one; do not edit.", ""]
        for g in groups {
            out += ["## \(g.name)", "",
                    "| N | seeds | test accuracy per seed (%) | mean +- SD | train acc (%) | train loss | validation acc (%) | parameters |",
                    "|---|---|---|---|---|---|---|---|"]
            for a in g.arms {
                let acc = a.accuracies
                let valid = a.runs.compactMap(\.validationAccuracy)
                out.append("| \(a.reuse) | \(a.runs.map { String($0.seed) }.joined(separator: ", ")) | "
                           + acc.map(f).joined(separator: ", ") + " | \(f(StudyStatistics.mean(acc))) +- \(f(StudyStatistics.standardDeviation(acc))) | "
                           + "\(f(StudyStatistics.mean(a.runs.map(\.trainAccuracy)))) | \(String(format: "%.4f", StudyStatistics.mean(a.runs.map(\.trainLoss)))) | "
                           + "\(valid.isEmpty ? "-" : f(StudyStatistics.mean(valid))) | \(a.runs[0].parameters) |")
            }
            out.append("")
            if let base = g.arms.first(where: { $0.reuse == 1 }) {
                for arm in g.arms where arm.reuse != 1 {
                    let c = Self.compare(base, arm)
                    let interval = c.interval.map { "[\(f($0.low)), \(f($0.high))]" } ?? "(needs 2 seeds per arm)"
                    out.append("- **N = \(arm.reuse) minus N = 1**: \(f(c.difference)) points, Welch 95% interval \(interval). Verdict: \(Self.verdict(c)).")
                    for t in c.mcNemar {
                        out.append("  - seed \(t.seed): McNemar exact p = \(String(format: "%.3g", t.p)) (\(t.onlyBase) images only N = 1 gets right, \(t.onlyReused) only N = \(arm.reuse))")
                    }
                }
                out.append("")
            }
            let r = g.arms[0].runs[0]
            out.append("Runs on \(r.cpu) (\(r.kernels) kernels, \(r.threads) threads), \(r.trainImages) training images, \(r.validationImages) held out, \(r.testTotal) test images.")
            out.append("")
        }
        for t in trends {
            out += ["## Budget trend: \(t.series), N = \(t.reuse) against N = 1", "",
                    "Seed \(t.seed) is the seed every budget has; the all-seeds columns use every seed of that budget.", "",
                    "| epochs | seeds (N = 1, N = \(t.reuse)) | mean N = 1 (%) | mean N = \(t.reuse) (%) | difference, all seeds | seed \(t.seed): N = 1 | N = \(t.reuse) | difference | McNemar p | train acc N = 1 / N = \(t.reuse) (%) |",
                    "|---|---|---|---|---|---|---|---|---|---|"]
            for r in t.rows {
                let p = Self.mcNemar(r.base, r.reused).map { String(format: "%.3g", $0) } ?? "-"
                let all = StudyStatistics.mean(r.reusedArm.accuracies) - StudyStatistics.mean(r.baseArm.accuracies)
                out.append("| \(r.epochs) | \(r.baseArm.runs.count), \(r.reusedArm.runs.count) | \(f(StudyStatistics.mean(r.baseArm.accuracies))) | "
                           + "\(f(StudyStatistics.mean(r.reusedArm.accuracies))) | \(signed(all)) | \(f(r.base.testAccuracy)) | \(f(r.reused.testAccuracy)) | "
                           + "\(signed(r.reused.testAccuracy - r.base.testAccuracy)) | \(p) | \(f(r.base.trainAccuracy)) / \(f(r.reused.trainAccuracy)) |")
            }
            out += ["", "- Seed \(t.seed): \(Self.trendVerdict(t)).", ""]
        }
        if groups.isEmpty { out.append("No finished runs yet.") }
        return out.joined(separator: "\n") + "\n"
    }

    func write() throws {
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        func path(_ file: String) -> String { (results as NSString).appendingPathComponent(file) }
        try markdown.write(toFile: path("summary.md"), atomically: true, encoding: .utf8)
        var json: [[String: Any]] = []
        for g in groups {
            var arms: [[String: Any]] = []
            for a in g.arms {
                var arm: [String: Any] = ["reuse": a.reuse, "seeds": a.runs.map(\.seed), "test_accuracy": a.accuracies,
                                          "mean": StudyStatistics.mean(a.accuracies)]
                let sd = StudyStatistics.standardDeviation(a.accuracies)
                if sd.isFinite { arm["sd"] = sd }
                if let base = g.arms.first(where: { $0.reuse == 1 }), a.reuse != 1 {
                    let c = Self.compare(base, a)
                    arm["difference_to_n1"] = c.difference
                    if let i = c.interval { arm["welch_95"] = [i.low, i.high] }
                    arm["mcnemar_p"] = c.mcNemar.map(\.p)
                    arm["verdict"] = Self.verdict(c)
                }
                arms.append(arm)
            }
            json.append(["group": g.name, "arms": arms])
        }
        let trendJSON: [[String: Any]] = trends.map { t in
            ["series": t.series, "reuse": t.reuse, "seed": t.seed, "verdict": Self.trendVerdict(t),
             "budgets": t.rows.map { r -> [String: Any] in
                 ["epochs": r.epochs, "n1_seed": r.base.testAccuracy, "reused_seed": r.reused.testAccuracy,
                  "difference_seed": r.reused.testAccuracy - r.base.testAccuracy, "mcnemar_p": Self.mcNemar(r.base, r.reused) ?? 1,
                  "n1_mean": StudyStatistics.mean(r.baseArm.accuracies), "reused_mean": StudyStatistics.mean(r.reusedArm.accuracies),
                  "seeds": [r.baseArm.runs.count, r.reusedArm.runs.count]]
             }]
        }
        try JSONSerialization.data(withJSONObject: ["groups": json, "trends": trendJSON], options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: path("summary.json")))
        guard !groups.isEmpty else { return }
        let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        let panels = groups.map { g in
            SVGChart.ScatterPanel(title: g.name, xLabel: "reuse N", yLabel: "test accuracy % (mean +- SD)", points: g.arms.map { a in
                let sd = StudyStatistics.standardDeviation(a.accuracies)
                return SVGChart.Point(x: Double(a.reuse), y: StudyStatistics.mean(a.accuracies), label: "N=\(a.reuse)",
                                      color: a.reuse == 1 ? "#1f77b4" : "#d62728", error: sd.isFinite ? sd : 0)
            })
        }
        try SVGChart.scatter(title: "Layer reuse from scratch: accuracy against N", panels: panels, columns: min(groups.count, 2),
                             legend: [("N = 1", "#1f77b4"), ("N > 1", "#d62728")])
            .write(toFile: path("summary.svg"), atomically: true, encoding: .utf8)
        let curvePanels = groups.map { g in
            SVGChart.Panel(title: g.name, yLabel: "test accuracy % (mean over seeds)", series: g.arms.enumerated().compactMap { k, a in
                guard let runs = g.curves[a.reuse], let epochs = runs.map(\.count).min(), epochs > 0 else { return nil }
                let mean = (0..<epochs).map { e in StudyStatistics.mean(runs.map { $0[e] }) }
                return SVGChart.Series(name: "N = \(a.reuse)", color: colours[k % colours.count], x: (1...epochs).map(Double.init), y: mean)
            })
        }
        try SVGChart.render(title: "Layer reuse from scratch: test accuracy per epoch", xLabel: "epoch", panels: curvePanels)
            .write(toFile: path("curves.svg"), atomically: true, encoding: .utf8)
        guard !trends.isEmpty else { return }
        let trendPanels = trends.flatMap { t -> [SVGChart.Panel] in
            let x = t.rows.map { Double($0.epochs) }
            return [SVGChart.Panel(title: "\(t.series), seed \(t.seed)", yLabel: "test accuracy % after the last epoch", series: [
                        SVGChart.Series(name: "N = 1", color: colours[0], x: x, y: t.rows.map(\.base.testAccuracy)),
                        SVGChart.Series(name: "N = \(t.reuse)", color: colours[1], x: x, y: t.rows.map(\.reused.testAccuracy))]),
                    SVGChart.Panel(title: "N = \(t.reuse) minus N = 1, seed \(t.seed)", yLabel: "difference, points", series: [
                        SVGChart.Series(name: "difference", color: colours[2], x: x, y: t.differences),
                        SVGChart.Series(name: "zero", color: "#999999", x: [x.first!, x.last!], y: [0, 0])])]
        }
        try SVGChart.render(title: "Layer reuse from scratch: the gap against the training budget", xLabel: "epochs (budget)", panels: trendPanels)
            .write(toFile: path("trend.svg"), atomically: true, encoding: .utf8)
    }
}
