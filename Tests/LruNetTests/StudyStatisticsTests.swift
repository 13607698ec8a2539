import XCTest
@testable import LruNet

/// The reuse study's statistics against values computed by hand or tabulated.
final class StudyStatisticsTests: XCTestCase {
    func testStudentQuantilesMatchTheTables() {
        XCTAssertEqual(StudyStatistics.tQuantile(0.975, df: 1), 12.7062, accuracy: 1e-3)
        XCTAssertEqual(StudyStatistics.tQuantile(0.975, df: 4), 2.7764, accuracy: 1e-4)
        XCTAssertEqual(StudyStatistics.tQuantile(0.975, df: 10), 2.2281, accuracy: 1e-4)
        XCTAssertEqual(StudyStatistics.tQuantile(0.975, df: 1e7), 1.95996, accuracy: 1e-4)
        XCTAssertEqual(StudyStatistics.tQuantile(0.5, df: 3), 0, accuracy: 1e-6)
        XCTAssertEqual(StudyStatistics.tCDF(-2.2281, df: 10), 0.025, accuracy: 1e-5)
    }

    func testWelchIntervalOfAWorkedExample() throws {
        // Two arms with SD 1 and three values each: SE sqrt(2/3), 4 degrees of freedom.
        let w = try XCTUnwrap(StudyStatistics.welch([1, 2, 3], [4, 5, 6]))
        XCTAssertEqual(w.difference, 3, accuracy: 1e-12)
        XCTAssertEqual(w.df, 4, accuracy: 1e-9)
        XCTAssertEqual(w.low, 3 - 2.7764 * (2.0 / 3).squareRoot(), accuracy: 1e-3)
        XCTAssertEqual(w.high, 3 + 2.7764 * (2.0 / 3).squareRoot(), accuracy: 1e-3)
        // Unequal variances: Welch-Satterthwaite's df lies between the smaller n - 1 and n1 + n2 - 2.
        let u = try XCTUnwrap(StudyStatistics.welch([90.1, 90.5, 91.0, 90.7], [91.0, 93.5, 92.0]))
        XCTAssertGreaterThan(u.df, 2); XCTAssertLessThan(u.df, 5)
        XCTAssertNil(StudyStatistics.welch([1], [2, 3]))
        XCTAssertEqual(StudyStatistics.standardDeviation([2, 4, 4, 4, 5, 5, 7, 9]), 2.13809, accuracy: 1e-5)
    }

    func testMcNemarExact() {
        // n = 12 discordant, 2 one way: 2 * (1 + 12 + 66) / 4096.
        XCTAssertEqual(StudyStatistics.mcNemar(onlyFirstCorrect: 10, onlySecondCorrect: 2), 2 * 79 / 4096.0, accuracy: 1e-12)
        XCTAssertEqual(StudyStatistics.mcNemar(onlyFirstCorrect: 5, onlySecondCorrect: 5), 1)
        XCTAssertEqual(StudyStatistics.mcNemar(onlyFirstCorrect: 0, onlySecondCorrect: 0), 1)
        XCTAssertLessThan(StudyStatistics.mcNemar(onlyFirstCorrect: 300, onlySecondCorrect: 200), 1e-5)
    }

    func testTrendOfADifferenceOverBudgets() {
        XCTAssertEqual(StudyStatistics.trend([-8.5, -2, 0.3]), .rising)
        XCTAssertEqual(StudyStatistics.trend([1, 0.5]), .falling)
        XCTAssertEqual(StudyStatistics.trend([-1, 0.5, 0.2]), .mixed)
        XCTAssertEqual(StudyStatistics.trend([0.5, 0.5]), .mixed)   // no change is no trend
        XCTAssertNil(StudyStatistics.trend([0.5]))
    }
}
