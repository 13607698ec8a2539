import Foundation
import LruNet

/// How much parallelism each region of an lru10 pass offers on machines bigger than ours: the
/// passes run with 16, 32 and 64 threads (oversubscribed here) while ``RegionCensus`` counts
/// every region's items and threads.
enum Parallelism {
    static let threadCounts = [16, 32, 64]

    static func report(markdown: String?) throws {
        let workloads: [(String, Int, Bool)] = [("inference batch 1", 1, false), ("inference batch 256", 256, false),
                                                ("training batch 128", 128, true)]
        let counts = threadCounts.map(String.init).joined(separator: " / ")
        var lines = ["| workload | region (call site) | regions per pass | items per region at \(counts) threads | threads used at \(counts) |",
                     "|---|---|---|---|---|"]
        for (name, batch, training) in workloads {
            var bySite: [String: [RegionCensus.Row]] = [:]
            for threads in threadCounts {
                let model = try Network(config: .lrunet(numClasses: 10, layerReuse: 10, inChannels: 1), threading: Threading(threads: threads))
                model.initialise(seed: 1)
                var rng = SplitMix64(seed: 1)
                let x = (0..<(batch * 28 * 28)).map { _ in rng.nextUniform() }
                let labels = (0..<batch).map { Int32($0 % 10) }
                func pass() throws {
                    if training {
                        _ = try x.withUnsafeBufferPointer { xb in try labels.withUnsafeBufferPointer { lb in
                            try model.trainStep(images: xb.baseAddress!, labels: lb.baseAddress!, batch: batch, channels: 1, height: 28,
                                                width: 28, optimizer: SGD(), learningRate: 0.01, seed: 1)
                        } }
                    } else {
                        _ = try model(Tensor(shape: [batch, 1, 28, 28], data: x))
                    }
                }
                try pass()                                  // plans; the census counts a steady pass
                RegionCensus.shared.start()
                try pass()
                for row in RegionCensus.shared.stop() { bySite[row.site, default: []].append(row) }
            }
            for (site, rows) in bySite.sorted(by: { $0.key < $1.key }) where rows.count == threadCounts.count {
                func range(_ lo: Int, _ hi: Int) -> String { lo == hi ? "\(lo)" : "\(lo)-\(hi)" }
                let used = rows.map { range($0.minThreads, $0.maxThreads) }.joined(separator: " / ")
                let items = Set(rows.map { range($0.minItems, $0.maxItems) }).count == 1 ? range(rows[0].minItems, rows[0].maxItems)
                    : rows.map { range($0.minItems, $0.maxItems) }.joined(separator: " / ")
                lines.append("| \(name) | `\(site)` | \(rows[0].regions) | \(items) | \(used) |")
            }
        }
        let table = lines.joined(separator: "\n")
        print(table)
        if let markdown {
            try (table + "\n").write(toFile: markdown, atomically: true, encoding: .utf8)
            print("wrote \(markdown)")
        }
    }
}
