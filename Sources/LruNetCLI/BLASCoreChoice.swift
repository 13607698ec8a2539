import Foundation
import LruNet
#if canImport(Glibc)
import Glibc
#endif

/// Starts `lrunet` again with the OpenBLAS kernels the CPU runs when OpenBLAS chose weaker ones
/// (``BLASCore``). Only when the user did not set `OPENBLAS_CORETYPE` (theirs always wins), not
/// under mpirun, and only after a child process with those kernels passed ``BLASCore/selfCheck()``:
/// older OpenBLAS builds can crash or compute wrong results on CPUs they do not know, and a crash
/// in the child cannot take the command down. `LRUNET_BLAS_CORE` tells the new process what
/// happened, so it never loops and `info` can say it; `LRUNET_BLAS_CORE=off` keeps OpenBLAS's own
/// choice (what a program that links the library gets).
enum BLASCoreChoice {
    static let marker = "LRUNET_BLAS_CORE"

    static func apply() {
        let env = ProcessInfo.processInfo.environment
        if env[marker] == "selfcheck" { exit(BLASCore.selfCheck() ? 0 : 1) }
        guard env[marker] == nil, env["OPENBLAS_CORETYPE"] == nil, env["OMPI_COMM_WORLD_SIZE"] == nil,
              let better = BLASCore.suggested else { return }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.environment = env.merging([marker: "selfcheck", "OPENBLAS_CORETYPE": better]) { $1 }
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        guard (try? child.run()) != nil else { return }
        child.waitUntilExit()
        guard child.terminationReason == .exit, child.terminationStatus == 0 else {
            setenv(marker, "kept:\(better)", 1)   // the weaker core stays; info says why
            return
        }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv(marker, "from:\(BLASCore.name)", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")            // exec failed: go on as we are
        setenv(marker, "kept:\(better)", 1)
    }

    /// What `info` and `bench` print about OpenBLAS's kernels.
    static var note: String {
        let env = ProcessInfo.processInfo.environment
        if let v = env[marker], v.hasPrefix("from:") {
            return "OpenBLAS core: \(BLASCore.name), chosen by lrunet over OpenBLAS's \(v.dropFirst(5)) after a self-check (set OPENBLAS_CORETYPE to choose)"
        }
        if let v = env[marker], v.hasPrefix("kept:") {
            return BLASCore.note + "; the self-check of \(v.dropFirst(5)) failed here, so it was not used"
        }
        return BLASCore.note
    }
}
