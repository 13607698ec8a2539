import XCTest
import CAllocCounter
@testable import LruNet

/// Workspaces are planned once per batch shape: after a warm-up pass, a forward pass and a
/// training step must not touch the heap. Counted by interposing malloc and friends for the
/// whole process (CAllocCounter), so allocations by the Swift runtime or OpenBLAS count too.
/// On two threads the steps must really have run parallel regions, so the count covers the
/// hand-over of work to the worker threads (whose region bodies capture nothing).
final class AllocationTests: XCTestCase {
    /// (heap allocations, multi-thread parallel regions of `threading`'s pool) during `body`.
    func allocations(_ threading: Threading = Threading(threads: 1), _ body: () throws -> Void) rethrows -> (heap: UInt64, regions: UInt64) {
        let r0 = threading.pool.regions
        lrunet_alloc_counter_start()
        defer { _ = lrunet_alloc_counter_stop() }
        try body()
        let heap = lrunet_alloc_counter_stop()
        return (heap, UInt64(threading.pool.regions - r0))
    }

    func assertNoAllocations(_ counts: (heap: UInt64, regions: UInt64), _ what: String, threads: Int,
                             file: StaticString = #filePath, line: UInt = #line) {
        if threads == 1 {
            XCTAssertEqual(counts.regions, 0, "\(what): one thread must not start parallel regions", file: file, line: line)
        } else {
            XCTAssertGreaterThan(counts.regions, 0, "\(what): two threads must run parallel regions", file: file, line: line)
        }
        XCTAssertEqual(counts.heap, 0, "\(what): heap allocations in a steady-state step (\(counts.regions) parallel regions)",
                       file: file, line: line)
    }

    func testCounterSeesAllocations() throws {
        try XCTSkipIf(lrunet_alloc_counter_available() == 0, "allocation counting needs glibc, without a sanitizer")
        let n = allocations { blackHoleArray([Float](repeating: 1, count: 1000)) }
        XCTAssertGreaterThanOrEqual(n.heap, 1, "the counter must see an array allocation")
    }

    func testSteadyStateForwardAndTrainingStepDoNotAllocate() throws {
        try XCTSkipIf(lrunet_alloc_counter_available() == 0, "allocation counting needs glibc, without a sanitizer")
        for (batch, threads) in [(1, 2), (8, 2), (8, 1)] {
            let model = try Network(config: ModelConfig.lrunet(numClasses: 10, layerReuse: 3, inChannels: 1), threading: Threading(threads: threads))
            model.initialise(seed: 3)
            var rng = SplitMix64(seed: 5)
            let x = randomArray(batch * 28 * 28, &rng)
            let labels = (0..<batch).map { Int32($0 % 10) }
            var logits = [Float](repeating: 0, count: batch * 10)
            let sgd = SGD()
            try x.withUnsafeBufferPointer { xb in try labels.withUnsafeBufferPointer { lb in try logits.withUnsafeMutableBufferPointer { out in
                func infer() throws { try model.infer(xb.baseAddress!, batch: batch, channels: 1, height: 28, width: 28, into: out.baseAddress!) }
                func step() throws {
                    _ = try model.trainStep(images: xb.baseAddress!, labels: lb.baseAddress!, batch: batch, channels: 1, height: 28,
                                            width: 28, optimizer: sgd, learningRate: 0.01, seed: 1)
                }
                try infer(); try infer()           // plans and warms up
                assertNoAllocations(try allocations(model.threading) { try infer() }, "inference, batch \(batch), \(threads) threads", threads: threads)
                try step(); try step()
                assertNoAllocations(try allocations(model.threading) { try step() }, "training step, batch \(batch), \(threads) threads", threads: threads)
                try infer()                        // back to inference: re-planned once
                assertNoAllocations(try allocations(model.threading) { try infer() }, "inference after training, batch \(batch)", threads: threads)
            } } }
        }
    }
}

@inline(never) func blackHoleArray(_ a: [Float]) { _ = a.count }
