import Foundation
import IO
import Testing
import TestSupport

@Suite struct SVGPlotTests {
    static func points(_ s: String) -> [(Double, Double)] {
        s.split(separator: " ").map { pair in
            let xy = pair.split(separator: ",").map { Double($0)! }
            return (xy[0], xy[1])
        }
    }

    @Test func logPlotIsWellFormedWithOnePolylinePointPerValueAndDecadeTicks() throws {
        let values = (1...30).map { (x: Double($0), y: 10 * pow(0.8, Double($0))) }   // 8 … 0.012
        let plot = LinePlot(id: "plot-loss", title: "loss <log> & more", yScale: .log, series: [
            .init(name: "raw", color: "#9ecae1", points: values),
            .init(name: "smooth", color: "#08519c", points: Array(values.prefix(10))),
        ])
        let svg = plot.svg()
        let xml = try XMLProbe(svg)
        #expect(xml.elements.first?.name == "svg" && xml.elements.first?.attributes["id"] == "plot-loss")
        let lines = xml.all("polyline")
        #expect(lines.map { $0.attributes["data-series"] } == ["raw", "smooth"])
        #expect(lines.map { Self.points($0.attributes["points"]!).count } == [30, 10])
        // Larger values are higher up (smaller y), and x grows with the step.
        let raw = Self.points(lines[0].attributes["points"]!)
        #expect(zip(raw, raw.dropFirst()).allSatisfy { $0.0 < $1.0 && $0.1 < $1.1 })
        let labels = Set(xml.all("text").map(\.text))
        #expect(labels.isSuperset(of: ["0.1", "1"]), "\(labels)")
        #expect(labels.contains("loss <log> & more"))            // escaped in the markup, restored by the parser
        #expect(svg.contains("loss &lt;log&gt; &amp; more"))
        #expect(labels.isSuperset(of: ["raw", "smooth"]))          // a legend for two series
    }

    @Test func logAxisLeavesOutValuesItCannotDrawAndSaysHowMany() throws {
        let plot = LinePlot(id: "p", title: "t", yScale: .log, series: [
            .init(name: "s", color: "red", points: [(1, 0.5), (2, 0), (3, -1), (4, .nan), (5, 0.25)]),
        ])
        let xml = try XMLProbe(plot.svg())
        #expect(Self.points(xml.all("polyline")[0].attributes["points"]!).count == 2)
        #expect(xml.all("text").contains { $0.text.contains("3 point(s) not drawn") })
        #expect(xml.all("circle").count == 2)   // short series are marked point by point
    }

    @Test func linearTicksAreRoundNumbersWithTheSameDecimals() throws {
        let plot = LinePlot(id: "lr", title: "lr", yScale: .linear, series: [.init(name: "lr", color: "green", points: [(1, 0), (100, 1.5)])])
        let xml = try XMLProbe(plot.svg())
        let texts = xml.all("text").map(\.text)
        #expect(["0", "0.5", "1.0", "1.5"].allSatisfy(texts.contains), "\(texts)")
        #expect(texts.contains("100"))   // steps: whole numbers
    }

    @Test func longSeriesAreThinnedButKeepTheirExtremes() throws {
        var values = (0..<20_000).map { (x: Double($0), y: 1 + 0.1 * sin(Double($0) / 50)) }
        values[12_345].y = 9   // a spike
        let plot = LinePlot(id: "p", title: "t", yScale: .linear, series: [.init(name: "s", color: "red", points: values)])
        let xml = try XMLProbe(plot.svg())
        let drawn = Self.points(xml.all("polyline")[0].attributes["points"]!)
        #expect(drawn.count <= LinePlot.maximumPoints && drawn.count > LinePlot.maximumPoints / 2)
        let heights = drawn.map(\.1).sorted()
        // The spike is drawn near the top of the plot area (which starts at 34, with 5 % padding); the rest far below.
        #expect(heights[0] < 50 && heights[1] > 200, "\(heights.prefix(3))")
    }
}
