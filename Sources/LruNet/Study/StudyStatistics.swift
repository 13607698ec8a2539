import Foundation

/// The statistics of a reuse study: per arm, mean and standard deviation over seeds; between
/// arms, Welch's confidence interval for the difference of means; per seed, McNemar's exact test
/// on the images one model gets right and the other wrong.
public enum StudyStatistics {
    public static func mean(_ x: [Double]) -> Double { x.isEmpty ? .nan : x.reduce(0, +) / Double(x.count) }

    /// The sample standard deviation (n - 1); NaN below two values.
    public static func standardDeviation(_ x: [Double]) -> Double {
        guard x.count >= 2 else { return .nan }
        let m = mean(x)
        return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
    }

    /// mean(b) - mean(a) with Welch's `level` confidence interval and its degrees of freedom;
    /// nil unless each arm has at least two values.
    public static func welch(_ a: [Double], _ b: [Double], level: Double = 0.95) -> (difference: Double, low: Double, high: Double, df: Double)? {
        guard a.count >= 2, b.count >= 2 else { return nil }
        let va = pow(standardDeviation(a), 2) / Double(a.count), vb = pow(standardDeviation(b), 2) / Double(b.count)
        let d = mean(b) - mean(a), se = (va + vb).squareRoot()
        guard se > 0 else { return (d, d, d, .infinity) }
        let df = pow(va + vb, 2) / (va * va / Double(a.count - 1) + vb * vb / Double(b.count - 1))
        let t = tQuantile(0.5 + level / 2, df: df)
        return (d, d - t * se, d + t * se, df)
    }

    /// Student's t distribution function.
    public static func tCDF(_ t: Double, df: Double) -> Double {
        let tail = 0.5 * regularizedBeta(df / (df + t * t), a: df / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The `p` quantile of Student's t, by bisection of ``tCDF(_:df:)``.
    public static func tQuantile(_ p: Double, df: Double) -> Double {
        guard p > 0 && p < 1 else { return p <= 0 ? -.infinity : .infinity }
        var lo = -1e4, hi = 1e4
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if tCDF(mid, df: df) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    /// Which way a difference moves as the budget grows, the values ordered by budget: the
    /// trend half of docs/reuse-study.md's rule.
    public enum Trend: String, Sendable {
        case rising = "rises at every larger budget"
        case falling = "falls at every larger budget"
        case mixed = "does not move one way across the budgets"
    }

    /// ``Trend`` of values ordered by budget; nil below two values.
    public static func trend(_ values: [Double]) -> Trend? {
        guard values.count >= 2 else { return nil }
        let steps = zip(values, values.dropFirst()).map { $1 - $0 }
        if steps.allSatisfy({ $0 > 0 }) { return .rising }
        if steps.allSatisfy({ $0 < 0 }) { return .falling }
        return .mixed
    }

    /// McNemar's exact two-sided p-value: `b` images only the first model gets right, `c` only
    /// the second; under the null each discordant image goes either way with probability 1/2.
    public static func mcNemar(onlyFirstCorrect b: Int, onlySecondCorrect c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        var tail = 0.0
        let half = Double(n) * log(2.0)
        for i in 0...k {
            let logTerm: Double = logChoose(n, i) - half
            tail += exp(logTerm)
        }
        return min(1, 2 * tail)
    }

    private static func logChoose(_ n: Int, _ k: Int) -> Double {
        let all: Double = lgamma(Double(n + 1)), chosen: Double = lgamma(Double(k + 1)), rest: Double = lgamma(Double(n - k + 1))
        return all - chosen - rest
    }

    /// I_x(a, b), by the continued fraction (Lentz's method).
    static func regularizedBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        if x > (a + 1) / (a + b + 2) { return 1 - regularizedBeta(1 - x, a: b, b: a) }   // where the fraction converges fast
        let logGammas: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let front = exp(logGammas + logPowers)
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var f = d
        for m in 1...300 {
            let m = Double(m)
            var num: Double = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }; c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; f *= d * c
            let numerator: Double = -(a + m) * (a + b + m) * x
            num = numerator / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }; c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            f *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return front * f / a
    }
}
