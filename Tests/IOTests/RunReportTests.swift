import Foundation
import IO
import Testing
import TestSupport

@Suite struct RunReportTests {
    /// A run directory as `train` leaves it: 12 logged steps, `fid` and `kid` at two of them (on lines
    /// of their own, as an evaluation would log them), a partial last line, and grids at steps 4, 8, 12
    /// (written out of order).
    static func runDirectory(_ dir: PrepScratch) throws -> String {
        var lines = (1...12).map { s in
            "{\"step\":\(s),\"epoch\":0,\"loss\":\(1.0 / Double(s)),\"lr\":\(0.001 * (1 - Double(s - 1) / 12)),\"grad_norm\":0.5,"
                + "\"img_per_s\":\(100 + s),\"step_seconds\":0.1,\"allreduce_wait_seconds\":0.002,\"skipped\":\(s == 7 ? 1 : 0)}"
        }
        lines.insert("{\"step\":6,\"fid\":80.5,\"kid\":0.05}", at: 6)
        lines.append("{\"step\":12,\"fid\":40.25,\"kid\":0.02}")
        lines.append("{\"step\":13,\"epoch\":0,\"lo")
        PrepFixtures.createFile(atPath: dir.file("metrics.jsonl"), contents: Data(lines.joined(separator: "\n").utf8))
        try FileManager.default.createDirectory(atPath: dir.file("samples"), withIntermediateDirectories: true)
        for step in [12, 4, 8] {
            let grid = PNGImage(width: 6, height: 4, channels: 1, pixels: (0..<24).map { UInt8(($0 * 10 + step) % 256) })
            try grid.write(to: dir.file(String(format: "samples/step-%08d.png", step)))
        }
        return dir.path
    }

    static let tables = [RunReport.Table(heading: "Run", rows: [("model", "cnn-tiny <CNNDenoiserTiny>"), ("batchSize", "4")])]

    @Test func reportIsWellFormedWithOnePlotPerMetricAndOneImagePerSamplingPoint() throws {
        let dir = try PrepScratch()
        let run = try Self.runDirectory(dir)
        let report = try RunReport.collect(runDirectory: run, tables: Self.tables, notes: ["a note & more"])
        try report.write(to: dir.file("report.html"))
        let page = try String(contentsOfFile: dir.file("report.html"), encoding: .utf8)
        let xml = try XMLProbe(page)
        #expect(xml.elements.first?.name == "html")

        let plots = xml.all("svg").compactMap { $0.attributes["id"] }
        #expect(plots == ["plot-loss", "plot-lr", "plot-img_per_s", "plot-allreduce_wait_seconds", "plot-grad_norm", "plot-fid", "plot-kid"])
        #expect(page.components(separatedBy: "<svg").count - 1 == plots.count)
        // Polylines in plot order: loss raw and smoothed, lr, img/s, allreduce, grad_norm (12 each), fid, kid (2 each).
        let counts = xml.all("polyline").map { $0.attributes["points"]!.split(separator: " ").count }
        #expect(counts == [12, 12, 12, 12, 12, 12, 2, 2])
        #expect(xml.all("svg").first { $0.attributes["id"] == "plot-loss" }?.attributes["aria-label"] == "loss (log scale)")
        #expect(!plots.contains("plot-class_entropy"))   // not logged: no plot

        let images = xml.all("img")
        #expect(images.map { $0.attributes["alt"] } == ["samples at step 4", "samples at step 8", "samples at step 12"])
        #expect(xml.all("figcaption").map(\.text) == ["step 4", "step 8", "step 12"])
        for (image, step) in zip(images, [4, 8, 12]) {
            let uri = image.attributes["src"]!
            #expect(uri.hasPrefix("data:image/png;base64,"))
            let bytes = Data(base64Encoded: String(uri.dropFirst("data:image/png;base64,".count)))
            #expect(bytes == FileManager.default.contents(atPath: dir.file(String(format: "samples/step-%08d.png", step))))
        }

        let cells = xml.all("th").map(\.text)
        #expect(cells == ["model", "batchSize"])
        #expect(xml.all("td").map(\.text) == ["cnn-tiny <CNNDenoiserTiny>", "4"])
        let notes = xml.elements.filter { $0.attributes["class"] == "note" }.map(\.text)
        #expect(notes.contains("a note & more"))
        #expect(notes.contains { $0.contains("1 line(s) of metrics.jsonl are not records") })
        let summary = try #require(xml.elements.first { $0.attributes["class"] == "summary" }?.text)
        #expect(summary.contains("12 logged step(s), up to step 12") && summary.contains("1 step(s) skipped"), "\(summary)")
        // Self-contained: nothing is fetched from elsewhere.
        #expect(!page.contains("http://") || page.components(separatedBy: "http://").dropFirst().allSatisfy { $0.hasPrefix("www.w3.org/") })
        #expect(!page.contains("https://") && !page.contains("<script") && !page.contains("<link"))
    }

    @Test func aStepLoggedTwiceKeepsTheLaterValue() throws {
        let dir = try PrepScratch()
        let lines = ["{\"step\":1,\"loss\":4}", "{\"step\":2,\"loss\":3}", "{\"step\":3,\"loss\":2}",
                     "{\"step\":2,\"loss\":0.5}", "{\"step\":3,\"loss\":0.25,\"lr\":null}"]   // resumed from step 1
        PrepFixtures.createFile(atPath: dir.file("metrics.jsonl"), contents: Data(lines.joined(separator: "\n").utf8))
        let history = try MetricsHistory.read(dir.file("metrics.jsonl"))
        #expect(history.series["loss"]!.map(\.y) == [4, 0.5, 0.25])
        #expect(history.series["lr"] == nil && history.keys == ["loss"])
    }

    @Test func missingDirectoryOrMetricsIsOneClearErrorAndNoReport() throws {
        let dir = try PrepScratch()
        #expect { try RunReport.collect(runDirectory: dir.file("absent"), tables: [], notes: []) } throws: {
            "\($0)".contains("absent: no such directory")
        }
        #expect { try RunReport.collect(runDirectory: dir.path, tables: [], notes: []) } throws: {
            "\($0)".contains("no metrics.jsonl")
        }
        PrepFixtures.createFile(atPath: dir.file("metrics.jsonl"), contents: Data("not json\n".utf8))
        #expect { try RunReport.collect(runDirectory: dir.path, tables: [], notes: []) } throws: {
            "\($0)".contains("metrics.jsonl: none of its 1 lines is a metrics record")
        }
        #expect(dir.listing() == ["metrics.jsonl"])
    }
}
