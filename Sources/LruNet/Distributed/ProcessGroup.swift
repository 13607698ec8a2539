import Foundation

/// The collective operations data-parallel training needs. `LruNetMPI` implements them over
/// Open MPI; ``ThreadCollectives`` within one process, for tests. Every process of a group
/// calls each operation in the same order, from the thread that runs the network.
package protocol Collectives: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `values` on every process with their sum over the processes, the same bits on all.
    func sum(_ values: UnsafeMutablePointer<Float>, count: Int)
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int)
    /// Copies `count` bytes from process `root` into `bytes` on every other process.
    func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int)
    /// Ends every process of the job (a process that failed must not leave the others waiting).
    func abort(code: Int32) -> Never
}

/// What a kind of collective has moved so far.
public struct CollectiveTraffic: Sendable, Equatable {
    public var calls = 0
    public var bytes = 0
    public var seconds = 0.0
}

/// The processes a data-parallel run spans: this process's rank among `size`. A run on one
/// process uses ``single``; `lrunet train` under `mpirun` joins the MPI world (built with
/// `--traits MPI`, see docs/distributed.md).
public final class ProcessGroup: @unchecked Sendable {
    /// Why a collective ran, for the traffic report.
    package enum Purpose: Int, CaseIterable, Sendable { case gradients, batchNorm, bookkeeping }

    public let rank: Int
    public let size: Int
    package let collectives: (any Collectives)?
    private var traffic = [CollectiveTraffic](repeating: CollectiveTraffic(), count: Purpose.allCases.count)

    /// One process: every collective is the identity.
    public static var single: ProcessGroup { ProcessGroup(rank: 0, size: 1, collectives: nil) }

    package convenience init(_ collectives: any Collectives) {
        self.init(rank: collectives.rank, size: collectives.size, collectives: collectives)
    }

    private init(rank: Int, size: Int, collectives: (any Collectives)?) {
        self.rank = rank; self.size = size; self.collectives = collectives
    }

    public var isDistributed: Bool { size > 1 }
    /// The gradient allreduce's traffic on this process: one fused call per step.
    public var gradientTraffic: CollectiveTraffic { traffic[Purpose.gradients.rawValue] }
    /// Synchronised BatchNorm's statistics, forward and backward.
    public var batchNormTraffic: CollectiveTraffic { traffic[Purpose.batchNorm.rawValue] }
    /// Loss, accuracy, running statistics, weight checks and resumes.
    public var bookkeepingTraffic: CollectiveTraffic { traffic[Purpose.bookkeeping.rawValue] }

    private func timed(_ purpose: Purpose, bytes: Int, _ body: (any Collectives) -> Void) {
        guard let c = collectives, size > 1 else { return }
        let t0 = DispatchTime.now().uptimeNanoseconds
        body(c)
        traffic[purpose.rawValue].calls += 1
        traffic[purpose.rawValue].bytes += bytes
        traffic[purpose.rawValue].seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    package func sum(_ values: UnsafeMutablePointer<Float>, count: Int, for purpose: Purpose) {
        timed(purpose, bytes: 4 * count) { $0.sum(values, count: count) }
    }

    package func sum(_ values: UnsafeMutablePointer<Double>, count: Int, for purpose: Purpose) {
        timed(purpose, bytes: 8 * count) { $0.sum(values, count: count) }
    }

    /// Sums a few numbers over the processes (loss, correct predictions, counts).
    package func sum(_ values: [Double]) -> [Double] {
        var v = values
        v.withUnsafeMutableBufferPointer { sum($0.baseAddress!, count: $0.count, for: .bookkeeping) }
        return v
    }

    package func broadcast(_ values: UnsafeMutablePointer<Float>, count: Int, root: Int = 0) {
        timed(.bookkeeping, bytes: 4 * count) { $0.broadcast(UnsafeMutableRawPointer(values), count: 4 * count, root: root) }
    }

    /// Process `root`'s bytes on every process.
    package func broadcast(_ data: Data, root: Int = 0) -> Data {
        guard size > 1 else { return data }
        var length = [Double(rank == root ? data.count : 0)]
        length.withUnsafeMutableBytes { b in timed(.bookkeeping, bytes: 8) { $0.broadcast(b.baseAddress!, count: 8, root: root) } }
        var bytes = [UInt8](repeating: 0, count: Int(length[0]))
        if rank == root { bytes = [UInt8](data) }
        bytes.withUnsafeMutableBytes { b in
            if let base = b.baseAddress { timed(.bookkeeping, bytes: b.count) { $0.broadcast(base, count: b.count, root: root) } }
        }
        return Data(bytes)
    }

    /// Whether every process holds the same `value` (process 0's is compared on each, and the
    /// mismatches are counted over all).
    package func agree(_ value: UInt64) -> Bool {
        guard size > 1 else { return true }
        var v = value
        withUnsafeMutableBytes(of: &v) { b in timed(.bookkeeping, bytes: 8) { $0.broadcast(b.baseAddress!, count: 8, root: 0) } }
        return sum([v == value ? 0 : 1])[0] == 0
    }

    /// Waits until every process has arrived.
    package func barrier() { _ = sum([0]) }

    /// Ends the whole job; on one process, exits.
    package func abort(code: Int32) -> Never {
        if let c = collectives, size > 1 { c.abort(code: code) }
        exit(code)
    }
}
