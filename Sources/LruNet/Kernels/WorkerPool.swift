import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Persistent worker threads for the engine's parallel loops.
///
/// `DispatchQueue.concurrentPerform` wakes its workers through the kernel on
/// every call; a batch-1 forward pass starts dozens of short parallel regions.
/// These workers spin for a while after a region (the next one usually follows
/// within microseconds), then sleep on a condition variable. Every participant
/// of a region is a dedicated thread, so a region may contain barriers.
///
/// Starting a region allocates nothing. A closure that captures its
/// surroundings would need a heap context to reach another thread (Swift's
/// `withoutActuallyEscaping` boxes it), so a region's body captures nothing:
/// its arguments travel separately, by pointer to the caller's stack, and the
/// body receives them as its first parameter.
///
/// One region runs at a time. A region requested while another is running
/// (another model on another thread, or a nested call) gets width 1 and runs
/// on the caller alone; kernels must give the same result at any width.
final class WorkerPool: @unchecked Sendable {
    /// One pool for the process, with a worker for every core but the caller's.
    static let shared = WorkerPool(workers: max(0, ProcessInfoCores.count - 1))

    /// Background threads; the caller of ``run(width:_:)`` is participant 0.
    let workers: Int
    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    /// Regions run on more than one thread since the process started.
    let regions = Atomic<Int>(0)
    /// The running region: an existential whose value (three words) fits its inline buffer.
    private var job: any RegionJob = IdleJob()
    private var width = 0
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Spins before a worker sleeps: roughly a millisecond.
    private static let spinLimit = 1 << 16

    private init(workers: Int) {
        self.workers = workers
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for index in 0..<workers {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: index + 1)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.workerLoop(index: start.index)   // never returns
            }, box)
            precondition(rc == 0, "WorkerPool: cannot start a worker thread (error \(rc))")
            pthread_detach(thread)
        }
    }

    /// Runs `body(args, participant, width)` on `width` threads at once, participant
    /// 0 on the caller, and returns when all are done. `width` is capped at the
    /// cores available and is 1 if the pool is busy.
    ///
    /// `body` must not capture anything: what it needs comes in `args` (typically a
    /// tuple), which it reads through a pointer to the caller's copy. A capturing
    /// closure, or one taking `Args` by value (Swift would wrap it in a thunk to
    /// store it generically), costs a heap allocation per call; `AllocationTests`
    /// checks the engine's call sites.
    @inline(__always)
    func run<Args>(width requested: Int, _ args: Args,
                   _ body: @escaping (_ args: UnsafePointer<Args>, _ participant: Int, _ width: Int) -> Void) {
        withUnsafePointer(to: args) { a in
            let w = min(requested, workers + 1)
            guard w > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
                body(a, 0, 1); return
            }
            regions.add(1, ordering: .relaxed)
            job = RegionCall(args: a, body: body); width = w
            pending.store(workers, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex); pthread_cond_broadcast(wake); pthread_mutex_unlock(mutex)
            }
            body(a, 0, w)
            while pending.load(ordering: .acquiring) > 0 { spinPause() }
            job = IdleJob()
            busy.store(false, ordering: .releasing)
        }
    }

    private func workerLoop(index: Int) -> Never {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < Self.spinLimit { spinPause(); continue }
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(wake, mutex) }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
            }
            seen = generation.load(ordering: .acquiring)
            if index < width { job.run(participant: index, width: width) }
            pending.subtract(1, ordering: .releasing)
        }
    }

    private final class WorkerStart {
        let pool: WorkerPool, index: Int
        init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
    }
}

/// A region's body with a pointer to its arguments, called by the workers.
protocol RegionJob { func run(participant: Int, width: Int) }

private struct RegionCall<Args>: RegionJob {
    let args: UnsafePointer<Args>
    let body: (UnsafePointer<Args>, Int, Int) -> Void
    func run(participant: Int, width: Int) { body(args, participant, width) }
}

private struct IdleJob: RegionJob { func run(participant: Int, width: Int) {} }

/// A shared counter that hands out work items (tiles) one at a time within a region.
final class TileCounter: @unchecked Sendable {
    private let next = Atomic<Int>(0)
    /// Before the region starts.
    func reset() { next.store(0, ordering: .relaxed) }
    /// The next item's index; indices past the end mean there is no work left.
    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}

/// A reusable barrier for the participants of one ``WorkerPool`` region.
final class SpinBarrier: @unchecked Sendable {
    private let arrived = Atomic<Int>(0)
    private let phase = Atomic<Int>(0)

    /// Blocks until `width` participants have called it.
    func wait(width: Int) {
        if width <= 1 { return }
        let p = phase.load(ordering: .acquiring)
        if arrived.add(1, ordering: .acquiringAndReleasing).newValue == width {
            arrived.store(0, ordering: .relaxed)
            phase.store(p + 1, ordering: .releasing)
        } else {
            while phase.load(ordering: .acquiring) == p { spinPause() }
        }
    }
}

/// Between polls of a shared atomic. (Swift has no portable `pause`; the
/// polled load itself is cheap and stays in the core's cache until written.)
@inline(__always) private func spinPause() {}
