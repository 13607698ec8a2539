import Foundation
import XCTest
import LruNetFuzzTargets

/// Replays every committed fuzz input (Fuzz/corpus: seeds and what the fuzzer kept;
/// Fuzz/regressions: every crash found, after its fix) through the same targets the libFuzzer
/// harnesses run, without sanitizers: each must come back with a value or a one-line error.
/// `make fuzz` runs the harnesses themselves.
final class FuzzCorpusTests: XCTestCase {
    static let fuzzDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz")

    func inputs(_ kind: String, _ target: FuzzTarget) -> [URL] {
        let dir = Self.fuzzDir.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
    }

    func testCorpusAndRegressionsReplayCleanly() throws {
        var seen = 0
        for target in FuzzTarget.allCases {
            let corpus = inputs("corpus", target), regressions = inputs("regressions", target)
            XCTAssertFalse(corpus.isEmpty, "\(target.rawValue): no seed corpus under Fuzz/corpus")
            var refused = 0
            let start = Date()
            for url in corpus + regressions {
                let bytes = try Data(contentsOf: url)
                if bytes.withUnsafeBytes({ target.run($0) }) != nil { refused += 1 }
                seen += 1
            }
            let ms = Date().timeIntervalSince(start) * 1000 / Double(max(corpus.count + regressions.count, 1))
            print("fuzz replay \(target.rawValue): \(corpus.count) corpus + \(regressions.count) regression inputs, \(refused) refused with an error, \(String(format: "%.2f", ms)) ms each")
        }
        XCTAssertGreaterThan(seen, 0)
    }

    /// The seeds are well-formed files: each target accepts its own (the .npy seeds include a
    /// float64 and a Fortran-ordered array, which are refused on purpose).
    func testSeedsAreAccepted() throws {
        for target in FuzzTarget.allCases {
            for url in inputs("corpus", target) where url.lastPathComponent.hasPrefix("seed-") {
                let bytes = try Data(contentsOf: url)
                let error = bytes.withUnsafeBytes { target.run($0) }
                if ["seed-float64", "seed-fortran"].contains(url.lastPathComponent) {
                    XCTAssertNotNil(error, "\(url.lastPathComponent) must be refused")
                } else {
                    XCTAssertNil(error, "\(target.rawValue)/\(url.lastPathComponent): \(error ?? "")")
                }
            }
        }
    }
}
