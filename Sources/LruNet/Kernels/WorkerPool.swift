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
/// The pool starts with a worker for every thread of ``CPUBudget/threads`` but the caller's,
/// and grows when a ``Threading`` asks for more. One region runs at a time. A region
/// requested while another is running (another model on another thread, or a nested call)
/// gets width 1 and runs on the caller alone; kernels must give the same result at any width.
final class WorkerPool: @unchecked Sendable {
    /// One pool for the process.
    static let shared = WorkerPool(workers: max(0, CPUBudget.threads - 1))

    /// Background threads; the caller of ``run(width:_:_:)`` is participant 0. Changed only
    /// while holding `busy`.
    private(set) var workers = 0
    /// Threads a region can have: the workers and the caller.
    var participants: Int { workers + 1 }
    private let busy = Atomic<Bool>(false)
    /// The running region's generation and width, in one word (`generation << 16 | width`), so
    /// a worker never pairs one region's generation with another's width.
    private let state = Atomic<Int>(0)
    private var generation = 0
    /// Participants of the running region that have not finished it yet.
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    /// Regions run on more than one thread since the process started.
    let regions = Atomic<Int>(0)
    /// The running region: an existential whose value (three words) fits its inline buffer.
    private var job: any RegionJob = IdleJob()
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Spins before a worker sleeps: roughly a millisecond.
    private static let spinLimit = 1 << 16
    private static let widthBits = 16

    private init(workers: Int) {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        addWorkers(workers)
    }

    /// Makes at least `count` participants available (up to 1024), waiting for a running region to end.
    func grow(toParticipants count: Int) {
        let target = min(count, 1024)
        guard target > participants else { return }
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { spinPause() }
        addWorkers(target - participants)
        busy.store(false, ordering: .releasing)
    }

    private func addWorkers(_ n: Int) {
        for _ in 0..<n {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: workers + 1, generation: generation)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.workerLoop(index: start.index, seen: start.generation)   // never returns
            }, box)
            precondition(rc == 0, "WorkerPool: cannot start a worker thread (error \(rc))")
            pthread_detach(thread)
            workers += 1
        }
    }

    /// Runs `body(args, participant, width)` on `width` threads at once, participant
    /// 0 on the caller, and returns when all are done. `width` is capped at the
    /// participants available and is 1 if the pool is busy.
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
            guard requested > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
                body(a, 0, 1); return
            }
            let w = min(requested, participants)
            guard w > 1 else { busy.store(false, ordering: .releasing); body(a, 0, 1); return }
            regions.add(1, ordering: .relaxed)
            job = RegionCall(args: a, body: body)
            pending.store(w - 1, ordering: .relaxed)
            generation += 1
            state.store(generation << Self.widthBits | w, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex); pthread_cond_broadcast(wake); pthread_mutex_unlock(mutex)
            }
            body(a, 0, w)
            while pending.load(ordering: .acquiring) > 0 { spinPause() }
            job = IdleJob()
            busy.store(false, ordering: .releasing)
        }
    }

    private func workerLoop(index: Int, seen start: Int) -> Never {
        var seen = start
        while true {
            var spins = 0
            var s = state.load(ordering: .acquiring)
            while s >> Self.widthBits == seen {
                spins += 1
                if spins < Self.spinLimit { spinPause(); s = state.load(ordering: .acquiring); continue }
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while state.load(ordering: .sequentiallyConsistent) >> Self.widthBits == seen { pthread_cond_wait(wake, mutex) }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
                s = state.load(ordering: .acquiring)
            }
            seen = s >> Self.widthBits
            let width = s & (1 << Self.widthBits - 1)
            // Only this region's participants run it; the region cannot end (and `job` cannot
            // change) before each of them has counted itself done.
            if index < width {
                job.run(participant: index, width: width)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }

    private final class WorkerStart {
        let pool: WorkerPool, index: Int, generation: Int
        init(pool: WorkerPool, index: Int, generation: Int) { self.pool = pool; self.index = index; self.generation = generation }
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
