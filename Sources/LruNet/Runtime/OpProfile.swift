import Dispatch

/// The kinds of work the time split reports.
public enum OpTimer: String, CaseIterable, Sendable {
    case depthwise = "depthwise"
    /// Training's depthwise conv with its BatchNorm, one kernel (DepthwiseBatchNorm.swift).
    case depthwiseBatchNorm = "depthwise+BN"
    case pointwise = "1x1 GEMM"
    case im2colConv = "im2col conv"
    case batchNorm = "BN + epilogues"
    case poolShuffleConcat = "pool/shuffle/concat"
    /// A reuse block run tile by tile in inference: depthwise, 1x1 and epilogues fused.
    case reuseBlock = "fused reuse blocks"
    case other = "other"
}

/// Wall-clock seconds per kind of op, accumulated while enabled on a model's
/// context. Off by default; timing costs two clock reads per op.
public final class OpProfile {
    public private(set) var seconds: [OpTimer: Double] = [:]
    /// One leaf layer's share of the time: its PyTorch name, op and output shape, and the
    /// multiply-adds it does per image.
    public struct LayerTime: Sendable {
        public let name: String, op: String
        public let output: ActivationShape
        public let macsPerImage: Int
        public internal(set) var seconds: Double
        /// Position in the pass, for a stable order.
        public let index: Int
    }
    /// Each leaf layer's time, in the order of the pass (filled while profiling).
    public var layers: [LayerTime] { layerTimes.values.sorted { $0.index < $1.index } }
    private var layerTimes: [ObjectIdentifier: LayerTime] = [:]

    public init() {}
    public func reset() { seconds = [:]; layerTimes = [:] }
    public var total: Double { seconds.values.reduce(0, +) }

    @inline(__always)
    func add(layer: Layer, since start: UInt64) {
        let t = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let key = ObjectIdentifier(layer)
        if layerTimes[key] == nil {
            let s = layer.summaries
            layerTimes[key] = LayerTime(name: s.first?.name ?? "", op: s.map(\.op).joined(separator: "+"),
                                        output: s.last?.outputShape ?? ActivationShape(channels: 0, batch: 0, height: 0, width: 0),
                                        macsPerImage: s.reduce(0) { $0 + $1.totalMACs }, seconds: 0, index: layerTimes.count)
        }
        layerTimes[key]!.seconds += t
    }

    /// The time charged to one leaf layer so far; nil if it has not run while profiling.
    package func seconds(of layer: Layer) -> Double? { layerTimes[ObjectIdentifier(layer)]?.seconds }

    /// Adds time measured elsewhere (inside a parallel region, say).
    func add(_ kind: OpTimer, seconds: Double) { self.seconds[kind, default: 0] += seconds }

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

/// Op timing inside a parallel region: each worker adds the nanoseconds of its parts to its own
/// slots, and ``report(to:workers:)`` charges the profile the average over the workers (their
/// parts run side by side). Only used while a profile is on.
struct RegionTimer: Sendable {
    static let kinds: [OpTimer] = [.depthwiseBatchNorm, .pointwise, .batchNorm]
    /// Per worker and kind; each worker adds to its own.
    let slots: SharedMutable<UInt64>?

    @inline(__always) static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    /// The clock when timing, else 0.
    @inline(__always) func start() -> UInt64 { slots == nil ? 0 : Self.now() }

    /// Charges `kind` (one of ``kinds``) for worker `worker` with the time since `start`; returns now.
    @inline(__always)
    func lap(_ kind: Int, worker: Int, since start: UInt64) -> UInt64 {
        guard let slots else { return 0 }
        let t = Self.now()
        (slots + (worker * Self.kinds.count + kind)).pointee += t - start
        return t
    }
}

extension RunContext {
    /// Runs `body` with a ``RegionTimer`` that is live only when profiling, then charges the profile.
    @inline(__always)
    func timedRegion(workers: Int, scratch: UnsafeMutablePointer<UInt64>, _ body: (RegionTimer) -> Void) {
        guard let profile else { body(RegionTimer(slots: nil)); return }
        let n = RegionTimer.kinds.count
        scratch.update(repeating: 0, count: workers * n)
        body(RegionTimer(slots: SharedMutable(scratch)))
        for (k, kind) in RegionTimer.kinds.enumerated() {
            let total = (0..<workers).reduce(UInt64(0)) { $0 + scratch[$1 * n + k] }
            profile.add(kind, seconds: Double(total) * 1e-9 / Double(workers))
        }
    }
}
