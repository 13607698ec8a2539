import ArgumentParser
import Foundation
import LruNet

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The paper's reuse experiment: train several N under one schedule and compare accuracy and cost.",
        discussion: """
        Trains one model per N with identical options and seed, then prints a table of N, parameters, \
        MACs per image, conv weight bytes fetched per forward (with the parameter cache) against an \
        unrolled network, training images/s and test accuracy, and writes sweep.csv and sweep.svg \
        (accuracy and cost against N) to --out. Each model's run is in --out/lruN.

        Example (the README table): lrunet sweep --reuse 1,2,4,6,10 --epochs 2 --limit 20000 --no-augment --out runs/sweep
        """)

    @OptionGroup var flags: TrainingFlags

    @Option(help: "Comma-separated reuse counts N.")
    var reuse: String = "1,2,4,6,10"
    @Option(help: ArgumentHelp("Output directory.", valueName: "dir"))
    var out: String = "runs/sweep"

    func validate() throws {
        guard flags.arch == Architecture.lrunet.rawValue else { throw ValidationError("sweep varies LruNet's N; --arch must be lrunet") }
        let ns = reuse.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ns.isEmpty, ns.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 64 }) else {
            throw ValidationError("--reuse must be a comma-separated list of counts 1...64, e.g. 1,2,4,6,10")
        }
    }

    func run() throws {
        try reportingErrors {
            let ns = reuse.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces))! }
            let (trainSet, testSet) = try flags.loadData()
            let o = flags.options
            print("sweep N = \(ns.map(String.init).joined(separator: ", ")) on \(flags.kind.rawValue)")
            print(flags.describeRun(o, train: trainSet, test: testSet, threads: Threading(threads: flags.threads).threads))
            struct Row { let n: Int; let cost: CostReport; let ips: Double; let acc: Double; let correct: Int; let total: Int; let seconds: Double }
            var rows: [Row] = []
            for n in ns {
                let model = try Network(config: flags.config(reuse: n, data: trainSet), threading: Threading(threads: flags.threads))
                let dir = (out as NSString).appendingPathComponent("lru\(n)")
                let trainer = try Trainer(model: model, train: trainSet, test: testSet, options: o, directory: dir,
                                          datasetName: flags.kind.rawValue)
                let t0 = Date()
                try runTrainer(trainer, resume: false, label: "N=\(n) ")
                let cost = try model.costReport(height: testSet.height, width: testSet.width)
                let h = trainer.history
                let trainIPS = h.map(\.imagesPerSecond).reduce(0, +) / Double(h.count)
                rows.append(Row(n: n, cost: cost, ips: trainIPS, acc: h.last!.testAccuracy, correct: h.last!.testCorrect,
                                total: h.last!.testTotal, seconds: Date().timeIntervalSince(t0)))
            }
            let base = rows.first { $0.n == 1 }
            let header = "N,params,unrolled_params,macs_per_image,conv_bytes_fetched,conv_bytes_unrolled,train_img_per_s,test_correct,test_total,test_acc"
            var csv = [header]
            print("\n  N   params   unrolled    MMACs/img  conv MB fetched/unrolled  train img/s  test accuracy" + (base != nil ? "  vs N=1" : ""))
            for r in rows {
                let c = r.cost
                let delta = base.map { String(format: "  %+.2f%%", 100 * (r.acc - $0.acc)) } ?? ""
                print(String(format: "%3d  %8d  %9d  %10.2f  %8.2f / %-8.2f      %8.0f     %.2f%% (%d/%d)%@", r.n, c.parameters, c.unrolledParameters,
                             Double(c.totalMACs) / 1e6, Double(c.convBytesFetched) / 1e6, Double(c.convBytesUnrolled) / 1e6,
                             r.ips, 100 * r.acc, r.correct, r.total, delta))
                csv.append("\(r.n),\(c.parameters),\(c.unrolledParameters),\(c.totalMACs),\(c.convBytesFetched),\(c.convBytesUnrolled),\(String(format: "%.1f", r.ips)),\(r.correct),\(r.total),\(String(format: "%.4f", 100 * r.acc))")
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try (csv.joined(separator: "\n") + "\n").write(toFile: (out as NSString).appendingPathComponent("sweep.csv"), atomically: true, encoding: .utf8)
            let xs = rows.map { Double($0.n) }
            let svg = SVGChart.render(title: "LruNet reuse sweep on \(flags.kind.rawValue), \(o.epochs) epoch(s)", xLabel: "N (reuse)", panels: [
                .init(title: "test accuracy", yLabel: "%", series: [.init(name: "test accuracy", color: "#d62728", x: xs, y: rows.map { 100 * $0.acc })]),
                .init(title: "cost relative to N=1", yLabel: "x", series: [
                    .init(name: "MACs / image", color: "#1f77b4", x: xs, y: rows.map { Double($0.cost.totalMACs) / Double(rows[0].cost.totalMACs) }),
                    .init(name: "train time / image", color: "#2ca02c", x: xs, y: rows.map { rows[0].ips / $0.ips }),
                    .init(name: "params", color: "#9467bd", x: xs, y: rows.map { Double($0.cost.parameters) / Double(rows[0].cost.parameters) }),
                    .init(name: "conv bytes fetched", color: "#ff7f0e", x: xs, y: rows.map { Double($0.cost.convBytesFetched) / Double(rows[0].cost.convBytesFetched) }),
                ]),
            ])
            try svg.write(toFile: (out as NSString).appendingPathComponent("sweep.svg"), atomically: true, encoding: .utf8)
            print("wrote \(out)/sweep.csv and \(out)/sweep.svg")
        }
    }
}
