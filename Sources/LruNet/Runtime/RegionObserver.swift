import Synchronization

/// Lets a diagnostic watch the engine's parallel regions (call site, work items, threads):
/// `lrunet-bench --parallelism` counts them (its RegionCensus). Unobserved, a region pays one
/// relaxed load.
package enum RegionObserver {
    package typealias Observer = @Sendable (_ file: StaticString, _ line: UInt, _ items: Int, _ threads: Int) -> Void
    private static let on = Atomic<Bool>(false)
    private static let current = Mutex<Observer?>(nil)

    package static func install(_ observer: @escaping Observer) {
        current.withLock { $0 = observer }
        on.store(true, ordering: .releasing)
    }

    package static func remove() {
        on.store(false, ordering: .releasing)
        current.withLock { $0 = nil }
    }

    @inline(__always)
    static func record(_ file: StaticString, _ line: UInt, items: Int, threads: Int) {
        guard on.load(ordering: .relaxed) else { return }
        current.withLock { $0 }?(file, line, items, threads)
    }
}
