import XCTest
@testable import LruNet
import CLruNetKernels

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

    func testOpenBLASIdleThreadsEndWhenTheEngineStarts() throws {
        // Debian's pthreads OpenBLAS keeps `blas_server_avail` set while its server threads live.
        let library = dlopen(nil, RTLD_NOW)
        defer { if let library { dlclose(library) } }
        guard dlsym(library, "blas_thread_shutdown_") != nil, let avail = dlsym(library, "blas_server_avail") else {
            throw XCTSkip("this OpenBLAS build has no server threads")
        }
        _ = Threading(threads: 2)
        XCTAssertEqual(avail.assumingMemoryBound(to: Int32.self).pointee, 0, "OpenBLAS's idle threads still run")
        XCTAssertTrue(BLASCore.selfCheck(), "cblas_sgemm after its threads ended")
    }

    func testTheSelfCheckPassesWithTheCoreInUse() {
        XCTAssertTrue(BLASCore.selfCheck(), "cblas_sgemm on \(BLASCore.name) disagrees with the naive product")
        XCTAssertFalse(BLASCore.name.isEmpty)
    }
}

/// Flush-to-zero and denormals-are-zero: on in the engine's worker threads, on in the caller's
/// thread during a pass, and the caller's own mode restored afterwards.
final class DenormalModeTests: XCTestCase {
    func testWorkersFlushAndTheCallerGetsItsModeBack() throws {
        #if arch(x86_64)
        let threading = Threading(threads: 2)
        let flags = SharedMutable(UnsafeMutablePointer<Int32>.allocate(capacity: 2))
        defer { flags.base.deallocate() }
        struct Args: Sendable { let flags: SharedMutable<Int32> }
        // Two items on two threads: item 1 runs on a worker.
        threading.parallelFor(2, Args(flags: flags)) { args, range in
            for i in range { (args.pointee.flags + i).pointee = lru_fpu_flushes() }
        }
        XCTAssertEqual(flags.base[1], 1, "a worker thread does not flush denormals")
        XCTAssertEqual(lru_fpu_flushes(), 0, "the test thread starts with IEEE denormals")
        let model = try Network(config: .lrunet(numClasses: 10, layerReuse: 2, inChannels: 1), threading: threading)
        model.initialise(seed: 1)
        _ = try model(Tensor(zeros: [1, 1, 28, 28]))
        XCTAssertEqual(lru_fpu_flushes(), 0, "a pass left the caller's thread flushing denormals")
        #else
        throw XCTSkip("MXCSR is x86")
        #endif
    }
}
