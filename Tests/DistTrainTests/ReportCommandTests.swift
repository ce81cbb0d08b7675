import Foundation
import IO
import Testing
import TestSupport

/// `disttrain report RUN_DIR` and the report `train` refreshes at its checkpoints.
@Suite struct ReportCommandTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    static let training = ["train", "--model", "cnn-tiny", "--data", "images.h5", "--batch-size", "4", "--steps", "4",
                           "--checkpoint-every", "2", "--sample-every", "2", "--sample-count", "4", "--sampler-steps", "2", "--out", "run"]

    @Test func reportShowsTheConfigurationOnePlotPerMetricAndEverySampleGrid() throws {
        let dir = try BinaryRunner.temporaryDirectory("report")
        try DistributedTrainingTests.writeImages(dir + "/images.h5", count: 16)
        let train = try BinaryRunner.run(Self.training, in: dir, timeout: 120)
        #expect(train.status == 0, "\(train.stderr)")
        // Refreshed by train after its last checkpoint and sample grid.
        let refreshed = try XMLProbe(try String(contentsOfFile: dir + "/run/report.html", encoding: .utf8))
        #expect(refreshed.all("img").map { $0.attributes["alt"] } == ["samples at step 2", "samples at step 4"])

        // Evaluation metrics, as an evaluation would append them, get plots of their own.
        let log = try #require(FileHandle(forWritingAtPath: dir + "/run/metrics.jsonl"))
        log.seekToEndOfFile()
        log.write(Data("{\"step\":2,\"fid\":30.5,\"class_entropy\":1.9}\n{\"step\":4,\"fid\":20.25,\"class_entropy\":2.2}\n".utf8))
        try log.close()
        try FileManager.default.removeItem(atPath: dir + "/run/report.html")
        let report = try BinaryRunner.run(["report", "run"], in: dir)
        #expect(report.status == 0 && report.stdout.contains("wrote run/report.html"), "\(report.stderr)")

        let page = try String(contentsOfFile: dir + "/run/report.html", encoding: .utf8)
        let xml = try XMLProbe(page)
        let plots = xml.all("svg").compactMap { $0.attributes["id"] }
        #expect(plots == ["plot-loss", "plot-lr", "plot-img_per_s", "plot-allreduce_wait_seconds", "plot-grad_norm", "plot-fid", "plot-class_entropy"])
        #expect(page.components(separatedBy: "<svg").count - 1 == plots.count)
        let points = xml.all("polyline").map { $0.attributes["points"]!.split(separator: " ").count }
        #expect(points == [4, 4, 4, 4, 4, 4, 2, 2])   // loss raw and smoothed, lr, img/s, allreduce, grad norm; fid, entropy
        #expect(xml.all("img").map { $0.attributes["alt"] } == ["samples at step 2", "samples at step 4"])
        #expect(xml.all("img").allSatisfy { $0.attributes["src"]!.hasPrefix("data:image/png;base64,iVBOR") })

        // The configuration, from the newest checkpoint: a summary, then every stored setting.
        #expect(xml.all("caption").map(\.text) == ["Run (from ckpt-00000004.h5)", "All settings (configuration attribute)"])
        func rows(_ table: Int) -> [String: String] {
            Dictionary(uniqueKeysWithValues: zip(xml.all("th", within: table).map(\.text), xml.all("td", within: table).map(\.text)))
        }
        let tables = xml.indices(of: "table")
        let summary = rows(tables[0]), stored = rows(tables[1])
        #expect(summary["model"] == "cnn-tiny (CNNDenoiserTiny)")
        #expect(summary["sample shape"] == "[1,8,8]")
        #expect(summary["steps"] == "4 of 4 (at this checkpoint)")
        #expect(stored["model"] == "cnn-tiny" && stored["steps"] == "4")
        #expect(stored["batchSize"] == "4" && stored["sampleEvery"] == "2" && stored["worldSize"] == "1")
        #expect(stored["syncBatchNorm"] == "false" && stored["learningRate"] == "0.001")
    }

    @Test func aMissingDirectoryOrOneWithoutMetricsFailsAndWritesNoReport() throws {
        let dir = try BinaryRunner.temporaryDirectory("report-bad")
        let missing = try BinaryRunner.run(["report", "nowhere"], in: dir)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nowhere: no such directory"), "\(missing.stderr)")

        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        let empty = try BinaryRunner.run(["report", "empty"], in: dir)
        #expect(empty.status != 0)
        #expect(empty.stderr.contains("empty: no metrics.jsonl"), "\(empty.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/empty").isEmpty)
    }

    /// A report that cannot be written (here report.html is a directory) is a warning; training goes on.
    @Test func trainingGoesOnWhenTheReportCannotBeWritten() throws {
        let dir = try BinaryRunner.temporaryDirectory("report-blocked")
        try DistributedTrainingTests.writeImages(dir + "/images.h5", count: 16)
        try FileManager.default.createDirectory(atPath: dir + "/run/report.html/in-the-way", withIntermediateDirectories: true)
        let train = try BinaryRunner.run(Self.training, in: dir, timeout: 120)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("warning: report.html not refreshed"), "\(train.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir + "/run/ckpt-00000004.h5"))
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: dir + "/run")).contains { $0.hasSuffix(".partial") })
    }
}
