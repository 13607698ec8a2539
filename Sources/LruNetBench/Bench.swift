import CLruNetKernels
import COpenBLAS
import Foundation
import LruNet

/// Keeps the optimiser from discarding work whose result is never used.
@inline(never) func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// The CPU's model name and the thread count, as the reports print them.
func machineDescription(threads: Int) -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
        .split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
    return "\(cpu), \(threads == 1 ? "1 thread" : "\(threads) threads")"
}

/// Median and spread (min, max) of repeated timings.
struct Stat: Codable {
    var median: Double, min: Double, max: Double
    init(_ xs: [Double]) {
        let s = xs.sorted()
        median = s[s.count / 2]; min = s.first!; max = s.last!
    }
}

/// Times `body` `runs` times after `warmup` untimed runs.
func measure(runs: Int, warmup: Int = 1, _ body: () throws -> Void) rethrows -> Stat {
    for _ in 0..<warmup { try body() }
    var xs: [Double] = []
    for _ in 0..<runs { let t = now(); try body(); xs.append(now() - t) }
    return Stat(xs)
}

/// GFLOP/s of one-thread `cblas_sgemm` on square n x n matrices, split by
/// column blocks across `threads` the way the engine splits its GEMMs.
func sgemmCalibration(n: Int, threads: Int, runs: Int) -> Stat {
    _ = Threading(threads: 1)         // OpenBLAS on one thread, as the engine runs it
    let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
    var c = [Float](repeating: 0, count: n * n)
    let t = measure(runs: runs) {
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            // Each thread writes its own columns of C.
            let (A, B, C) = (ConstRows(ap.baseAddress!), ConstRows(bp.baseAddress!), Rows(cp.baseAddress!))
            DispatchQueue.concurrentPerform(iterations: threads) { w in
                let lo = n * w / threads, hi = n * (w + 1) / threads
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(hi - lo), Int32(n), 1,
                            A.base, Int32(n), B + lo, Int32(n), 0, C + lo, Int32(n))
            }
        } } }
        blackHole(c[0])
    }
    let flop = 2 * Double(n) * Double(n) * Double(n)
    return Stat([flop / t.median / 1e9, flop / t.max / 1e9, flop / t.min / 1e9])
}

/// GFLOP/s of the active kernel path's multiply-add peak: independent FMA chains (a multiply
/// and an add on the baseline path; 12 chains of 8 lanes, 24 of 16) on `threads` threads at
/// once, each running the same instruction set as the kernels.
///
/// Each thread times its own loop and the rates add up, so a thread that starts late (or a
/// dispatch that runs two loops one after the other) does not dilute the sum; a run can only
/// read low, never high, so the peak is the best run and min/median/max show how steady it was.
func fmaPeak(threads: Int, runs: Int, iterations: Int = 5_000_000) -> (peak: Double, spread: Stat) {
    // Each thread writes its own slot.
    let rates = SharedMutable(UnsafeMutablePointer<Double>.allocate(capacity: threads))
    defer { rates.base.deallocate() }
    func once() -> Double {
        DispatchQueue.concurrentPerform(iterations: threads) { w in
            let t = now()
            let flop = lru_fma_peak(iterations)
            (rates + w).pointee = flop / (now() - t) / 1e9
        }
        return (0..<threads).reduce(0.0) { $0 + rates.base[$1] }
    }
    _ = once()   // wakes the threads and the clock
    let spread = Stat((0..<max(runs, 1)).map { _ in once() })
    return (spread.max, spread)
}

/// A speed as fractions of the same run's calibrations.
struct Calibration {
    let peak: Double, sgemm: Double
    func fractions(_ gflops: Double) -> String {
        String(format: "%5.1f%% of peak  %5.1f%% of sgemm", 100 * gflops / peak, 100 * gflops / sgemm)
    }
}
