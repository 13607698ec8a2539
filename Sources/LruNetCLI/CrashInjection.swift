import Foundation
import LruNet
#if canImport(Glibc)
import Glibc
#endif

/// The fault tests' kill switch (Tests/faults.sh): with `LRUNET_CRASH_AT=<name>` or
/// `<name>@<k>`, the process SIGKILLs itself the k-th time a checkpoint save reaches that
/// moment (``CrashPoint``). Installed at start; nothing happens without the variable.
enum CrashInjection {
    private final class Hits: @unchecked Sendable { var count = 0 }

    static func installFromEnvironment() {
        guard let spec = ProcessInfo.processInfo.environment["LRUNET_CRASH_AT"], !spec.isEmpty else { return }
        let parts = spec.split(separator: "@", maxSplits: 1)
        let name = String(parts[0]), hit = parts.count == 2 ? Int(parts[1]) ?? 1 : 1
        let hits = Hits()      // saves run on one thread at a time
        CrashPoint.hook = { reached in
            guard reached == name else { return }
            hits.count += 1
            if hits.count == hit { kill(getpid(), SIGKILL) }
        }
    }
}
