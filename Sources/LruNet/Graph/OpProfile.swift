import Dispatch

/// The kinds of work the time split reports.
public enum OpTimer: String, CaseIterable, Sendable {
    case depthwise = "depthwise"
    case pointwise = "1x1 GEMM"
    case im2colConv = "im2col conv"
    case batchNorm = "BN + epilogues"
    case poolShuffleConcat = "pool/shuffle/concat"
    /// A reuse block run tile by tile in inference: depthwise, 1x1 and epilogues fused.
    case reuseBlock = "fused reuse blocks"
    /// A reuse block in training, group by group (depthwise + BN, 1x1, BN + residual + ReLU).
    case trainingBlock = "reuse blocks (training)"
    case other = "other"
}

/// Wall-clock seconds per kind of op, accumulated while enabled on a model's
/// context. Off by default; timing costs two clock reads per op.
public final class OpProfile {
    public private(set) var seconds: [OpTimer: Double] = [:]
    public init() {}
    public func reset() { seconds = [:] }
    public var total: Double { seconds.values.reduce(0, +) }

    @inline(__always)
    func add(_ kind: OpTimer, since start: UInt64) {
        seconds[kind, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }
}

extension RunContext {
    /// Runs `body`, charging its time to `kind` when profiling is on.
    @inline(__always)
    func timed<T>(_ kind: OpTimer, _ body: () throws -> T) rethrows -> T {
        guard let profile else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { profile.add(kind, since: t0) }
        return try body()
    }
}
