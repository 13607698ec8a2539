import CLruNetKernels
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Persistent worker threads for the engine's parallel loops; each ``Threading`` value owns
/// one (so each network has its own).
///
/// `DispatchQueue.concurrentPerform` wakes its workers through the kernel on every call; a
/// batch-1 forward pass starts dozens of short parallel regions. These workers spin for a while
/// after a region (the next one usually follows within microseconds), then sleep on a condition
/// variable. Every participant of a region is a dedicated thread, so a region may contain
/// barriers. The workers start on the first region that needs them and stop when the pool's
/// last owner is gone.
///
/// Starting a region allocates nothing: its body captures nothing and reads a named struct of
/// arguments through a pointer to the caller's copy (``Rows`` and ``ConstRows`` carry the
/// memory; see SharedMemory.swift for why that is safe).
///
/// One region runs at a time per pool. A region requested while another runs on the same pool
/// (a nested call, or two threads sharing one network) gets width 1 and runs on its caller;
/// kernels give the same result at any width. Two networks run side by side on their own pools.
package final class WorkerPool: @unchecked Sendable {
    /// Threads a region can have: the workers and the caller.
    package let participants: Int
    /// Regions run on more than one thread since the pool started.
    package var regions: Int { state.regions.load(ordering: .relaxed) }

    private let state: PoolState

    package init(participants: Int) {
        self.participants = max(1, participants)
        state = PoolState(workers: self.participants - 1)
    }

    deinit { state.stop() }

    /// Runs `body(args, participant, width)` on `width` threads at once, participant 0 on the
    /// caller, and returns when all are done. `width` is capped at the participants and is 1
    /// if the pool is busy. `body` must not capture anything (a capture would cost a heap
    /// allocation per call; `AllocationTests` checks the call sites): what it needs is in `args`.
    @inline(__always)
    package func run<Args: Sendable>(width requested: Int, _ args: Args,
                                     _ body: @escaping @Sendable (_ args: UnsafePointer<Args>, _ participant: Int, _ width: Int) -> Void) {
        withUnsafePointer(to: args) { a in
            let w = min(requested, participants)
            guard w > 1, state.acquire() else { body(a, 0, 1); return }
            state.start(RegionCall(args: SharedArgs(pointer: a), body: body), width: w)
            body(a, 0, w)
            state.finish()
        }
    }
}

/// The pointer to a region's arguments, handed to the workers. Valid until the region ends,
/// which ``WorkerPool/run(width:_:_:)`` waits for.
private struct SharedArgs<Args: Sendable>: @unchecked Sendable {
    let pointer: UnsafePointer<Args>
}

/// A region's body with its arguments, called by the workers.
private protocol RegionJob: Sendable { func run(participant: Int, width: Int) }

private struct RegionCall<Args: Sendable>: RegionJob {
    let args: SharedArgs<Args>
    let body: @Sendable (UnsafePointer<Args>, Int, Int) -> Void
    func run(participant: Int, width: Int) { body(args.pointer, participant, width) }
}

private struct IdleJob: RegionJob { func run(participant: Int, width: Int) {} }

/// What the workers share with the pool. The workers hold it, not the pool, so the pool can go
/// away; then ``stop()`` tells them to end.
private final class PoolState: @unchecked Sendable {
    let workers: Int
    private let busy = Atomic<Bool>(false)
    /// The running region's generation and width in one word (`generation << 16 | width`), so a
    /// worker never pairs one region's generation with another's width. Generation -1: stop.
    private let region = Atomic<Int>(0)
    private var generation = 0
    /// Participants of the running region that have not finished it yet.
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    let regions = Atomic<Int>(0)
    /// The running region (written by the caller before it publishes `region`, read by workers after).
    private var job: any RegionJob = IdleJob()
    private var started = false
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// How long an idle worker polls for the next region before it sleeps. Waking a sleeper
    /// costs tens of microseconds on a virtual machine, more than a small layer takes, so on a
    /// machine of its own the wait spans the gap between two passes (the single-threaded head
    /// and tail of a pass): a millisecond. It is 20 us when the pool has more threads than
    /// cores, or while other work competes for the CPUs (`lru_cpus_contended`, read at most
    /// every 100 ms): a worker that polls long there loses the scheduler's favour and the next
    /// region waits a time slice for it (a batch-1 pass took 30 ms instead of 0.7). A worker
    /// never yields, for the same reason. `LRUNET_SPIN_US` sets the wait (microseconds; 0
    /// sleeps at once).
    private let longSpin: Bool
    private let contended = Atomic<Bool>(false)
    private let contentionCheckedAt = Atomic<UInt64>(0)
    private static let longSpinNanoseconds: UInt64 = 1_000_000, shortSpinNanoseconds: UInt64 = 20_000
    private static let configuredSpin: UInt64? = {
        guard let raw = getenv("LRUNET_SPIN_US"), let us = UInt64(String(cString: raw)), us <= 1_000_000 else { return nil }
        return us * 1000
    }()
    private static let widthBits = 16
    private static let stopped = -1

    init(workers: Int) {
        self.workers = workers
        longSpin = workers + 1 <= CPUBudget.cores
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    deinit {
        pthread_cond_destroy(wake); pthread_mutex_destroy(mutex)
        wake.deallocate(); mutex.deallocate()
    }

    /// Takes the pool for one region (false if another region runs); starts the workers the first time.
    func acquire() -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        if !started { startWorkers(); started = true }
        return true
    }

