import XCTest
import CLruNetKernels
@testable import LruNet

/// Choosing the kernel path and the thread count.
final class DispatchTests: XCTestCase {
    func testPathsAndSelection() throws {
        let supported = InstructionSet.supported
        XCTAssertTrue(supported.contains(.baseline), "the baseline runs everywhere")
        XCTAssertTrue(supported.contains(InstructionSet.best))
        XCTAssertEqual(InstructionSet.baseline.lanes, 4)
        XCTAssertEqual(InstructionSet.avx2.lanes, 8)
        XCTAssertEqual(InstructionSet.avx512.lanes, 16)
        let before = InstructionSet.active
        defer { try? InstructionSet.use(before) }
        for set in supported {
            try InstructionSet.use(set)
            XCTAssertEqual(InstructionSet.active, set)
        }
        for set in InstructionSet.allCases where !set.isSupported {
            XCTAssertThrowsError(try InstructionSet.use(set)) { XCTAssertTrue("\($0)".contains("lacks"), "\($0)") }
            XCTAssertNotEqual(InstructionSet.active, set)
        }
        XCTAssertTrue(InstructionSet.cpuDescription.contains("sse2") || !InstructionSet.cpuDescription.isEmpty)
        // The AVX-512 kernels' logic runs on AVX2 machines through the test path.
        if InstructionSet.avx2.isSupported {
            XCTAssertTrue(KernelPath.available.map(\.description).contains("avx2-w16"))
        }
    }

    func testCgroupQuota() throws {
        let root = temporaryPath("cgroup-\(UUID().uuidString)")
        func write(_ path: String, _ text: String) throws {
            try FileManager.default.createDirectory(atPath: (root + path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try text.write(toFile: root + path, atomically: true, encoding: .utf8)
        }
        // cgroup v2: a container limited to 2 CPUs (200 ms per 100 ms), at the cgroup or an ancestor.
        try write("/kubepods/pod1/cpu.max", "200000 100000\n")
        XCTAssertEqual(CPUBudget.cgroupQuota(procSelfCgroup: "0::/kubepods/pod1\n", root: root), 2)
        try write("/kubepods/pod1/c1/cpu.max", "max 100000\n")
        XCTAssertEqual(CPUBudget.cgroupQuota(procSelfCgroup: "0::/kubepods/pod1/c1\n", root: root), 2, "the ancestor's limit holds")
        try write("/kubepods/pod2/cpu.max", "150000 100000\n")
        XCTAssertEqual(CPUBudget.cgroupQuota(procSelfCgroup: "0::/kubepods/pod2\n", root: root), 2, "1.5 CPUs round up")
        try write("/free/cpu.max", "max 100000\n")
        XCTAssertNil(CPUBudget.cgroupQuota(procSelfCgroup: "0::/free\n", root: root))
        // cgroup v1: quota over period in the cpu controller's hierarchy.
        try write("/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n")
        try write("/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
        let v1 = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
        XCTAssertEqual(CPUBudget.cgroupQuota(procSelfCgroup: v1, root: root), 3)
        try write("/cpu,cpuacct/docker/def/cpu.cfs_quota_us", "-1\n")
        try write("/cpu,cpuacct/docker/def/cpu.cfs_period_us", "100000\n")
        XCTAssertNil(CPUBudget.cgroupQuota(procSelfCgroup: "4:cpu,cpuacct:/docker/def\n", root: root))
        XCTAssertNil(CPUBudget.cgroupQuota(procSelfCgroup: nil, root: root))
        XCTAssertGreaterThanOrEqual(CPUBudget.threads, 1)
    }

    /// More threads than cores: the pool grows, every region runs, results match one thread.
    func testManyThreadsMatchOneThread() throws {
        var rng = SplitMix64(seed: 41)
        let model = try Network(config: ModelConfig.lrunet(numClasses: 10, layerReuse: 3, inChannels: 1), threading: Threading(threads: 1))
        model.initialise(seed: 2)
        for batch in [1, 5, 40] {
            let x = Tensor(shape: [batch, 1, 28, 28], data: randomArray(batch * 784, &rng))
            model.threading = Threading(threads: 1)
            let one = try model(x)
            model.threading = Threading(threads: manyThreads)
            XCTAssertEqual(model.threading.pool.participants, manyThreads)
            let regions = model.threading.pool.regions
            let many = try model(x)
            XCTAssertGreaterThan(model.threading.pool.regions, regions, "\(manyThreads) threads must run parallel regions")
            assertClose(many.data, one.data, atol: 1e-5, rtol: 1e-5, "batch \(batch), \(manyThreads) threads vs 1")
        }
    }
}
