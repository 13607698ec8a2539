import Foundation

/// One epoch of training, as logged.
public struct EpochRecord: Codable, Equatable, Sendable {
    public var epoch: Int
    public var learningRate: Float
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var testLoss: Double
    public var testAccuracy: Double
    public var testCorrect: Int
    public var testTotal: Int
    public var imagesPerSecond: Double
    public var seconds: Double

    static let csvHeader = "epoch,lr,train_loss,train_acc,test_loss,test_acc,test_correct,test_total,train_img_per_s,seconds"
    var csvRow: String {
        String(format: "%d,%.6g,%.6f,%.4f,%.6f,%.4f,%d,%d,%.1f,%.1f", epoch, learningRate, trainLoss, 100 * trainAccuracy,
               testLoss, 100 * testAccuracy, testCorrect, testTotal, imagesPerSecond, seconds)
    }
}

/// Writes `log.csv` and `curves.svg` for a run.
public enum TrainingLog {
    public static func writeCSV(_ records: [EpochRecord], to path: String) throws {
        let text = ([EpochRecord.csvHeader] + records.map(\.csvRow)).joined(separator: "\n") + "\n"
        try FileBytes.writeAtomically(Data(text.utf8), to: path)
    }

    /// Two panels: loss (train, test) and accuracy (train, test) per epoch.
    public static func writeSVG(_ records: [EpochRecord], title: String, to path: String) throws {
        let epochs = records.map { Double($0.epoch + 1) }
        let loss = SVGChart.Panel(title: "loss", yLabel: "cross-entropy", series: [
            .init(name: "train", color: "#1f77b4", x: epochs, y: records.map(\.trainLoss)),
            .init(name: "test", color: "#d62728", x: epochs, y: records.map(\.testLoss)),
        ])
        let acc = SVGChart.Panel(title: "accuracy", yLabel: "%", series: [
            .init(name: "train", color: "#1f77b4", x: epochs, y: records.map { 100 * $0.trainAccuracy }),
            .init(name: "test", color: "#d62728", x: epochs, y: records.map { 100 * $0.testAccuracy }),
        ])
        try FileBytes.writeAtomically(Data(SVGChart.render(title: title, xLabel: "epoch", panels: [loss, acc]).utf8), to: path)
    }
}

/// A small dependency-free SVG line chart: side-by-side panels, axes with ticks, a legend.
public enum SVGChart {
    public struct Series {
        public var name: String, color: String
        public var x: [Double], y: [Double]
        public init(name: String, color: String, x: [Double], y: [Double]) { self.name = name; self.color = color; self.x = x; self.y = y }
    }
    public struct Panel {
        public var title: String, yLabel: String
        public var series: [Series]
        public init(title: String, yLabel: String, series: [Series]) { self.title = title; self.yLabel = yLabel; self.series = series }
    }

    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let span = max(hi - lo, 1e-9)
        let raw = span / 5, mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t = ceil(lo / step) * step, out: [Double] = []
        while t <= hi + 1e-9 { out.append(t); t += step }
        return out
    }

    public static func render(title: String, xLabel: String, panels: [Panel]) -> String {
        let pw = 420.0, ph = 300.0, ml = 60.0, mt = 50.0, mb = 45.0, gap = 40.0
        let width = Double(panels.count) * (pw + ml + gap) + 20
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(ph + mt + mb + 10))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(width / 2))" y="20" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
        for (k, panel) in panels.enumerated() {
            let ox = ml + Double(k) * (pw + ml + gap), oy = mt
            let xs = panel.series.flatMap(\.x), ys = panel.series.flatMap(\.y).filter { $0.isFinite }
            let x0 = xs.min() ?? 0, x1 = max(xs.max() ?? 1, x0 + 1)
            var y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
            if y1 - y0 < 1e-9 { y0 -= 1; y1 += 1 }
            let pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad
            func px(_ x: Double) -> Double { ox + (x - x0) / (x1 - x0) * pw }
            func py(_ y: Double) -> Double { oy + ph - (y - y0) / (y1 - y0) * ph }
            svg += "<text x=\"\(Int(ox + pw / 2))\" y=\"\(Int(oy - 10))\" text-anchor=\"middle\" font-size=\"13\">\(escape(panel.title))</text>\n"
            svg += "<rect x=\"\(ox)\" y=\"\(oy)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#444\"/>\n"
            for t in ticks(y0, y1) {
                svg += "<line x1=\"\(ox)\" x2=\"\(ox + pw)\" y1=\"\(py(t))\" y2=\"\(py(t))\" stroke=\"#ddd\"/>"
                svg += "<text x=\"\(ox - 6)\" y=\"\(py(t) + 4)\" text-anchor=\"end\">\(label(t))</text>\n"
            }
            for t in ticks(x0, x1) {
                svg += "<text x=\"\(px(t))\" y=\"\(oy + ph + 16)\" text-anchor=\"middle\">\(label(t))</text>\n"
            }
            svg += "<text x=\"\(Int(ox + pw / 2))\" y=\"\(Int(oy + ph + 34))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
            svg += "<text transform=\"translate(\(Int(ox - 45)),\(Int(oy + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(panel.yLabel))</text>\n"
            for (i, s) in panel.series.enumerated() {
                let pts = zip(s.x, s.y).filter { $0.1.isFinite }.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(pts)\"/>\n"
                for (x, y) in zip(s.x, s.y) where y.isFinite { svg += "<circle cx=\"\(px(x))\" cy=\"\(py(y))\" r=\"2.5\" fill=\"\(s.color)\"/>" }
                svg += "\n<rect x=\"\(ox + 10)\" y=\"\(oy + 10 + Double(i) * 18)\" width=\"12\" height=\"3\" fill=\"\(s.color)\"/>"
                svg += "<text x=\"\(ox + 28)\" y=\"\(oy + 15 + Double(i) * 18)\">\(escape(s.name))</text>\n"
            }
        }
        return svg + "</svg>\n"
    }

    static func label(_ v: Double) -> String {
        abs(v) >= 1000 || v == v.rounded() ? String(format: "%.0f", v) : String(format: "%.3g", v)
    }
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
