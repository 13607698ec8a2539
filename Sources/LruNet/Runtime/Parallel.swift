import CLruNetKernels
import COpenBLAS

/// How many threads the engine uses, and the worker pool they run on.
///
/// Passed explicitly (no global mode): a network holds one and hands it to every kernel, and
/// each `Threading` value (with its copies) owns its own `WorkerPool`, so two networks run side
/// by side, each on its own threads. OpenBLAS itself runs single-threaded (process-wide, set
/// here, and its idle threads ended): they spin and yield, which on two cores starved our own
/// workers. Instead the engine splits each GEMM across its threads, by group or by column
/// block, and calls a one-thread sgemm.
public struct Threading: Sendable, Equatable {
    public let threads: Int
    package let pool: WorkerPool

    /// - Parameter threads: worker count; 0 means ``CPUBudget/threads`` (the CPUs this process
    ///   may use, or `LRUNET_THREADS`). More threads than cores is allowed (and tested). The
    ///   worker threads start on the first parallel region.
    public init(threads: Int = 0) {
        self.threads = threads <= 0 ? CPUBudget.threads : min(threads, 1024)
        pool = WorkerPool(participants: self.threads)
        // Only when needed: OpenBLAS's setter restarts the server threads once they have ended.
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
        lru_blas_idle_threads_end()
    }

    public static func == (a: Threading, b: Threading) -> Bool { a.threads == b.threads }

    /// Runs `body(args, range)` over `0..<count` split into contiguous chunks, one per thread;
    /// small jobs run inline.
    ///
    /// `body` must capture nothing: what it needs comes in `args`, a named struct it reads
    /// first (`let r = args.pointee`), so a parallel loop costs no heap allocation.
    @inline(__always)
    func parallelFor<Args: Sendable>(_ count: Int, minPerThread: Int = 1, _ args: Args, file: StaticString = #fileID,
                                     line: UInt = #line,
                                     _ body: @escaping @Sendable (_ args: UnsafePointer<Args>, _ range: Range<Int>) -> Void) {
        withUnsafePointer(to: args) { a in
            parallelChunks(count, minPerThread: minPerThread, ForLoop(args: a, body: body), file: file, line: line) { loop, _, range in
                loop.pointee.body(loop.pointee.args, range)
            }
        }
    }

    /// Like ``parallelFor(_:minPerThread:_:file:line:_:)`` but also passes the worker index
    /// (`0..<threads`), for kernels that use per-worker scratch memory.
    @inline(__always)
    func parallelChunks<Args: Sendable>(_ count: Int, minPerThread: Int = 1, _ args: Args, file: StaticString = #fileID,
                                        line: UInt = #line,
                                        _ body: @escaping @Sendable (_ args: UnsafePointer<Args>, _ worker: Int, _ range: Range<Int>) -> Void) {
        withUnsafePointer(to: args) { a in
            let workers = min(threads, count / max(minPerThread, 1))
            RegionObserver.record(file, line, items: count / max(minPerThread, 1), threads: max(workers, 1))
            if workers <= 1 { body(a, 0, 0..<count); return }
            pool.run(width: workers, Chunks(args: a, body: body, count: count, workers: workers)) { c, w, width in
                let c = c.pointee
                // With a busy pool (width 1) the caller takes every chunk itself.
                for part in stride(from: w, to: c.workers, by: width) {
                    let lo = c.count * part / c.workers, hi = c.count * (part + 1) / c.workers
                    if lo < hi { c.body(c.args, part, lo..<hi) }
                }
            }
        }
    }

    /// Runs `body(args, worker, item)` for every item of `0..<count`, the threads taking items
    /// one at a time from `counter` (reset here) until none are left.
    ///
    /// For a few large items (a reuse block's eight pointwise groups): on a shared machine one
    /// core is often slowed for a while, and with fixed chunks the other then waits at the end
    /// of every region; here it takes the slowed core's remaining items instead. Items must be
    /// independent, so the result does not depend on who ran what.
    @inline(__always)
    func parallelItems<Args: Sendable>(_ count: Int, counter: TileCounter, _ args: Args, file: StaticString = #fileID,
                                       line: UInt = #line,
                                       _ body: @escaping @Sendable (_ args: UnsafePointer<Args>, _ worker: Int, _ item: Int) -> Void) {
        withUnsafePointer(to: args) { a in
            let workers = min(threads, count)
            RegionObserver.record(file, line, items: count, threads: max(workers, 1))
            if workers <= 1 { for i in 0..<count { body(a, 0, i) }; return }
            counter.reset()
            pool.run(width: workers, Items(args: a, body: body, count: count, counter: counter)) { c, w, _ in
                let c = c.pointee
                while case let i = c.counter.take(), i < c.count { c.body(c.args, w, i) }
            }
        }
    }
}

// A loop's body and a pointer to its arguments on their way to the worker pool: Sendable because
// the pointer is only read, by the region's participants, while the region runs (see SharedMemory.swift).
private struct ForLoop<Args: Sendable>: @unchecked Sendable {
    let args: UnsafePointer<Args>
    let body: @Sendable (UnsafePointer<Args>, Range<Int>) -> Void
}

private struct Chunks<Args: Sendable>: @unchecked Sendable {
    let args: UnsafePointer<Args>
    let body: @Sendable (UnsafePointer<Args>, Int, Range<Int>) -> Void
    let count: Int, workers: Int
}

private struct Items<Args: Sendable>: @unchecked Sendable {
    let args: UnsafePointer<Args>
    let body: @Sendable (UnsafePointer<Args>, Int, Int) -> Void
    let count: Int
    let counter: TileCounter
}

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` with denormal operands and results flushed to zero on the calling thread (the
/// engine's worker threads always run so), then gives the thread its own mode back: a pass
/// runs on the caller's thread too, and the caller's other code keeps IEEE denormals.
@inline(__always)
func withFlushedDenormals<R>(_ body: () throws -> R) rethrows -> R {
    let saved = lru_fpu_flush_denormals()
    defer { lru_fpu_restore(saved) }
    return try body()
}
