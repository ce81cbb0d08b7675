import Foundation
import IO
import Testing

/// The recipes of seeds 002–004 (`train --recipe course|needle|ddpm-card`): each sets its table (read back
/// from the checkpoint's configuration), its model when none is given, its global batch split over the
/// ranks and its length in epochs; its model-only settings stay with its model; explicit options win.
@Suite(.serialized) struct SeedRecipeCommandTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    static func configuration(_ checkpoint: String) throws -> [String: Any] { try DDIMRecipeCommandTests.configuration(checkpoint) }

    /// 24 labelled 1×16×16 images (labels 0…4).
    static func writeLabelledImages(_ path: String) throws {
        try writeRandomImages(path, count: 24, channels: 1, side: 16, seed: 3)
        let file = try HDF5File.open(path, writable: true)
        try file.write("labels", (0..<24).map { Int64($0 % 5) }, shape: [24])
        try file.close()
    }

    @Test func theNeedleRecipeTrainsTheSeedsSmallUNetForTwoEpochsOfTwelve() throws {
        let dir = try BinaryRunner.temporaryDirectory("recipe-needle")
        try writeRandomImages(dir + "/images.h5", count: 24, channels: 3, side: 16, seed: 1)
        let train = try BinaryRunner.mpirun(2, ["train", "--recipe", "needle", "--data", "images.h5", "--sample-count", "0", "--out", "run"],
                                            in: dir, timeout: 240)
        #expect(train.status == 0, "\(train.stderr)")
        // 2 epochs of 12 images per rank in batches of 6 (the global 12 over 2 ranks): 4 steps.
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: dir + "/run").filter { $0.hasPrefix("ckpt-") }
        #expect(checkpoints == ["ckpt-00000004.h5"], "\(checkpoints)")
        let c = try Self.configuration(dir + "/run/ckpt-00000004.h5")
        #expect(c["model"] as? String == "needle-unet" && c["batchSize"] as? Int == 6)
        let options = try #require(c["modelOptions"] as? [String: Any])
        #expect(options["channels"] as? [Int] == [32, 64, 128] && options["timeDimension"] as? Int == 16, "\(options)")
        #expect(c["schedule"] as? String == "needle-linear" && c["timesteps"] as? Int == 300)
        #expect(c["learningRate"] as? Double == 1e-3 && c["learningRateSchedule"] as? String == "constant")
        #expect(c["sampler"] as? String == "ddpm" && c["ddpmVariance"] as? String == "posterior")

        // A size given beside it is the user's.
        let sized = try BinaryRunner.run(["train", "--recipe", "needle", "--channels", "16,32", "--time-dim", "8", "--data", "images.h5",
                                          "--steps", "1", "--batch-size", "2", "--sample-count", "0", "--out", "sized"], in: dir)
        #expect(sized.status == 0, "\(sized.stderr)")
        let sizedOptions = try #require(try Self.configuration(dir + "/sized/ckpt-00000001.h5")["modelOptions"] as? [String: Any])
        #expect(sizedOptions["channels"] as? [Int] == [16, 32] && sizedOptions["timeDimension"] as? Int == 8, "\(sizedOptions)")
    }

    @Test func theCourseRecipeSetsContextUnetsScheduleDropoutAndSampler() throws {
        let dir = try BinaryRunner.temporaryDirectory("recipe-course")
        try Self.writeLabelledImages(dir + "/images.h5")
        let train = try BinaryRunner.run(["train", "--recipe", "course", "--features", "16", "--context-features", "5", "--data", "images.h5",
                                          "--steps", "2", "--batch-size", "4", "--sample-count", "0", "--out", "run"], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        let c = try Self.configuration(dir + "/run/ckpt-00000002.h5")
        #expect(c["model"] as? String == "context-unet" && c["labelDropout"] as? Double == 0.1)
        #expect(c["schedule"] as? String == "course" && c["timesteps"] as? Int == 500)
        #expect(c["learningRate"] as? Double == 1e-3 && c["learningRateSchedule"] as? String == "linear")
        #expect(c["sampler"] as? String == "ddpm" && c["ddpmVariance"] as? String == "beta")

        // On another (unconditional) model the schedule and sampler carry over, the label dropout does
        // not; explicit options override the recipe's.
        let other = try BinaryRunner.run(["train", "--recipe", "course", "--model", "cnn-tiny", "--data", "images.h5", "--sampler", "ddim",
                                          "--lr", "5e-4", "--steps", "2", "--batch-size", "4", "--sample-count", "0", "--out", "other"], in: dir)
        #expect(other.status == 0, "\(other.stderr)")
        let o = try Self.configuration(dir + "/other/ckpt-00000002.h5")
        #expect(o["model"] as? String == "cnn-tiny" && o["labelDropout"] as? Double == 0)
        #expect(o["schedule"] as? String == "course" && o["timesteps"] as? Int == 500)
        #expect(o["sampler"] as? String == "ddim" && o["learningRate"] as? Double == 5e-4)
    }

    @Test func theCardRecipeTrainsMyUNetAtItsGlobalBatchSplitOverTheRanks() throws {
        let dir = try BinaryRunner.temporaryDirectory("recipe-card")
        try writeRandomImages(dir + "/images.h5", count: 128, channels: 1, side: 28, seed: 2)
        let train = try BinaryRunner.mpirun(2, ["train", "--recipe", "ddpm-card", "--data", "images.h5", "--steps", "1", "--sample-count", "0",
                                                "--out", "run"], in: dir, timeout: 240)
        #expect(train.status == 0, "\(train.stderr)")
        let c = try Self.configuration(dir + "/run/ckpt-00000001.h5")
        #expect(c["model"] as? String == "my-unet" && c["batchSize"] as? Int == 64)
        #expect(c["schedule"] as? String == "linear" && c["timesteps"] as? Int == 1000 && c["loss"] as? String == "mse")
        #expect(c["learningRate"] as? Double == 1e-3 && c["learningRateSchedule"] as? String == "constant")
        #expect(c["sampler"] as? String == "ddpm" && c["ddpmVariance"] as? String == "beta")
    }
}
