import Foundation
import IO
import Testing

/// The DDIM residual U-Net (`--model ddim-unet`, ZOO.md §5) through the commands: listed with ZOO.md §0's
/// figures, trained on two ranks with its size options, stopped and resumed bit-exactly, run with
/// SyncBatchNorm, sampled, benchmarked, and refused by name for image sides it cannot pool.
@Suite(.serialized) struct DDIMUNetCommandTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// `count` random 1×`side`×`side` uint8 images.
    static func writeImages(_ path: String, count: Int, side: Int = 16, seed: UInt64 = 3) throws {
        try writeRandomImages(path, count: count, channels: 1, side: side, seed: seed)
    }

    /// Widths 4,6,8,10 (three poolings: 16 → 2) and the default block depth, given explicitly.
    static let sizeOptions = ["--channels", "4,6,8,10", "--block-depth", "2"]

    @Test func modelsListsBothInstancesWithZooCounts() throws {
        let r = try BinaryRunner.run(["models"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let gray = try #require(lines.first { $0.hasPrefix("ddim-unet     ddim_unet ") })
        let rgb = try #require(lines.first { $0.hasPrefix("ddim-unet     ddim_unet_rgb ") })
        #expect(gray.contains("DDIMUNet") && gray.contains(" 1,950,497         0     2,880  14        1,141,374,976  1×64×64 "), "\(gray)")
        #expect(gray.hasSuffix("--channels 32,64,96,128 --block-depth 2"), "\(gray)")
        #expect(rgb.contains(" 1,950,627         0     2,880  14        1,141,899,264  3×64×64 "), "\(rgb)")
        #expect(rgb.hasSuffix("--channels 32,64,96,128 --block-depth 2"), "\(rgb)")
    }

    /// 4 steps on two ranks straight through, and the same stopped after 2 and resumed: the final
    /// checkpoints are bit-identical; then the checkpoint samples.
    @Test func trainsOnTwoRanksResumesBitExactlyAndSamples() throws {
        let dir = try BinaryRunner.temporaryDirectory("ddim-unet")
        try Self.writeImages(dir + "/images.h5", count: 16)
        let common = ["train", "--model", "ddim-unet"] + Self.sizeOptions
            + ["--data", "images.h5", "--batch-size", "4", "--steps", "4", "--checkpoint-every", "2", "--sample-count", "0",
               "--ema-rate", "0.9", "--seed", "5"]
        let (straight, _) = try CheckpointComparison.straightAndResumed(common, in: dir)
        // input_conv 8, down 1,892 + 1,242 + 2,248, bottleneck 3,550, up 3,920 + 2,244 + 1,032, output_conv 5.
        #expect(straight.stdout.contains("training DDIMUNet (16,141 parameters)"), "\(straight.stdout)")

        let checkpoint = dir + "/straight/ckpt-00000004.h5"
        let (differing, compared) = try CheckpointComparison.differingArrays(
            checkpoint, dir + "/resumed/ckpt-00000004.h5", groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq", "ema"])
        #expect(differing.isEmpty, "differ: \(differing)")
        #expect(compared >= 4 * 80, "\(compared) arrays")   // 80 parameter tensors in each group (and /model's 28 running statistics)
        let a = try HDF5File.open(checkpoint), b = try HDF5File.open(dir + "/resumed/ckpt-00000004.h5")
        #expect(try a.read("ranks/rng", as: Int64.self).values == b.read("ranks/rng", as: Int64.self).values)
        #expect(try a.read("ranks/buffers", as: Float.self).values == b.read("ranks/buffers", as: Float.self).values)
        #expect(a.attribute("model") == "ddim-unet")
        // The affine-free norms are buffers only, and they moved (momentum 0.01: a little) with the weights.
        let members = try a.members(of: "model")
        #expect(members.contains("up_blocks.0.residuals.0.norm.running_var") && !members.contains { $0.hasSuffix(".norm.weight") })
        let step2 = try HDF5File.open(dir + "/straight/ckpt-00000002.h5")
        #expect(try step2.read("model/up_blocks.2.residuals.1.conv2.weight", as: Float.self).values
                != a.read("model/up_blocks.2.residuals.1.conv2.weight", as: Float.self).values)
        #expect(try step2.read("model/down_blocks.0.residuals.0.norm.running_mean", as: Float.self).values
                != a.read("model/down_blocks.0.residuals.0.norm.running_mean", as: Float.self).values)
        // Without SyncBatchNorm each rank keeps statistics of its own shard.
        let rows = try a.read("ranks/buffers", as: Float.self)
        #expect(rows.shape.count == 2 && rows.shape[0] == 2)
        #expect(Array(rows.values[0..<rows.shape[1]]) != Array(rows.values[rows.shape[1]...]))

        let sample = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "2", "--sampler-steps", "2", "--out", dir + "/s.png"],
                                          timeout: 120)
        #expect(sample.status == 0, "\(sample.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/s.png"))
    }

    /// --sync-bn: the affine-free norms take their statistics over both ranks, so every rank ends with
    /// the same running statistics.
    @Test func synchronisedBatchNormGivesEveryRankTheSameStatistics() throws {
        let dir = try BinaryRunner.temporaryDirectory("ddim-unet-sync")
        try Self.writeImages(dir + "/images.h5", count: 16)
        let r = try BinaryRunner.mpirun(2, ["train", "--model", "ddim-unet"] + Self.sizeOptions
                                        + ["--data", "images.h5", "--batch-size", "4", "--steps", "2", "--sample-count", "0", "--seed", "5",
                                           "--sync-bn", "--out", "run"], in: dir, timeout: 240)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        let file = try HDF5File.open(dir + "/run/ckpt-00000002.h5")
        let rows = try file.read("ranks/buffers", as: Float.self), n = rows.shape[1]
        #expect(Array(rows.values[0..<n]) == Array(rows.values[n...]))
        #expect(rows.values.contains { $0 != 0 && $0 != 1 }, "the statistics moved")
    }

    @Test func imageSidesNotDivisibleByEightAreRefusedByName() throws {
        let dir = try BinaryRunner.temporaryDirectory("ddim-unet-sides")
        try Self.writeImages(dir + "/twelve.h5", count: 8, side: 12)
        let r = try BinaryRunner.mpirun(2, ["train", "--model", "ddim-unet", "--data", "twelve.h5", "--batch-size", "4", "--steps", "1",
                                            "--sample-count", "0", "--out", "run"], in: dir, timeout: 60)
        #expect(r.status != 0 && !r.timedOut)
        let output = r.stderr + r.stdout
        #expect(output.contains("twelve.h5") && output.contains("12×12") && output.contains("ddim-unet") && output.contains("divisible by 8"), "\(output)")
        #expect(!output.contains("Fatal error"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/ckpt-00000001.h5"))
        // --block-depth is ddim-unet's alone.
        let other = try BinaryRunner.mpirun(2, ["train", "--model", "cnn", "--data", "twelve.h5", "--block-depth", "2", "--batch-size", "4",
                                                "--steps", "1", "--sample-count", "0", "--out", "run2"], in: dir, timeout: 60)
        #expect(other.status != 0 && (other.stderr + other.stdout).contains("--block-depth is not an option of cnn"), "\(other.stderr)")
    }

    @Test func benchTimesTheReferenceInstance() throws {
        let r = try BinaryRunner.run(["bench", "--model", "ddim-unet", "--batch-size", "2", "--steps", "1", "--warmup", "0"], timeout: 240)
        #expect(r.status == 0, "\(r.stderr)")
        let last = try #require(r.stdout.split(separator: "\n").last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(json["model"] as? String == "ddim-unet")
        #expect(json["instance"] as? String == "ddim_unet")
        let imagesPerSecond = try #require(json["img_per_s"] as? Double)
        let gflops = try #require(json["gflops"] as? Double)
        // FLOPs are 6 × forward MACs: 6 × 1.141374976 G per 1×64×64 image.
        #expect(imagesPerSecond > 0 && abs(gflops - imagesPerSecond * 6 * 1.141374976) < 0.01 * gflops + 1e-3, "\(last)")
    }
}
