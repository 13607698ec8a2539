import COpenBLAS

/// How many threads the engine uses.
///
/// Passed explicitly (no global mode): the model holds one and hands it to
/// every kernel. OpenBLAS itself runs single-threaded: its idle threads spin
/// and yield, which on two cores starved our own workers (a fifth of the
/// training time went to `sched_yield`). Instead the engine splits each GEMM
/// across its threads, by group or by column block, and calls a one-thread sgemm.
public struct Threading: Sendable, Equatable {
    public var threads: Int

    /// - Parameter threads: worker count; 0 means ``CPUBudget/threads`` (the CPUs this process
    ///   may use, or `LRUNET_THREADS`). More threads than cores is allowed (and tested).
    public init(threads: Int = 0) {
        self.threads = threads <= 0 ? CPUBudget.threads : threads
        if self.threads > WorkerPool.shared.participants { WorkerPool.shared.grow(toParticipants: self.threads) }
        openblas_set_num_threads(1)
    }

    /// Runs `body(args, range)` over `0..<count` split into contiguous chunks, one
    /// per thread; small jobs run inline.
    ///
    /// `body` must capture nothing: what it needs comes in `args`, usually a tuple
    /// it destructures first (`let (x, y, n) = args.pointee`), so a parallel loop
    /// costs no heap allocation (see ``WorkerPool/run(width:_:_:)``).
    @inline(__always)
    func parallelFor<Args>(_ count: Int, minPerThread: Int = 1, _ args: Args, file: StaticString = #fileID, line: UInt = #line,
                           _ body: @escaping (_ args: UnsafePointer<Args>, _ range: Range<Int>) -> Void) {
        withUnsafePointer(to: args) { a in
            parallelChunks(count, minPerThread: minPerThread, ForLoop(args: a, body: body), file: file, line: line) { loop, _, range in
                loop.pointee.body(loop.pointee.args, range)
            }
        }
    }
}

extension Threading {
    /// Like ``parallelFor(_:minPerThread:_:_:)`` but also passes the worker index
    /// (`0..<threads`), for kernels that use per-worker scratch memory.
    @inline(__always)
    func parallelChunks<Args>(_ count: Int, minPerThread: Int = 1, _ args: Args, file: StaticString = #fileID, line: UInt = #line,
                              _ body: @escaping (_ args: UnsafePointer<Args>, _ worker: Int, _ range: Range<Int>) -> Void) {
        withUnsafePointer(to: args) { a in
            let workers = min(threads, count / max(minPerThread, 1))
            RegionCensus.shared.record(file, line, items: count / max(minPerThread, 1), threads: max(workers, 1))
            if workers <= 1 { body(a, 0, 0..<count); return }
            WorkerPool.shared.run(width: workers, Chunks(args: a, body: body, count: count, workers: workers)) { c, w, width in
                let c = c.pointee
                // With a busy pool (width 1) the caller takes every chunk itself.
                for part in stride(from: w, to: c.workers, by: width) {
                    let lo = c.count * part / c.workers, hi = c.count * (part + 1) / c.workers
                    if lo < hi { c.body(c.args, part, lo..<hi) }
                }
            }
        }
    }
}

extension Threading {
    /// Runs `body(args, worker, item)` for every item of `0..<count`, the threads taking items
    /// one at a time from `counter` (reset here) until none are left.
    ///
    /// For a few large items (a reuse block's eight pointwise groups): on a shared machine one
    /// core is often slowed for a while, and with fixed chunks the other then waits at the end
    /// of every region; here it takes the slowed core's remaining items instead. Items must be
    /// independent, so the result does not depend on who ran what.
    @inline(__always)
    func parallelItems<Args>(_ count: Int, counter: TileCounter, _ args: Args, file: StaticString = #fileID, line: UInt = #line,
                             _ body: @escaping (_ args: UnsafePointer<Args>, _ worker: Int, _ item: Int) -> Void) {
        withUnsafePointer(to: args) { a in
            let workers = min(threads, count)
            RegionCensus.shared.record(file, line, items: count, threads: max(workers, 1))
            if workers <= 1 { for i in 0..<count { body(a, 0, i) }; return }
            counter.reset()
            WorkerPool.shared.run(width: workers, Items(args: a, body: body, count: count, counter: counter)) { c, w, _ in
                let c = c.pointee
                while case let i = c.counter.take(), i < c.count { c.body(c.args, w, i) }
            }
        }
    }
}

private struct Items<Args> {
    let args: UnsafePointer<Args>
    let body: (UnsafePointer<Args>, Int, Int) -> Void
    let count: Int
    let counter: TileCounter
}

// A loop's body and arguments on their way to the worker pool. The bodies take their
// arguments by pointer, so storing them in these generic structs needs no reabstraction thunk.
private struct ForLoop<Args> {
    let args: UnsafePointer<Args>
    let body: (UnsafePointer<Args>, Range<Int>) -> Void
}

private struct Chunks<Args> {
    let args: UnsafePointer<Args>
    let body: (UnsafePointer<Args>, Int, Range<Int>) -> Void
    let count: Int, workers: Int
}

#if canImport(Glibc)
import Glibc
#endif
