import ArgumentParser
import Foundation
import LruNet

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two checkpoints tensor by tensor: did two runs end with the same weights?",
        discussion: """
        For every tensor both files hold (F32): the largest absolute difference, relative to the \\
        tensor's largest magnitude in the first file. Prints the tensors that differ most and the \\
        largest relative difference over the trainable weights (names ending in 'weight'); exits \\
        with status 1 when that exceeds --tolerance, or when the files hold different tensors.

        Example (a 2-process run against one process, docs/distributed.md):
          lrunet diff runs/one/model.safetensors runs/two/model.safetensors --tolerance 1e-4
        """)

    @Argument(help: ArgumentHelp("The reference checkpoint.", valueName: "a.safetensors"))
    var first: String
    @Argument(help: ArgumentHelp("The checkpoint to compare with it.", valueName: "b.safetensors"))
    var second: String
    @Option(help: "Largest relative difference of the weights that still counts as equal.")
    var tolerance: Double = 0
    @Option(help: "Tensors to list, most different first.")
    var show: Int = 5

    func run() throws {
        try reportingErrors {
            let a = try SafeTensorsFile(path: first), b = try SafeTensorsFile(path: second)
            guard a.names == b.names else {
                let only = Set(a.names).symmetricDifference(b.names).sorted()
                throw ValidationError("the files hold different tensors (\(only.prefix(3).joined(separator: ", "))\(only.count > 3 ? ", ..." : ""))")
            }
            var rows: [(name: String, relative: Double, absolute: Double)] = []
            for name in a.names where a.tensors[name]?.dtype == "F32" && b.tensors[name]?.dtype == "F32" {
                let x = try a.array(name), y = try b.array(name)
                guard x.count == y.count else { throw ValidationError("'\(name)' has \(x.count) values in one file and \(y.count) in the other") }
                let scale = Double(x.map(abs).max() ?? 0), worst = Double(zip(x, y).map { abs($0 - $1) }.max() ?? 0)
                rows.append((name, scale > 0 ? worst / scale : worst, worst))
            }
            for r in rows.sorted(by: { $0.relative > $1.relative }).prefix(show) {
                print(String(format: "%-40@ relative %.3g (absolute %.3g)", r.name, r.relative, r.absolute))
            }
            let weights = rows.filter { $0.name.hasSuffix("weight") }.map(\.relative).max() ?? 0
            print(String(format: "largest relative difference of the weights: %.3g over %d tensors", weights, rows.count))
            if weights > tolerance {
                throw ValidationError(String(format: "the weights differ by %.3g, more than --tolerance %.3g", weights, tolerance))
            }
        }
    }
}
