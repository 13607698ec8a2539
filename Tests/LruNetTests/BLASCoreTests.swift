import XCTest
@testable import LruNet

/// Which OpenBLAS core a CPU should run, and the sgemm self-check that guards a change.
final class BLASCoreTests: XCTestCase {
    func testSuggestsTheStrongestCoreTheCPURunsOnlyWhenOpenBLASChoseWeaker() {
        // Debian's OpenBLAS 0.3.21 on an Emerald Rapids Xeon (AVX-512 with BF16) says Prescott.
        XCTAssertEqual(BLASCore.suggestion(core: "Prescott", avx2: true, avx512: true, bf16: true, amd: false), "Cooperlake")
        XCTAssertEqual(BLASCore.suggestion(core: "Prescott", avx2: true, avx512: true, bf16: false, amd: false), "SkylakeX")
        XCTAssertEqual(BLASCore.suggestion(core: "Sandybridge", avx2: true, avx512: false, bf16: false, amd: false), "Haswell")
        XCTAssertEqual(BLASCore.suggestion(core: "Nehalem", avx2: true, avx512: false, bf16: false, amd: true), "Zen")
        // A choice as good as the CPU's (or better than its own features say) is left alone.
        XCTAssertNil(BLASCore.suggestion(core: "Zen", avx2: true, avx512: false, bf16: false, amd: true))
        XCTAssertNil(BLASCore.suggestion(core: "SkylakeX", avx2: true, avx512: true, bf16: true, amd: false))
        XCTAssertNil(BLASCore.suggestion(core: "Haswell", avx2: true, avx512: false, bf16: false, amd: false))
        XCTAssertNil(BLASCore.suggestion(core: "Prescott", avx2: false, avx512: false, bf16: false, amd: false))
    }

    func testTheSelfCheckPassesWithTheCoreInUse() {
        XCTAssertTrue(BLASCore.selfCheck(), "cblas_sgemm on \(BLASCore.name) disagrees with the naive product")
        XCTAssertFalse(BLASCore.name.isEmpty)
    }
}
