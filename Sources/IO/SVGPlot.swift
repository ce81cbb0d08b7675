import Foundation

/// A line plot of one or more series against the training step, drawn as an inline SVG element
/// (no script, no external font or style: it renders wherever the HTML page is opened).
public struct LinePlot: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// A CSS colour.
        public var color: String
        /// (step, value), in step order.
        public var points: [(x: Double, y: Double)]
        public var strokeWidth: Double

        public init(name: String, color: String, points: [(x: Double, y: Double)], strokeWidth: Double = 1.5) {
            self.name = name; self.color = color; self.points = points; self.strokeWidth = strokeWidth
        }
    }

    public enum YScale: Sendable { case linear, log }

    /// The element's id (also the key the report's tests find it by).
    public var id: String
    public var title: String
    public var yScale: YScale
    public var series: [Series]
    public var xLabel = "step"

    /// A series longer than this is thinned to the lowest and highest value of each of
    /// `maximumPoints / 2` equal ranges of steps (so spikes stay visible, and a 50,000-step run's page stays small).
    public static let maximumPoints = 2000
    /// Series with at most this many points also get a dot at each point (one point draws no line).
    static let markedPoints = 60

    public init(id: String, title: String, yScale: YScale, series: [Series]) {
        self.id = id; self.title = title; self.yScale = yScale; self.series = series
    }

    /// The `<svg>` element, `width` × `height` user units. Points that cannot be drawn (non-finite,
    /// or ≤ 0 on a log axis) are left out, and the note under the title says how many.
    public func svg(width: Int = 560, height: Int = 300) -> String {
        let usable = series.map { s in s.points.filter { $0.x.isFinite && $0.y.isFinite && (yScale == .linear || $0.y > 0) } }
        let dropped = zip(series, usable).map { $0.points.count - $1.count }.reduce(0, +)
        let drawn = usable.map { $0.count > Self.maximumPoints ? Self.thinned($0, to: Self.maximumPoints) : $0 }
        let all = drawn.flatMap { $0 }
        let xAxis = PlotAxis(values: all.map(\.x), scale: .linear, integers: true)
        let yAxis = PlotAxis(values: all.map(\.y), scale: yScale == .log ? .log : .linear)

        let left = 64.0, right = 14.0, top = 34.0, bottom = 40.0
        let plotWidth = Double(width) - left - right, plotHeight = Double(height) - top - bottom
        func px(_ x: Double) -> Double { left + xAxis.fraction(x) * plotWidth }
        func py(_ y: Double) -> Double { top + (1 - yAxis.fraction(y)) * plotHeight }

        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(id.xmlEscaped)\" class=\"plot\" viewBox=\"0 0 \(width) \(height)\" "
            + "width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"\(title.xmlEscaped)\">\n"
        out += "<title>\(title.xmlEscaped)</title>\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
        out += "<text x=\"\(f(left))\" y=\"18\" font-size=\"13\" font-weight=\"bold\" fill=\"#222222\">\(title.xmlEscaped)</text>\n"
        if dropped > 0 {
            let why = yScale == .log ? "non-finite or ≤ 0" : "non-finite"
            out += "<text x=\"\(f(left))\" y=\"30\" font-size=\"10\" fill=\"#888888\">\(dropped) point(s) not drawn (\(why))</text>\n"
        }
        out += legend(width: width)

        // Grid lines and tick labels.
        out += "<g class=\"grid\" stroke=\"#e4e4e4\" stroke-width=\"1\">\n"
        for t in yAxis.ticks { out += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(py(t)))\"/>\n" }
        for t in xAxis.ticks { out += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotHeight))\"/>\n" }
        out += "</g>\n"
        out += "<g class=\"y-ticks\" fill=\"#444444\" text-anchor=\"end\">\n"
        for t in yAxis.ticks { out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\">\(yAxis.label(t).xmlEscaped)</text>\n" }
        out += "</g>\n<g class=\"x-ticks\" fill=\"#444444\" text-anchor=\"middle\">\n"
        for t in xAxis.ticks { out += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotHeight + 15))\">\(xAxis.label(t).xmlEscaped)</text>\n" }
        out += "</g>\n"
        out += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(Double(height) - 6))\" text-anchor=\"middle\" fill=\"#444444\">\(xLabel.xmlEscaped)</text>\n"
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#999999\"/>\n"

        for (s, points) in zip(series, drawn) where !points.isEmpty {
            let coordinates = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            out += "<polyline class=\"series\" data-series=\"\(s.name.xmlEscaped)\" fill=\"none\" stroke=\"\(s.color.xmlEscaped)\" "
                + "stroke-width=\"\(f(s.strokeWidth))\" stroke-linejoin=\"round\" points=\"\(coordinates)\"/>\n"
            if points.count <= Self.markedPoints {
                out += "<g class=\"markers\" fill=\"\(s.color.xmlEscaped)\">"
                for p in points { out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\"/>" }
                out += "</g>\n"
            }
        }
        if all.isEmpty {
            out += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(top + plotHeight / 2))\" text-anchor=\"middle\" fill=\"#888888\">no data</text>\n"
        }
        return out + "</svg>"
    }

    /// One entry per series, right-aligned on the title's line (only for two or more series).
    private func legend(width: Int) -> String {
        guard series.count > 1 else { return "" }
        var out = "<g class=\"legend\" fill=\"#444444\">\n"
        var x = Double(width) - 14
        for s in series.reversed() {
            // why: no text measurement in SVG without a script; ~6 units a character at size 11
            x -= Double(s.name.count) * 6.2
            out += "<text x=\"\(f(x))\" y=\"18\">\(s.name.xmlEscaped)</text>\n"
            out += "<line x1=\"\(f(x - 22))\" y1=\"14\" x2=\"\(f(x - 4))\" y2=\"14\" stroke=\"\(s.color.xmlEscaped)\" stroke-width=\"2.5\"/>\n"
            x -= 34
        }
        return out + "</g>\n"
    }

    /// The lowest and highest point of each of `limit / 2` equal ranges of x, in x order.
    static func thinned(_ points: [(x: Double, y: Double)], to limit: Int) -> [(x: Double, y: Double)] {
        let buckets = max(1, limit / 2)
        let lo = points.first!.x, span = max(points.last!.x - lo, 1e-300)
        var out: [(x: Double, y: Double)] = []
        var start = 0
        while start < points.count {
            let bucket = min(buckets - 1, Int((points[start].x - lo) / span * Double(buckets)))
            var end = start
            while end < points.count && min(buckets - 1, Int((points[end].x - lo) / span * Double(buckets))) == bucket { end += 1 }
            let slice = points[start..<end]
            let low = slice.indices.min { slice[$0].y < slice[$1].y }!, high = slice.indices.max { slice[$0].y < slice[$1].y }!
            for i in Set([low, high]).sorted() { out.append(points[i]) }
            start = end
        }
        return out
    }
}

/// A coordinate with one decimal ("12.3"), enough at the page's resolution.
private func f(_ v: Double) -> String { String(format: "%.1f", v) }
