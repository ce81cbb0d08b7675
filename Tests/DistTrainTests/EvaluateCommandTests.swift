import Foundation
import IO
import Testing

/// `disttrain evaluate` and `train --eval-every` on the features of a small classifier trained here
/// (ClassifierCommandTests' three-class 8×8 images): the same numbers on one rank and two, the metrics
/// in the run's logs, the reference cache, and clear refusals of bad input.
@Suite(.serialized) struct EvaluateCommandTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// A directory with labelled.h5 (120 8×8 images), fn/net.h5 (a classifier of them) and, when
    /// `checkpoint`, run/ckpt-00000004.h5 (cnn-tiny trained 4 steps on the same images).
    static func prepared(_ name: String, checkpoint: Bool = false) throws -> String {
        let dir = try ClassifierCommandTests.directory(name)
        try ClassifierCommandTests.writeLabelled(dir + "/labelled.h5")
        let c = try BinaryRunner.run(ClassifierCommandTests.classifier(), in: dir, timeout: 120)
        #expect(c.status == 0, "\(c.stderr)")
        if checkpoint {
            let t = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--data", "labelled.h5", "--batch-size", "8", "--steps", "4",
                                          "--sample-count", "0", "--out", "run", "--seed", "3"], in: dir, timeout: 120)
            #expect(t.status == 0, "\(t.stderr)")
        }
        return dir
    }

    static func lastJSON(_ stdout: String) throws -> [String: Any] {
        let line = try #require(stdout.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "last line: \(line)")
    }

    @Test func sampledEvaluationIsTheSameOnOneRankAndTwo() throws {
        let dir = try Self.prepared("evaluate-ranks", checkpoint: true)
        let arguments = ["evaluate", "--features", "fn/net.h5", "--checkpoint", "run/ckpt-00000004.h5", "--count", "24",
                         "--batch-size", "4", "--sampler-steps", "5", "--seed", "9", "--kid-subset-size", "10"]
        let one = try BinaryRunner.run(arguments, in: dir, timeout: 120)
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stdout.contains("computing the reference features of 120 images"), "\(one.stdout)")
        let two = try BinaryRunner.mpirun(2, arguments, in: dir, timeout: 120)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(!two.stdout.contains("computing the reference features"), "the second run reads the cache: \(two.stdout)")
        let a = try Self.lastJSON(one.stdout), b = try Self.lastJSON(two.stdout)
        for key in ["fid", "kid", "kid_std", "class_entropy", "classifier_score"] {
            let x = try #require(a[key] as? Double), y = try #require(b[key] as? Double)
            #expect(x == y, "\(key): \(x) on one rank, \(y) on two")
            #expect(x.isFinite)
        }
        #expect(a["count"] as? Int == 24)
        let cache = try FileManager.default.contentsOfDirectory(atPath: dir + "/fn").filter { $0.hasPrefix("net.reference-") }
        #expect(cache.count == 1 && cache[0].hasSuffix("-120.h5"), "\(cache)")
    }

    /// The keras.io recipe's route through `evaluate`: the DDIM U-Net on the continuous schedule, trained on
    /// normalised data, sampled with its DDIM (returning x̂0) and de-normalised, spread over the ranks.
    @Test func aContinuousRecipeCheckpointEvaluatesTheSameOnOneRankAndTwo() throws {
        let dir = try Self.prepared("evaluate-ddim-keras")
        let t = try BinaryRunner.run(["train", "--recipe", "ddim-keras", "--model", "ddim-unet", "--channels", "8,16", "--block-depth", "1",
                                      "--data", "labelled.h5", "--batch-size", "8", "--steps", "4", "--sample-count", "0", "--out", "run"],
                                     in: dir, timeout: 120)
        #expect(t.status == 0, "\(t.stderr)")
        let arguments = ["evaluate", "--features", "fn/net.h5", "--checkpoint", "run/ckpt-00000004.h5", "--count", "24", "--no-ema",
                         "--batch-size", "4", "--sampler-steps", "5", "--seed", "9", "--kid-subset-size", "10"]
        let one = try BinaryRunner.run(arguments, in: dir, timeout: 120)
        #expect(one.status == 0, "\(one.stderr)")
        let two = try BinaryRunner.mpirun(2, arguments, in: dir, timeout: 120)
        #expect(two.status == 0, "\(two.stderr)")
        let a = try Self.lastJSON(one.stdout), b = try Self.lastJSON(two.stdout)
        for key in ["fid", "kid", "class_entropy"] {
            let x = try #require(a[key] as? Double), y = try #require(b[key] as? Double)
            #expect(x == y && x.isFinite, "\(key): \(x) on one rank, \(y) on two")
        }
        let eta = try BinaryRunner.run(arguments + ["--eta", "1"], in: dir)
        #expect(eta.status != 0 && eta.stderr.contains("deterministic"), "\(eta.stderr)")
    }

    @Test func realImagesScoreCloseAndNoiseFar() throws {
        let dir = try Self.prepared("evaluate-real")
        // Images of the same distribution (the training images themselves) against pure noise.
        let real = try BinaryRunner.run(["evaluate", "--features", "fn/net.h5", "--images", "labelled.h5", "--kid-subset-size", "50"], in: dir)
        #expect(real.status == 0, "\(real.stderr)")
        var state: UInt64 = 5
        let noise = (0..<(60 * 64)).map { _ -> UInt8 in state = state &* 6364136223846793005 &+ 1; return UInt8(truncatingIfNeeded: state >> 56) }
        let file = try HDF5File.create(dir + "/noise.h5")
        try file.write("images", noise, shape: [60, 1, 8, 8])
        try file.close()
        let far = try BinaryRunner.run(["evaluate", "--features", "fn/net.h5", "--images", "noise.h5", "--kid-subset-size", "50"], in: dir)
        #expect(far.status == 0, "\(far.stderr)")
        let r = try Self.lastJSON(real.stdout), n = try Self.lastJSON(far.stdout)
        let realFID = try #require(r["fid"] as? Double), noiseFID = try #require(n["fid"] as? Double)
        #expect(abs(realFID) < 1e-6, "the reference set against itself: \(realFID)")
        #expect(noiseFID > 10 * max(realFID, 1e-3), "noise \(noiseFID) vs real \(realFID)")
        // A reference other than the network's training data works, and says what it measures.
        let other = try BinaryRunner.run(["evaluate", "--features", "fn/net.h5", "--images", "labelled.h5", "--reference", "noise.h5",
                                          "--kid-subset-size", "50"], in: dir)
        #expect(other.status == 0 && other.stdout.contains("warning: the feature network"), "\(other.stdout)\n\(other.stderr)")
        #expect(!real.stdout.contains("warning"), "\(real.stdout)")
        // Three balanced classes: the real set's class entropy is ln 3.
        #expect(abs((r["class_entropy"] as? Double ?? 0) - log(3.0)) < 0.05, "\(r)")
    }

    /// A PNG grid (as `sample` writes) of some images measures as those images do: uint8 pixels survive
    /// the grid exactly, and the grid's trailing black cells are not counted.
    @Test func gridOfImagesMeasuresAsTheImages() throws {
        let dir = try Self.prepared("evaluate-grid")
        let (pixels, _) = try HDF5File.open(dir + "/labelled.h5").read("images", as: UInt8.self)
        let count = 31   // a 6 × 6 grid: 5 black cells after the last image
        let first = Array(pixels[0..<(count * 64)])
        let subset = try HDF5File.create(dir + "/subset.h5")
        try subset.write("images", first, shape: [count, 1, 8, 8])
        try subset.close()
        let floats = first.map { Float($0) / 127.5 - 1 }
        try writeImageGrid(path: dir + "/grid.png", images: floats, count: count, channels: 1, height: 8, width: 8)
        let arguments = ["evaluate", "--features", "fn/net.h5", "--kid-subset-size", "20"]
        let fromGrid = try BinaryRunner.run(arguments + ["--grid", "grid.png"], in: dir)
        let fromFile = try BinaryRunner.run(arguments + ["--images", "subset.h5"], in: dir)
        #expect(fromGrid.status == 0 && fromFile.status == 0, "\(fromGrid.stderr)\n\(fromFile.stderr)")
        let a = try Self.lastJSON(fromGrid.stdout), b = try Self.lastJSON(fromFile.stdout)
        #expect(a["count"] as? Int == count)
        for key in ["fid", "kid", "class_entropy"] { #expect(a[key] as? Double == b[key] as? Double, "\(key): \(a) vs \(b)") }
        // A picture that is not a grid of the network's tiles is refused, naming it.
        try writeImageGrid(path: dir + "/wide.png", images: [Float](repeating: 0, count: 4 * 100), count: 4, channels: 1, height: 10, width: 10)
        let wrong = try BinaryRunner.run(arguments + ["--grid", "wide.png"], in: dir)
        #expect(wrong.status != 0 && wrong.stderr.contains("wide.png") && wrong.stderr.contains("8×8 tiles"), "\(wrong.stderr)")
    }

    @Test func trainingWithEvaluationLogsTheMetrics() throws {
        let dir = try Self.prepared("evaluate-train")
        let t = try BinaryRunner.mpirun(2, ["train", "--model", "cnn-tiny", "--data", "labelled.h5", "--batch-size", "4", "--steps", "4",
                                            "--sample-count", "0", "--out", "run", "--eval-every", "2", "--eval-count", "12",
                                            "--eval-features", "fn/net.h5", "--sampler-steps", "3", "--log-every", "1"], in: dir, timeout: 180)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("FID "), "\(t.stdout)")
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        let records = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        for (i, record) in records.enumerated() {
            let evaluated = (i + 1) % 2 == 0
            #expect(((record["fid"] as? Double) != nil) == evaluated, "step \(i + 1): \(record)")
            #expect(((record["class_entropy"] as? Double) != nil) == evaluated)
        }
        let header = try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8).split(separator: "\n")[0]
        #expect(header.hasSuffix(",fid,kid,kid_std,class_entropy"), "\(header)")
    }

    @Test func badInputGetsOneClearMessage() throws {
        let dir = try Self.prepared("evaluate-bad")
        // Images of another shape than the network's.
        let file = try HDF5File.create(dir + "/big.h5")
        try file.write("images", [UInt8](repeating: 7, count: 4 * 256), shape: [4, 1, 16, 16])
        try file.close()
        let shape = try BinaryRunner.run(["evaluate", "--features", "fn/net.h5", "--images", "big.h5"], in: dir)
        #expect(shape.status != 0 && shape.stderr.contains("[1, 16, 16]") && shape.stderr.contains("[1, 8, 8]"), "\(shape.stderr)")
        // Too few images for a covariance.
        let one = try HDF5File.create(dir + "/one.h5")
        try one.write("images", [UInt8](repeating: 7, count: 64), shape: [1, 1, 8, 8])
        try one.close()
        let few = try BinaryRunner.run(["evaluate", "--features", "fn/net.h5", "--images", "one.h5"], in: dir)
        #expect(few.status != 0 && few.stderr.contains("at least 2"), "\(few.stderr)")
        // Not a feature network.
        let wrong = try BinaryRunner.run(["evaluate", "--features", "labelled.h5", "--images", "labelled.h5"], in: dir)
        #expect(wrong.status != 0 && wrong.stderr.contains("labelled.h5") && wrong.stderr.contains("not a disttrain feature network"), "\(wrong.stderr)")
        // Evaluation during training needs a feature network, and one of the data's shape.
        let none = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--data", "labelled.h5", "--steps", "2", "--eval-every", "1", "--out", "r1"], in: dir)
        #expect(none.status != 0 && none.stderr.contains("--eval-features"), "\(none.stderr)")
        let other = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--data", "big.h5", "--batch-size", "2", "--steps", "2", "--eval-every", "1",
                                          "--eval-features", "fn/net.h5", "--out", "r2"], in: dir)
        #expect(other.status != 0 && other.stderr.contains("fn/net.h5"), "\(other.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/r2/metrics.jsonl"), "nothing written")
    }
}
