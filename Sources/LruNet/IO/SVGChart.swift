import Foundation

/// A small dependency-free SVG line chart: side-by-side panels, axes with ticks, a legend.
package enum SVGChart {
    package struct Series {
        package var name: String, color: String
        package var x: [Double], y: [Double]
        package init(name: String, color: String, x: [Double], y: [Double]) { self.name = name; self.color = color; self.x = x; self.y = y }
    }
    package struct Panel {
        package var title: String, yLabel: String
        package var series: [Series]
        package init(title: String, yLabel: String, series: [Series]) { self.title = title; self.yLabel = yLabel; self.series = series }
    }

    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let span = max(hi - lo, 1e-9)
        let raw = span / 5, mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t = ceil(lo / step) * step, out: [Double] = []
        while t <= hi + 1e-9 { out.append(t); t += step }
        return out
    }

    package static func render(title: String, xLabel: String, panels: [Panel]) -> String {
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

    /// One point of a scatter, with its label.
    package struct Point {
        package var x: Double, y: Double, label: String, color: String
        /// Half the length of a vertical error bar (0: none).
        package var error: Double
        package init(x: Double, y: Double, label: String, color: String, error: Double = 0) {
            self.x = x; self.y = y; self.label = label; self.color = color; self.error = error
        }
    }
    package struct ScatterPanel {
        package var title: String, xLabel: String, yLabel: String
        package var points: [Point]
        /// A logarithmic x axis (for quantities that span decades, such as MACs).
        package var logX: Bool
        package init(title: String, xLabel: String, yLabel: String, points: [Point], logX: Bool = false) {
            self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.points = points; self.logX = logX
        }
    }

    /// Scatter panels in a grid of `columns`, each point labelled, with a legend of the colours.
    package static func scatter(title: String, panels: [ScatterPanel], columns: Int, legend: [(String, String)]) -> String {
        let pw = 380.0, ph = 260.0, ml = 60.0, mt = 60.0, mb = 50.0, gap = 40.0
        let rows = (panels.count + columns - 1) / max(columns, 1)
        let width = Double(columns) * (pw + ml + gap) + 20, height = Double(rows) * (ph + mt + mb) + 60
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(width / 2))" y="20" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
        for (i, (name, color)) in legend.enumerated() {
            let x = 20 + Double(i) * 130
            svg += "<circle cx=\"\(x)\" cy=\"38\" r=\"5\" fill=\"\(color)\"/><text x=\"\(x + 10)\" y=\"42\">\(escape(name))</text>\n"
        }
        for (k, panel) in panels.enumerated() {
            let ox = ml + Double(k % columns) * (pw + ml + gap), oy = 30 + mt + Double(k / columns) * (ph + mt + mb)
            func fx(_ v: Double) -> Double { panel.logX ? log10(max(v, 1e-12)) : v }
            let xs = panel.points.map { fx($0.x) }, ys = panel.points.flatMap { [$0.y - $0.error, $0.y + $0.error] }
            var x0 = xs.min() ?? 0, x1 = xs.max() ?? 1, y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
            if x1 - x0 < 1e-9 { x0 -= 1; x1 += 1 }
            if y1 - y0 < 1e-9 { y0 -= 1; y1 += 1 }
            let padX = (x1 - x0) * 0.08, padY = (y1 - y0) * 0.1
            x0 -= padX; x1 += padX; y0 -= padY; y1 += padY
            func px(_ x: Double) -> Double { ox + (fx(x) - x0) / (x1 - x0) * pw }
            func py(_ y: Double) -> Double { oy + ph - (y - y0) / (y1 - y0) * ph }
            svg += "<text x=\"\(Int(ox + pw / 2))\" y=\"\(Int(oy - 10))\" text-anchor=\"middle\" font-size=\"13\">\(escape(panel.title))</text>\n"
            svg += "<rect x=\"\(ox)\" y=\"\(oy)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#444\"/>\n"
            for t in ticks(y0, y1) {
                svg += "<line x1=\"\(ox)\" x2=\"\(ox + pw)\" y1=\"\(py(t))\" y2=\"\(py(t))\" stroke=\"#eee\"/>"
                svg += "<text x=\"\(ox - 6)\" y=\"\(py(t) + 4)\" text-anchor=\"end\">\(label(t))</text>\n"
            }
            for t in ticks(x0, x1) {
                let value = panel.logX ? pow(10, t) : t
                svg += "<text x=\"\(ox + (t - x0) / (x1 - x0) * pw)\" y=\"\(oy + ph + 16)\" text-anchor=\"middle\">\(compact(value))</text>\n"
            }
            svg += "<text x=\"\(Int(ox + pw / 2))\" y=\"\(Int(oy + ph + 36))\" text-anchor=\"middle\">\(escape(panel.xLabel))</text>\n"
            svg += "<text transform=\"translate(\(Int(ox - 45)),\(Int(oy + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(panel.yLabel))</text>\n"
            for p in panel.points {
                if p.error > 0 {
                    let x = px(p.x), top = py(p.y + p.error), bottom = py(p.y - p.error)
                    svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(top)\" y2=\"\(bottom)\" stroke=\"\(p.color)\"/>"
                    svg += "<line x1=\"\(x - 5)\" x2=\"\(x + 5)\" y1=\"\(top)\" y2=\"\(top)\" stroke=\"\(p.color)\"/>"
                    svg += "<line x1=\"\(x - 5)\" x2=\"\(x + 5)\" y1=\"\(bottom)\" y2=\"\(bottom)\" stroke=\"\(p.color)\"/>"
                }
                svg += "<circle cx=\"\(px(p.x))\" cy=\"\(py(p.y))\" r=\"5\" fill=\"\(p.color)\" fill-opacity=\"0.85\"/>"
                svg += "<text x=\"\(px(p.x) + 7)\" y=\"\(py(p.y) - 6)\" font-size=\"10\">\(escape(p.label))</text>\n"
            }
        }
        return svg + "</svg>\n"
    }

    /// 1234567 -> "1.2M", 45000 -> "45k".
    static func compact(_ v: Double) -> String {
        if abs(v) >= 1e6 { return String(format: "%.3gM", v / 1e6) }
        if abs(v) >= 1e3 { return String(format: "%.3gk", v / 1e3) }
        return label(v)
    }

    static func label(_ v: Double) -> String {
        abs(v) >= 1000 || v == v.rounded() ? String(format: "%.0f", v) : String(format: "%.3g", v)
    }
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
