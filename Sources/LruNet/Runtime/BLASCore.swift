import CLruNetKernels
import COpenBLAS
import Foundation

/// Which OpenBLAS kernels run, and whether this CPU could run faster ones.
///
/// OpenBLAS picks its kernels from `cpuid` when the library loads, by a table in the build:
/// Debian's 0.3.21 does not know recent Intel Xeons and takes an Emerald Rapids core for a
/// `Prescott`, so every `cblas_sgemm` (the im2col stems, linear layers, training's GEMMs) runs
/// SSE3 code at a fraction of the CPU's speed. The choice is made at load time, so only the
/// environment of a new process changes it: `OPENBLAS_CORETYPE=SkylakeX` (or `Cooperlake`,
/// `Haswell`, `Zen`). The `lrunet` command line does this itself (re-executing once, after a
/// self-check in a child process); a program that links LruNet sees ``note`` and sets the
/// variable in its own launch environment.
public enum BLASCore {
    /// The kernel family OpenBLAS chose (`openblas_get_corename`), e.g. "Zen", "SkylakeX".
    public static var name: String { String(cString: openblas_get_corename()) }

    /// A stronger OpenBLAS core this CPU runs, when OpenBLAS chose a weaker one; nil otherwise.
    public static var suggested: String? {
        suggestion(core: name, avx2: InstructionSet.avx2.isSupported, avx512: InstructionSet.avx512.isSupported,
                   bf16: lru_cpu_has_avx512bf16() != 0, amd: InstructionSet.cpuDescription.hasPrefix("AuthenticAMD"))
    }

    /// One line for `lrunet info` and `bench`: the core in use, and how to get a faster one.
    public static var note: String {
        let set = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].map { ", set by OPENBLAS_CORETYPE=\($0)" } ?? ""
        guard let better = suggested else { return "OpenBLAS core: \(name)\(set)" }
        return "OpenBLAS core: \(name)\(set); this CPU runs \(better) kernels, several times faster for sgemm "
            + "(start the process with OPENBLAS_CORETYPE=\(better))"
    }

    /// The stronger core for a CPU with these instruction sets whose OpenBLAS chose `core`, or nil.
    /// OpenBLAS's kernel families rank by the vector instructions they use: AVX-512 (SkylakeX,
    /// Cooperlake, SapphireRapids) above AVX2 + FMA (Haswell, Zen, Excavator) above AVX (Sandybridge,
    /// Bulldozer, Piledriver, Steamroller) above the SSE ones (Prescott, Core2, Nehalem, ...).
    public static func suggestion(core: String, avx2: Bool, avx512: Bool, bf16: Bool, amd: Bool) -> String? {
        func rank(_ c: String) -> Int {
            switch c.lowercased() {
            case "skylakex", "cooperlake", "sapphirerapids": return 3
            case "haswell", "zen", "excavator": return 2
            case "sandybridge", "bulldozer", "piledriver", "steamroller": return 1
            default: return 0
            }
        }
        let best = avx512 ? (bf16 ? "Cooperlake" : "SkylakeX") : avx2 ? (amd ? "Zen" : "Haswell") : nil
        guard let best, rank(best) > rank(core) else { return nil }
        return best
    }

    /// `cblas_sgemm` against a plain triple loop on odd shapes, transposed and not: whether the
    /// kernels OpenBLAS runs compute correctly on this CPU.
    public static func selfCheck() -> Bool {
        var rng = SplitMix64(seed: 12)
        for (m, n, k, transB) in [(67, 53, 41, false), (33, 129, 70, true), (1, 17, 300, false)] {
            let a = (0..<(m * k)).map { _ in rng.nextUniform() - 0.5 }
            let b = (0..<(k * n)).map { _ in rng.nextUniform() - 0.5 }
            var c = [Float](repeating: 0, count: m * n)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                        a, Int32(k), b, transB ? Int32(k) : Int32(n), 0, &c, Int32(n))
            for i in 0..<m {
                for j in 0..<n {
                    var s: Double = 0
                    for p in 0..<k { s += Double(a[i * k + p]) * Double(transB ? b[j * k + p] : b[p * n + j]) }
                    guard abs(Double(c[i * n + j]) - s) <= 1e-4 * Double(k) else { return false }
                }
            }
        }
        return true
    }
}
