import LruNet
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Counts the parallel regions the engine starts, by call site: how many work items each
/// offered and how many threads it used, through the library's ``RegionObserver``.
/// `lrunet-bench --parallelism` reports each region's available parallelism at 16, 32 and 64
/// threads with it (docs/parallelism.md).
package final class RegionCensus: @unchecked Sendable {
    package static let shared = RegionCensus()

    /// One call site's regions.
    package struct Row: Sendable {
        package let site: String
        /// Regions started here.
        package var regions: Int
        /// The fewest and most items (independent pieces of work) a region here offered.
        package var minItems: Int, maxItems: Int
        /// The fewest and most threads a region here ran on.
        package var minThreads: Int, maxThreads: Int
    }

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var rows: [String: Row] = [:]

    private init() { pthread_mutex_init(lock, nil) }

    /// Starts counting afresh.
    package func start() {
        pthread_mutex_lock(lock); rows = [:]; pthread_mutex_unlock(lock)
        RegionObserver.install { [self] file, line, items, threads in record(file, line, items: items, threads: threads) }
    }

    /// Stops counting and returns the rows, by call site.
    package func stop() -> [Row] {
        RegionObserver.remove()
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        return rows.values.sorted { $0.site < $1.site }
    }

    private func record(_ file: StaticString, _ line: UInt, items: Int, threads: Int) {
        let site = "\(file):\(line)"
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        var row = rows[site] ?? Row(site: site, regions: 0, minItems: .max, maxItems: 0, minThreads: .max, maxThreads: 0)
        row.regions += 1
        row.minItems = min(row.minItems, items); row.maxItems = max(row.maxItems, items)
        row.minThreads = min(row.minThreads, threads); row.maxThreads = max(row.maxThreads, threads)
        rows[site] = row
    }
}
