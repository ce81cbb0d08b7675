import Foundation
import IO
import Testing

/// The needle U-Net (`--model needle-unet`, ZOO.md §3) through every command: listed with ZOO.md §0's
/// figures, trained on two ranks with its size options, stopped and resumed bit-exactly, sampled,
/// predicted and benchmarked.
@Suite(.serialized) struct NeedleUNetCommandTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// `count` random 3×16×16 uint8 images.
    static func writeImages(_ path: String, count: Int, seed: UInt64 = 3) throws {
        try writeRandomImages(path, count: count, channels: 3, side: 16, seed: seed)
    }

    @Test func modelsListsBothInstancesWithZooCounts() throws {
        let r = try BinaryRunner.run(["models"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let big = try #require(lines.first { $0.hasPrefix("needle-unet   needle_unet ") })
        let small = try #require(lines.first { $0.hasPrefix("needle-unet   needle_unet_small ") })
        #expect(big.contains("NeedleUNet") && big.contains(" 40,154,723         0    11,520  16        4,655,246,336  3×64×64"), "\(big)")
        #expect(big.hasSuffix("--channels 64,128,256,512,1024 --time-dim 32"), "\(big)")
        #expect(small.contains(" 596,787         0     1,152   8          584,848,128  3×64×64"), "\(small)")
        #expect(small.hasSuffix("--channels 32,64,128 --time-dim 16"), "\(small)")
    }

    /// 4 steps on two ranks straight through, and the same stopped after 2 and resumed: the final
    /// checkpoints are bit-identical; then the checkpoint samples and predicts.
    @Test func trainsOnTwoRanksResumesBitExactlySamplesAndPredicts() throws {
        let dir = try BinaryRunner.temporaryDirectory("needle-unet")
        try Self.writeImages(dir + "/images.h5", count: 16)
        let common = ["train", "--model", "needle-unet", "--channels", "8,16", "--time-dim", "8", "--data", "images.h5",
                      "--batch-size", "4", "--steps", "4", "--checkpoint-every", "2", "--sample-count", "0", "--ema-rate", "0.9", "--seed", "5"]
        let (straight, _) = try CheckpointComparison.straightAndResumed(common, in: dir)
        // 72 + 224 + downs.0 3,696 + ups.0 4,032 + 27: the counts of 8,16 at d 8 on three channels.
        #expect(straight.stdout.contains("training NeedleUNet (8,051 parameters)"), "\(straight.stdout)")

        let checkpoint = dir + "/straight/ckpt-00000004.h5"
        let (differing, compared) = try CheckpointComparison.differingArrays(
            checkpoint, dir + "/resumed/ckpt-00000004.h5", groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq", "ema"])
        #expect(differing.isEmpty, "differ: \(differing)")
        #expect(compared >= 4 * 28, "\(compared) arrays")   // 28 parameter tensors in each group (and /model's 8 running statistics)
        let a = try HDF5File.open(checkpoint), b = try HDF5File.open(dir + "/resumed/ckpt-00000004.h5")
        #expect(try a.read("ranks/rng", as: Int64.self).values == b.read("ranks/rng", as: Int64.self).values)
        #expect(a.attribute("model") == "needle-unet")
        // The run moved: the weights differ from step 2's, and so do the running statistics.
        let second2 = try HDF5File.open(dir + "/straight/ckpt-00000002.h5")
        #expect(try second2.read("model/ups.0.transform.weight", as: Float.self).values != a.read("model/ups.0.transform.weight", as: Float.self).values)
        #expect(try second2.read("model/downs.0.bnorm1.running_mean", as: Float.self).values
                != a.read("model/downs.0.bnorm1.running_mean", as: Float.self).values)

        let sample = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "2", "--sampler-steps", "2", "--out", dir + "/s.png"],
                                          timeout: 120)
        #expect(sample.status == 0, "\(sample.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/s.png"))
        let input = try HDF5File.create(dir + "/x.h5")
        try input.write("x", [Float](repeating: 0.1, count: 2 * 3 * 256), shape: [2, 3, 16, 16])
        try input.write("t", [Int64](arrayLiteral: 0, 999), shape: [2])
        try input.close()
        let predict = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", dir + "/x.h5", "--out", dir + "/eps.h5"], timeout: 120)
        #expect(predict.status == 0, "\(predict.stderr)")
        let eps = try HDF5File.open(dir + "/eps.h5").read("eps", as: Float.self)
        #expect(eps.shape == [2, 3, 16, 16])
        #expect(eps.values.allSatisfy { $0.isFinite })
        // The same image at two timesteps: the prediction depends on t.
        #expect(Array(eps.values[0..<768]) != Array(eps.values[768...]))
    }

    @Test func benchTimesTheSmallInstance() throws {
        let r = try BinaryRunner.run(["bench", "--model", "needle-unet", "--instance", "needle_unet_small", "--batch-size", "2", "--steps", "1",
                                      "--warmup", "0"], timeout: 240)
        #expect(r.status == 0, "\(r.stderr)")
        let last = try #require(r.stdout.split(separator: "\n").last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(json["model"] as? String == "needle-unet")
        #expect(json["instance"] as? String == "needle_unet_small")
        let imagesPerSecond = try #require(json["img_per_s"] as? Double)
        let gflops = try #require(json["gflops"] as? Double)
        // FLOPs are 6 × forward MACs: 6 × 0.584848128 G per 64×64 image.
        #expect(imagesPerSecond > 0 && abs(gflops - imagesPerSecond * 6 * 0.584848128) < 0.01 * gflops + 1e-3, "\(last)")
    }
}
