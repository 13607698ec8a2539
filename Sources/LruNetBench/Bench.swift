import CLruNetKernels
import COpenBLAS
import Foundation
import LruNet

/// Keeps the optimiser from discarding work whose result is never used.
@inline(never) func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

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
    openblas_set_num_threads(1)
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
/// and an add on the baseline path) on `threads` threads at once, each running the same
/// instruction set as the kernels.
func fmaPeak(threads: Int, runs: Int, iterations: Int = 20_000_000) -> Stat {
    // Each thread writes its own slot.
    let flopsPerThread = SharedMutable(UnsafeMutablePointer<Double>.allocate(capacity: threads))
    defer { flopsPerThread.base.deallocate() }
    let t = measure(runs: runs) {
        DispatchQueue.concurrentPerform(iterations: threads) { w in (flopsPerThread + w).pointee = lru_fma_peak(iterations) }
    }
    let flop = (0..<threads).reduce(0.0) { $0 + flopsPerThread.base[$1] }
    return Stat([flop / t.median / 1e9, flop / t.max / 1e9, flop / t.min / 1e9])
}

/// A speed as fractions of the same run's calibrations.
struct Calibration {
    let peak: Double, sgemm: Double
    func fractions(_ gflops: Double) -> String {
        String(format: "%5.1f%% of peak  %5.1f%% of sgemm", 100 * gflops / peak, 100 * gflops / sgemm)
    }
}
