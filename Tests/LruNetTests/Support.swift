import XCTest
@testable import LruNet

/// Approximate equality used by every numeric test: |a - b| <= atol + rtol * |b|, elementwise.
/// Float32 kernels that sum K products differ from a reference by roughly K * ulp, hence the default tolerances.
func assertClose(_ a: [Float], _ b: [Float], atol: Float = 1e-4, rtol: Float = 1e-4,
                 _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "sizes differ: \(message())", file: file, line: line)
    var worst: Float = 0, at = -1
    for i in 0..<min(a.count, b.count) {
        let err = abs(a[i] - b[i]) - (atol + rtol * abs(b[i]))
        if err > worst || a[i].isNaN != b[i].isNaN { worst = max(err, worst); at = i }
    }
    if at >= 0 { XCTFail("mismatch at \(at): \(a[at]) vs \(b[at]) \(message())", file: file, line: line) }
}

/// "More threads than cores" for the threading tests (the machines this runs on have 2 to 64).
let manyThreads = 16

func randomArray(_ n: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
    (0..<n).map { _ in scale * (2 * rng.nextUniform() - 1) }
}

/// NCHW <-> CNHW for tests that state references in PyTorch's layout.
func toCNHW(_ x: [Float], n: Int, c: Int, plane: Int) -> [Float] {
    var out = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in nchwToCnhw(s.baseAddress!, d.baseAddress!, n: n, c: c, plane: plane) } }
    return out
}
func toNCHW(_ x: [Float], n: Int, c: Int, plane: Int) -> [Float] {
    var out = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in cnhwToNchw(s.baseAddress!, d.baseAddress!, n: n, c: c, plane: plane) } }
    return out
}

/// Direct NCHW grouped convolution, the reference for every conv kernel.
func naiveConv(_ x: [Float], n: Int, cin: Int, h: Int, w: Int, weight: [Float], bias: [Float]?,
               cout: Int, k: Int, stride: Int, pad: Int, groups: Int) -> (out: [Float], ho: Int, wo: Int) {
    let ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1
    let cinG = cin / groups, coutG = cout / groups
    var out = [Float](repeating: 0, count: n * cout * ho * wo)
    for b in 0..<n { for o in 0..<cout {
        let g = o / coutG
        for oy in 0..<ho { for ox in 0..<wo {
            var s: Double = Double(bias?[o] ?? 0)
            for ci in 0..<cinG { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * stride - pad + ky, ix = ox * stride - pad + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                s += Double(weight[((o * cinG + ci) * k + ky) * k + kx]) * Double(x[((b * cin + g * cinG + ci) * h + iy) * w + ix])
            } } }
            out[((b * cout + o) * ho + oy) * wo + ox] = Float(s)
        } }
    } }
    return (out, ho, wo)
}

/// Where the authors' checkpoints and golden outputs live, or nil (tests then skip with a message).
var sharedDirectory: String? {
    for dir in [Pretrained.directory.map { ($0 as NSString).deletingLastPathComponent }, "../shared", "shared"].compactMap({ $0 }) {
        if FileManager.default.fileExists(atPath: dir + "/pretrained/index.json") { return dir }
    }
    return nil
}

func temporaryPath(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "lrunet-tests-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir + "/" + name
}

/// Runs `body` once on every kernel path this CPU supports (baseline, avx2, avx512 and the
/// 16-lane AVX-512 code compiled for AVX2), restoring the active path afterwards. The path's
/// name goes into failure messages through `body`'s argument.
func forEachKernelPath(_ body: (String) throws -> Void) rethrows {
    let paths = KernelPath.available
    XCTAssertGreaterThanOrEqual(paths.count, 1)
    for path in paths { try path.run { try body("path \(path)") } }
}

/// One small network of each architecture: lru2 on one channel, the four baselines on three.
let oneOfEachArchitecture: [ModelConfig] = [
    .lrunet(numClasses: 10, layerReuse: 2, inChannels: 1),
    ModelConfig(arch: .mobilenet, numClasses: 10, widthMult: 0.25, inChannels: 3),
    ModelConfig(arch: .mobilenetv2, numClasses: 10, widthMult: 0.25, inChannels: 3),
    ModelConfig(arch: .shufflenet, numClasses: 10, widthMult: 0.5, groups: 3, inChannels: 3),
    ModelConfig(arch: .shufflenetv2, numClasses: 10, widthMult: 0.5, inChannels: 3),
]
