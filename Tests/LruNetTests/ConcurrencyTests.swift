import XCTest
import Synchronization
@testable import LruNet

/// What a network computes in a fixed workload: eval logits, three SGD steps, eval logits again
/// and the weights after them. Used to compare runs bit for bit.
struct Outcome: Equatable {
    var before: [Float], after: [Float], weights: [Float], losses: [Double]
}

enum Workload {
    static let configs: [ModelConfig] = [
        ModelConfig(arch: .lrunet, numClasses: 10, layerReuse: 4, inChannels: 1),
        ModelConfig(arch: .mobilenetv2, numClasses: 10, widthMult: 0.25, inChannels: 1),
        ModelConfig(arch: .shufflenet, numClasses: 10, widthMult: 0.5, inChannels: 1),
        ModelConfig(arch: .shufflenetv2, numClasses: 10, widthMult: 0.25, inChannels: 1),
    ]

    static func input(batch: Int, seed: UInt64) -> (Tensor, [Int]) {
        var rng = SplitMix64(seed: seed)
        return (Tensor(shape: [batch, 1, 28, 28], data: randomArray(batch * 28 * 28, &rng)), (0..<batch).map { $0 % 10 })
    }

    static func run(_ net: Network, steps: Int = 3) throws -> Outcome {
        net.initialise(seed: 7)
        let (x, y) = input(batch: 12, seed: 3)
        let before = try net(x).data
        var losses: [Double] = []
        for s in 0..<steps {
            losses.append(try net.trainStep(images: x, labels: y, optimizer: SGD(momentum: 0.9, weightDecay: 5e-4, nesterov: false),
                                            learningRate: 0.05, seed: UInt64(s)).loss)
        }
        let dict = net.stateDict()
        return Outcome(before: before, after: try net(x).data, weights: dict.keys.sorted().flatMap { dict[$0]!.data }, losses: losses)
    }
}

/// Several networks in one process, used from several threads at once: each computes what it
/// computes alone, on all of its threads, and nothing deadlocks.
final class ConcurrencyTests: XCTestCase {
    /// Runs `body(i)` for every `i` on its own thread, all started together; returns the results in order.
    private func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
        let results = Mutex<[Int: Result<T, any Error>]>([:])
        let done = DispatchGroup()
        for i in 0..<count {
            done.enter()
            Thread {
                let r = Result { try body(i) }
                results.withLock { $0[i] = r }
                done.leave()
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 600), .success, "a thread did not finish")
        return try (0..<count).map { i in try results.withLock { $0[i]! }.get() }
    }

    func testNetworksOfEveryKindRunSideBySide() throws {
        let configs = Workload.configs
        let alone = try configs.map { try Workload.run(Network(config: $0, threading: Threading(threads: 2))) }
        // Two rounds, every architecture twice at once: eight networks, sixteen worker threads.
        for round in 0..<2 {
            let jobs = configs + configs
            let results = try onThreads(jobs.count) { i -> (Outcome, Int) in
                let net = try Network(config: jobs[i], threading: Threading(threads: 2))
                return (try Workload.run(net), net.threading.pool.regions)
            }
            for (i, (outcome, regions)) in results.enumerated() {
                let name = jobs[i].summary
                XCTAssertEqual(outcome, alone[i % configs.count], "\(name) differs when run beside others (round \(round))")
                XCTAssertGreaterThan(regions, 0, "\(name) ran no region on its two threads")
            }
        }
    }

    /// Networks that share one `Threading` (and so one pool) from different threads: a region
    /// that finds the pool busy runs on its caller alone, with the same result.
    func testNetworksSharingAPoolDoNotDeadlock() throws {
        let threading = Threading(threads: 2)
        let configs = Array(Workload.configs.prefix(3))
        let alone = try configs.map { try Workload.run(Network(config: $0, threading: Threading(threads: 2))) }
        let results = try onThreads(configs.count) { i in try Workload.run(Network(config: configs[i], threading: threading)) }
        XCTAssertEqual(results, alone)
        XCTAssertGreaterThan(threading.pool.regions, 0)
    }
}
