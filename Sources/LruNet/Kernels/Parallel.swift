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

    /// - Parameter threads: worker count; 0 means all cores.
    public init(threads: Int = 0) {
        let cores = max(1, ProcessInfoCores.count)
        self.threads = threads <= 0 ? cores : threads
        openblas_set_num_threads(1)
    }

    /// Runs `body` over `0..<count` split into contiguous chunks, one per
    /// thread; small jobs run inline.
    @inline(__always)
    func parallelFor(_ count: Int, minPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        parallelChunks(count, minPerThread: minPerThread) { _, range in body(range) }
    }
}

extension Threading {
    /// Like ``parallelFor(_:minPerThread:_:)`` but also passes the worker index
    /// (`0..<threads`), for kernels that use per-worker scratch memory.
    @inline(__always)
    func parallelChunks(_ count: Int, minPerThread: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        let workers = min(threads, count / max(minPerThread, 1))
        if workers <= 1 { body(0, 0..<count); return }
        WorkerPool.shared.run(width: workers) { w, width in
            // With a busy pool (width 1) the caller takes every chunk itself.
            for part in stride(from: w, to: workers, by: width) {
                let lo = count * part / workers, hi = count * (part + 1) / workers
                if lo < hi { body(part, lo..<hi) }
            }
        }
    }
}

enum ProcessInfoCores {
    static let count: Int = {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }()
}

#if canImport(Glibc)
import Glibc
#endif