    func start(_ call: any RegionJob, width: Int) {
        regions.add(1, ordering: .relaxed)
        job = call
        pending.store(width - 1, ordering: .relaxed)
        generation += 1
        publish(generation << Self.widthBits | width)
    }

    /// Waits for the region's other participants, then frees the pool.
    func finish() {
        var spins = 0
        let patience = WaitPatience(width: workers + 1)
        while pending.load(ordering: .acquiring) > 0 { patience.backOff(&spins) }
        job = IdleJob()
        busy.store(false, ordering: .releasing)
    }

    /// Ends the workers (the pool is gone; no region can be running).
    func stop() { publish(Self.stopped << Self.widthBits) }

    private func publish(_ value: Int) {
        region.store(value, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex); pthread_cond_broadcast(wake); pthread_mutex_unlock(mutex)
        }
    }

    /// The idle wait that starts at `now` (see `longSpin`).
    private func spinBudget(now: UInt64) -> UInt64 {
        if let configured = Self.configuredSpin { return configured }
        guard longSpin else { return Self.shortSpinNanoseconds }
        if now &- contentionCheckedAt.load(ordering: .relaxed) > 100_000_000 {
            contentionCheckedAt.store(now, ordering: .relaxed)
            contended.store(lru_cpus_contended() == 1, ordering: .relaxed)
        }
        return contended.load(ordering: .relaxed) ? Self.shortSpinNanoseconds : Self.longSpinNanoseconds
    }

    private func startWorkers() {
        for index in 1...max(workers, 1) where index <= workers {
            let box = Unmanaged.passRetained(WorkerStart(state: self, index: index)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.state.workerLoop(index: start.index)
                return nil
            }, box)
            precondition(rc == 0, "WorkerPool: cannot start a worker thread (error \(rc))")
            pthread_detach(thread)
        }
    }

    private func workerLoop(index: Int) {
        _ = lru_fpu_flush_denormals()   // an engine thread: denormals flushed for its whole life
        var seen = 0
        while true {
            var spins = 0, start: UInt64 = 0, budget: UInt64 = 0
            var s = region.load(ordering: .acquiring)
            while s >> Self.widthBits == seen {
                spins += 1
                spinPause()
                // The clock is read every 64 polls: the spin's length is time, not a count whose
                // duration differs tenfold between CPUs.
                if spins & 63 != 0 { s = region.load(ordering: .acquiring); continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if start == 0 { start = now; budget = spinBudget(now: now) }
                if now - start < budget { s = region.load(ordering: .acquiring); continue }
                pthread_mutex_lock(mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while region.load(ordering: .sequentiallyConsistent) >> Self.widthBits == seen { pthread_cond_wait(wake, mutex) }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
                s = region.load(ordering: .acquiring)
            }
            seen = s >> Self.widthBits
            if seen == Self.stopped { return }
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
        let state: PoolState, index: Int
        init(state: PoolState, index: Int) { self.state = state; self.index = index }
    }
}

/// A shared counter that hands out work items (tiles) one at a time within a region.
package final class TileCounter: @unchecked Sendable {
    private let next = Atomic<Int>(0)
    package init() {}
    /// Before the region starts.
    package func reset() { next.store(0, ordering: .relaxed) }
    /// The next item's index; indices past the end mean there is no work left.
    package func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}

/// A reusable barrier for the participants of one ``WorkerPool`` region.
package final class SpinBarrier: @unchecked Sendable {
    private let arrived = Atomic<Int>(0)
    private let phase = Atomic<Int>(0)
    package init() {}

    /// Blocks until `width` participants have called it.
    package func wait(width: Int) {
        if width <= 1 { return }
        let p = phase.load(ordering: .acquiring)
        if arrived.add(1, ordering: .acquiringAndReleasing).newValue == width {
            arrived.store(0, ordering: .relaxed)
            phase.store(p + 1, ordering: .releasing)
        } else {
            var spins = 0
            let patience = WaitPatience(width: width)
            while phase.load(ordering: .acquiring) == p { patience.backOff(&spins) }
        }
    }
}

/// Between polls of a shared atomic: the CPU's spin-wait hint (`pause`, `yield`), which frees
/// the core's resources for a sibling hyperthread and saves power.
@inline(__always) private func spinPause() { lru_cpu_relax() }

/// Between polls of a wait that must not sleep (a barrier, the end of a region): spin, since
/// the others usually arrive within microseconds, then yield the core on every poll. A waiter
/// that only spins holds, until its time slice ends, the core that the last arrival needs when
/// threads outnumber cores (`--threads 16` on 2 cores, several networks in one process, a
/// ThreadSanitizer run). With a core per thread a yield can only cost latency (with other
/// processes busy, a whole time slice), so there the spin lasts about a millisecond (a bound
/// for several networks sharing cores) and is short only when this region alone has more
/// threads than cores.
struct WaitPatience {
    let spinLimit: Int
    @inline(__always) init(width: Int) { spinLimit = width > CPUBudget.cores ? 64 : 1 << 20 }
    @inline(__always) func backOff(_ spins: inout Int) {
        spins += 1
        if spins > spinLimit { sched_yield() }
    }
}
