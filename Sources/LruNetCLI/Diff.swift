import ArgumentParser
import Foundation
import LruNet

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two checkpoints tensor by tensor: did two runs end with the same weights?",
        discussion: """
        For every tensor both files hold (F32): the largest absolute difference, divided by a \
        scale that means something for it: the largest magnitude of its family (the tensors \
        with the same last name part and rank, e.g. every BatchNorm bias, or every conv \
        weight), or the root mean square of all the model's weights and biases when that is \
        larger. A bias whose values are 1e-9 is thus not judged by its own size, where \
        rounding alone gives relative differences of 1 and more. Prints the tensors that differ \
        most; exits with status 1 when a weight or bias differs by more than --tolerance, or \
        when the files hold different tensors.

        Example (a 2-process run against one process, docs/distributed.md):
          lrunet diff runs/one/model.safetensors runs/two/model.safetensors --tolerance 1e-3
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
            struct Row { let name: String, family: String, trainable: Bool, absolute: Double, magnitude: Double }
            var rows: [Row] = []
            var squares = 0.0, count = 0
            for name in a.names where a.tensors[name]?.dtype == "F32" && b.tensors[name]?.dtype == "F32" {
                let x = try a.array(name), y = try b.array(name)
                guard x.count == y.count else { throw ValidationError("'\(name)' has \(x.count) values in one file and \(y.count) in the other") }
                let last = name.split(separator: ".").last.map(String.init) ?? name
                let trainable = last == "weight" || last == "bias"
                if trainable { squares += x.reduce(0) { $0 + Double($1) * Double($1) }; count += x.count }
                rows.append(Row(name: name, family: "\(last)/\(a.tensors[name]!.shape.count)", trainable: trainable,
                                absolute: Double(zip(x, y).map { abs($0 - $1) }.max() ?? 0), magnitude: Double(x.map(abs).max() ?? 0)))
            }
            let rms = count > 0 ? (squares / Double(count)).squareRoot() : 0
            let familyScale = Dictionary(rows.map { ($0.family, $0.magnitude) }, uniquingKeysWith: max)
            func relative(_ r: Row) -> Double {
                let scale = max(familyScale[r.family] ?? 0, rms)
                return scale > 0 ? r.absolute / scale : r.absolute
            }
            for r in rows.sorted(by: { relative($0) > relative($1) }).prefix(show) {
                print(String(format: "%-40@ relative %.3g (absolute %.3g)", r.name, relative(r), r.absolute))
            }
            let weights = rows.filter(\.trainable).map(relative).max() ?? 0
            print(String(format: "largest relative difference of the weights and biases: %.3g over %d tensors (scale: family maximum or model RMS %.3g)",
                         weights, rows.count, rms))
            if weights > tolerance {
                throw ValidationError(String(format: "the weights differ by %.3g, more than --tolerance %.3g", weights, tolerance))
            }
        }
    }
}
