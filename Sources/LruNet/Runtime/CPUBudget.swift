import CLruNetKernels
#if canImport(Glibc)
import Glibc
#endif

/// How many threads this process should use by default: the CPUs it may run on (its affinity
/// mask, so `taskset -c 0` means one), capped by a cgroup CPU quota (a container limited to 2
/// CPUs on a 64-core host gets 2), unless `LRUNET_THREADS` says otherwise.
public enum CPUBudget {
    /// The default thread count, worked out once.
    public static let threads: Int = {
        environmentThreads ?? cores
    }()

    /// The CPUs this process may run on (affinity and cgroup quota), whatever `LRUNET_THREADS`
    /// says: more threads than this share cores, and their waits should yield.
    package static let cores: Int = {
        var n = affinityCount ?? onlineCount
        if let quota = cgroupQuota(procSelfCgroup: readText("/proc/self/cgroup"), root: "/sys/fs/cgroup") { n = min(n, quota) }
        return max(1, n)
    }()

    /// Where ``threads`` came from, for `lrunet info` and the benchmark.
    public static var source: String {
        if environmentThreads != nil { return "LRUNET_THREADS" }
        let quota = cgroupQuota(procSelfCgroup: readText("/proc/self/cgroup"), root: "/sys/fs/cgroup")
        let affinity = affinityCount ?? onlineCount
        if let quota, quota < affinity { return "cgroup CPU quota (\(quota) of \(affinity) CPUs)" }
        return affinity < onlineCount ? "CPU affinity (\(affinity) of \(onlineCount) CPUs)" : "all \(onlineCount) online CPUs"
    }

    /// `LRUNET_THREADS`, when it is a count from 1 to 1024.
    static var environmentThreads: Int? {
        guard let raw = getenv("LRUNET_THREADS"), let n = Int(String(cString: raw)), (1...1024).contains(n) else { return nil }
        return n
    }

    static var onlineCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// CPUs in this thread's affinity mask.
    static var affinityCount: Int? {
        let n = Int(lru_affinity_cpu_count())
        return n > 0 ? n : nil
    }

    /// The CPU limit of this process's cgroup (v2 `cpu.max`, or v1 `cpu.cfs_quota_us` over
    /// `cpu.cfs_period_us`), rounded up, looking at the cgroup and its ancestors; nil if none.
    /// - Parameters:
    ///   - procSelfCgroup: the text of `/proc/self/cgroup`.
    ///   - root: where the cgroup file systems are mounted.
    static func cgroupQuota(procSelfCgroup: String?, root: String) -> Int? {
        guard let text = procSelfCgroup else { return nil }
        var limits: [Int] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let controllers = parts[1].split(separator: ","), path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty {                     // cgroup v2
                for dir in ancestors(path) {
                    guard let max = readText("\(root)\(dir)/cpu.max") ?? readText("\(root)/unified\(dir)/cpu.max") else { continue }
                    let f = max.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                    if f.count == 2, let quota = Double(f[0]), let period = Double(f[1]), quota > 0, period > 0 {
                        limits.append(Int((quota / period).rounded(.up)))
                    }
                }
            } else if controllers.contains("cpu") {                     // cgroup v1
                let mount = "\(root)/\(parts[1])"
                for dir in ancestors(path) {
                    guard let q = readText("\(mount)\(dir)/cpu.cfs_quota_us").flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }),
                          let p = readText("\(mount)\(dir)/cpu.cfs_period_us").flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }),
                          q > 0, p > 0 else { continue }
                    limits.append(Int((q / p).rounded(.up)))
                }
            }
        }
        return limits.min().map { max(1, $0) }
    }

    /// "/a/b" -> ["/a/b", "/a", ""] (the last is the mount's root).
    private static func ancestors(_ path: String) -> [String] {
        var out: [String] = [], p = path.hasSuffix("/") ? String(path.dropLast()) : path
        while true {
            out.append(p)
            guard let slash = p.lastIndex(of: "/") else { break }
            if p.isEmpty { break }
            p = String(p[..<slash])
        }
        return out
    }

    static func readText(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var out = [UInt8](), buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            out += buffer[0..<n]
            if out.count > 1 << 20 { break }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
