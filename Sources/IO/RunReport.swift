import Foundation

/// The page `disttrain report` writes: one self-contained HTML file (inline CSS, plots as inline SVG,
/// sample grids as data: URIs) that opens offline wherever it is copied. The markup is also
/// well-formed XML (XHTML-compatible), so that an XML parser can check it.
public struct RunReport: Sendable {
    /// A titled table of name/value rows (the run's configuration).
    public struct Table: Sendable {
        public var heading: String
        public var rows: [(name: String, value: String)]
        public init(heading: String, rows: [(name: String, value: String)]) { self.heading = heading; self.rows = rows }
    }

    /// One sampling point's grid: `samples/step-<step>.png`.
    public struct SampleGrid: Sendable {
        public var step: Int
        public var png: Data
        public var width, height: Int
    }

    public var runDirectory: String
    public var tables: [Table]
    /// Remarks shown under the title (e.g. why the configuration is missing).
    public var notes: [String]
    public var metrics: MetricsHistory
    /// In step order.
    public var samples: [SampleGrid]

    /// The report of `runDirectory`: its `metrics.jsonl` (required: errors name what is missing) and the
    /// sample grids under `samples/`; `tables` and `notes` come from the caller (the configuration
    /// lives in the checkpoints, which this module does not interpret).
    public static func collect(runDirectory: String, tables: [Table], notes: [String]) throws -> RunReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runDirectory, isDirectory: &isDirectory) else {
            throw IOError(path: runDirectory, "no such directory")
        }
        guard isDirectory.boolValue else { throw IOError(path: runDirectory, "not a directory (give a run's --out directory)") }
        let metricsPath = runDirectory + "/metrics.jsonl"
        guard FileManager.default.fileExists(atPath: metricsPath) else {
            throw IOError(path: runDirectory, "no metrics.jsonl: not the --out directory of a training run, or no step has finished yet")
        }
        let metrics = try MetricsHistory.read(metricsPath)
        var notes = notes
        if metrics.unreadableLines > 0 { notes.append("\(metrics.unreadableLines) line(s) of metrics.jsonl are not records (an interrupted write?) and were skipped.") }
        let (samples, sampleNotes) = sampleGrids(in: runDirectory + "/samples")
        return RunReport(runDirectory: runDirectory, tables: tables, notes: notes + sampleNotes, metrics: metrics, samples: samples)
    }

    /// Writes `html()` to `path` atomically (the old report stays until the new one is complete).
    public func write(to path: String) throws {
        let page = Data(html().utf8)
        try replaceAtomically(path) { temporary in
            guard FileManager.default.createFile(atPath: temporary, contents: page) else {
                throw IOError(path: path, "cannot write the report: \(String(cString: strerror(errno)))")
            }
        }
    }

    public func html(generated: Date = Date()) -> String {
        // why absolute: the page is meant to be copied elsewhere, where "runs/x" says little
        let absolute = runDirectory.hasPrefix("/") ? runDirectory : FileManager.default.currentDirectoryPath + "/" + runDirectory
        let name = (absolute as NSString).standardizingPath
        var page = """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>disttrain run \(name.xmlEscaped)</title>
            <style>\(Self.style)</style>
            </head>
            <body>
            <h1>disttrain run <code>\(name.xmlEscaped)</code></h1>
            <p class="summary">\(summary.xmlEscaped)</p>

            """
        for note in notes { page += "<p class=\"note\">\(note.xmlEscaped)</p>\n" }

        page += "<section id=\"configuration\">\n<h2>Configuration</h2>\n"
        if tables.isEmpty { page += "<p class=\"note\">No configuration: the run directory holds no readable checkpoint yet.</p>\n" }
        for table in tables {
            page += "<table>\n<caption>\(table.heading.xmlEscaped)</caption>\n"
            for row in table.rows { page += "<tr><th>\(row.name.xmlEscaped)</th><td>\(row.value.xmlEscaped)</td></tr>\n" }
            page += "</table>\n"
        }
        page += "</section>\n"

        for (id, heading, plots) in plotSections() where !plots.isEmpty {
            page += "<section id=\"\(id)\">\n<h2>\(heading)</h2>\n<div class=\"plots\">\n"
            for plot in plots { page += plot.svg() + "\n" }
            page += "</div>\n</section>\n"
        }

        page += "<section id=\"samples\">\n<h2>Samples</h2>\n"
        if samples.isEmpty { page += "<p class=\"note\">No sample grids (samples/step-*.png) yet.</p>\n" }
        page += "<div class=\"samples\">\n"
        for grid in samples {
            // why: small grids drawn at an integer zoom with hard pixels, so single samples stay legible
            let zoom = max(1, Int((256.0 / Double(grid.width)).rounded(.up)))
            page += "<figure><img src=\"data:image/png;base64,\(grid.png.base64EncodedString())\" "
                + "width=\"\(grid.width * zoom)\" height=\"\(grid.height * zoom)\" alt=\"samples at step \(grid.step)\"/>"
                + "<figcaption>step \(grid.step)</figcaption></figure>\n"
        }
        page += "</div>\n</section>\n"
        let stamp = ISO8601DateFormatter().string(from: generated)
        page += "<footer>Written by <code>disttrain report</code> at \(stamp.xmlEscaped) from \(name.xmlEscaped). Self-contained: no external files.</footer>\n"
        return page + "</body>\n</html>\n"
    }

    /// One line: steps, the last loss and the recent speed.
    var summary: String {
        var parts = ["\(metrics.steps) logged step(s)"]
        if let last = metrics.lastStep { parts[0] += ", up to step \(Int(last))" }
        if let loss = metrics.series["loss"]?.last { parts.append(String(format: "loss %.5g at the last one", loss.y)) }
        if let speed = metrics.series["img_per_s"], !speed.isEmpty {
            let recent = speed.suffix(50).map(\.y).sorted()
            parts.append(String(format: "%.1f img/s (median of the last %d)", recent[recent.count / 2], recent.count))
        }
        if let skipped = metrics.series["skipped"] {
            let count = Int(skipped.map(\.y).reduce(0, +))
            if count > 0 { parts.append("\(count) step(s) skipped for a non-finite loss or gradient") }
        }
        if let epoch = metrics.series["epoch"]?.last { parts.append("epoch \(Int(epoch.y))") }
        return parts.joined(separator: "; ")
    }

    /// Training plots, then evaluation metrics, then any other numeric key, each only if logged.
    func plotSections() -> [(id: String, heading: String, plots: [LinePlot])] {
        let m = metrics.series
        func single(_ key: String, _ title: String, _ scale: LinePlot.YScale, _ color: String) -> LinePlot? {
            guard let points = m[key] else { return nil }
            return LinePlot(id: "plot-" + key, title: title, yScale: scale, series: [.init(name: key, color: color, points: points)])
        }
        var training: [LinePlot?] = []
        if let loss = m["loss"] {
            let (smoothed, span) = Self.smoothedInLog(loss)
            training.append(LinePlot(id: "plot-loss", title: "loss (log scale)", yScale: .log, series: [
                .init(name: "loss", color: "#9ecae1", points: loss, strokeWidth: 1),
                .init(name: "EMA over ~\(span) records", color: "#08519c", points: smoothed, strokeWidth: 2),
            ]))
        }
        training += [
            single("lr", "learning rate", .linear, "#31a354"),
            single("img_per_s", "images per second (all ranks)", .linear, "#e6550d"),
            single("allreduce_wait_seconds", "exposed allreduce time per step (s)", .linear, "#756bb1"),
            single("grad_norm", "gradient norm (log scale)", .log, "#636363"),
        ]
        let evaluation = [
            single("fid", "FID", .linear, "#d62728"),
            single("kid", "KID", .linear, "#9467bd"),
            single("class_entropy", "class entropy", .linear, "#8c564b"),
        ]
        let shown: Set<String> = ["loss", "lr", "img_per_s", "allreduce_wait_seconds", "grad_norm", "fid", "kid", "class_entropy",
                                  "epoch", "skipped", "step_seconds"]
        let others = metrics.keys.filter { !shown.contains($0) }.map { single($0, $0, .linear, "#17becf") }
        return [("training", "Training", training.compactMap { $0 }),
                ("evaluation", "Evaluation", evaluation.compactMap { $0 }),
                ("other-metrics", "Other metrics", others.compactMap { $0 })]
    }

    /// An exponential moving average of log(value), so that it follows the curve on a log axis; its
    /// time constant is 1/40 of the records (1…500). Values ≤ 0 are passed over. Returns it and the span.
    static func smoothedInLog(_ points: [(x: Double, y: Double)]) -> ([(x: Double, y: Double)], Int) {
        let span = min(500, max(1, points.count / 40))
        let keep = 1 - 1 / Double(span)
        var average: Double?, out: [(x: Double, y: Double)] = []
        for p in points where p.y > 0 {
            let v = log(p.y)
            average = average.map { keep * $0 + (1 - keep) * v } ?? v   // why: starting at the first value needs no bias correction
            out.append((p.x, exp(average!)))
        }
        return (out, span)
    }

    /// `samples/step-<step>.png`, in step order, with notes for point sets (.h5 only) and files that are not PNGs.
    static func sampleGrids(in directory: String) -> ([SampleGrid], [String]) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var grids: [SampleGrid] = [], notes: [String] = []
        for name in names where name.hasPrefix("step-") && name.hasSuffix(".png") {
            guard let step = Int(name.dropFirst(5).dropLast(4)) else { continue }
            let path = directory + "/" + name
            guard let png = FileManager.default.contents(atPath: path), let size = pngSize(png) else {
                notes.append("samples/\(name) is not a readable PNG and is left out.")
                continue
            }
            grids.append(SampleGrid(step: step, png: png, width: size.width, height: size.height))
        }
        if grids.isEmpty, names.contains(where: { $0.hasPrefix("step-") && $0.hasSuffix(".h5") }) {
            notes.append("The samples are not images (2-D points): they are in samples/step-*.h5, without grids.")
        }
        return (grids.sorted { $0.step < $1.step }, notes)
    }

    /// Width and height from a PNG's IHDR chunk (bytes 16…23), nil unless it starts like a PNG.
    static func pngSize(_ data: Data) -> (width: Int, height: Int)? {
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, bytes[0..<8].elementsEqual([137, 80, 78, 71, 13, 10, 26, 10]), bytes[12..<16].elementsEqual(Array("IHDR".utf8)) else { return nil }
        func be32(_ i: Int) -> Int { bytes[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let width = be32(16), height = be32(20)
        return width > 0 && height > 0 ? (width, height) : nil
    }

    // why: no "<" or "&" in here, so the page stays well-formed XML without CDATA
    static let style = """

        body { font-family: system-ui, sans-serif; color: #222; margin: 24px auto; max-width: 1200px; padding: 0 16px; }
        h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }
        code { font-size: 95%; }
        .summary { font-size: 15px; } .note { color: #8a5a00; }
        table { border-collapse: collapse; margin: 0 24px 16px 0; display: inline-table; vertical-align: top; font-size: 13px; }
        caption { text-align: left; font-weight: bold; padding: 4px 0; }
        th, td { text-align: left; padding: 2px 10px 2px 0; border-bottom: 1px solid #eee; }
        th { font-weight: normal; color: #555; } td { font-family: ui-monospace, monospace; word-break: break-all; }
        .plots { display: flex; flex-wrap: wrap; gap: 12px; }
        svg.plot { border: 1px solid #ddd; max-width: 100%; height: auto; }
        .samples { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; }
        figure { margin: 0; text-align: center; }
        figure img { image-rendering: pixelated; border: 1px solid #ddd; display: block; }
        figcaption { font-size: 13px; color: #555; padding-top: 4px; }
        footer { margin-top: 32px; font-size: 12px; color: #777; }

        """
}
