import Foundation
import IO
import Testing
import TestSupport

/// MyUNet (`--model my-unet`, ZOO.md §4) through the commands (its `models` line is checked in
/// CommandLineTests): trained with its frozen table left bit-identical and without optimizer state,
/// trained on two ranks and resumed bit-exactly, sampled, predicted, benchmarked, and refused on data
/// or schedules it cannot take.
@Suite(.serialized) struct MyUNetCommandTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// `count` random 1×side×side uint8 images.
    static func writeImages(_ path: String, count: Int, side: Int = 28, seed: UInt64 = 4) throws {
        try writeRandomImages(path, count: count, channels: 1, side: side, seed: seed)
    }

    static func bits(_ path: String, _ name: String) throws -> [UInt32] {
        try HDF5File.open(path).read(name, as: Float.self).values.map(\.bitPattern)
    }

    /// Three steps on one rank, a checkpoint after each: time_embed.weight is the same in every one, bit for
    /// bit, and the initial table (within one ULP of PyTorch's at the 3,635 entries MyUNetTests pins), with
    /// no Adam moments or EMA, while the trained tensors moved.
    @Test func theFrozenTableStaysBitIdenticalAndHasNoOptimizerState() throws {
        let dir = try BinaryRunner.temporaryDirectory("my-unet-frozen")
        try Self.writeImages(dir + "/images.h5", count: 8)
        let r = try BinaryRunner.run(["train", "--model", "my-unet", "--data", "images.h5", "--batch-size", "4", "--steps", "3",
                                      "--checkpoint-every", "1", "--keep", "5", "--sample-count", "0", "--ema-rate", "0.9",
                                      "--seed", "3", "--out", "run"], in: dir, timeout: 240)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        #expect(r.stdout.contains("training MyUNet (506,852 parameters)"), "\(r.stdout)")
        let golden = try Golden.open("zoo-models.h5").read("my_unet/frozen/time_embed.weight", as: Float.self).values.map(\.bitPattern)
        let initial = try Self.bits(dir + "/run/ckpt-00000001.h5", "model/time_embed.weight")
        let ulps = zip(initial, golden).map { abs(Int64(Int32(bitPattern: $0)) - Int64(Int32(bitPattern: $1))) }
        #expect(ulps.max() == 1 && ulps.filter { $0 != 0 }.count == 3_635, "not the table the model computes")
        for step in 1...3 {
            let path = dir + "/run/" + String(format: "ckpt-%08d.h5", step)
            #expect(try Self.bits(path, "model/time_embed.weight") == initial, "step \(step): the table changed")
            let file = try HDF5File.open(path)
            #expect(!file.contains("optimizer/exp_avg/time_embed.weight") && !file.contains("optimizer/exp_avg_sq/time_embed.weight"))
            #expect(!file.contains("ema/time_embed.weight"))
            #expect(!file.contains("ranks/buffers"), "the table once per rank: it is the same on all")
            #expect(file.contains("optimizer/exp_avg/b1.0.conv1.weight"))
        }
        let first = dir + "/run/ckpt-00000001.h5", last = dir + "/run/ckpt-00000003.h5"
        #expect(try Self.bits(first, "model/b1.0.conv1.weight") != Self.bits(last, "model/b1.0.conv1.weight"))
        #expect(try Self.bits(first, "model/te_out.2.bias") != Self.bits(last, "model/te_out.2.bias"))
        // b_out.2's LayerNorm is never read: Adam leaves it at 1 and 0 (its moments stay 0).
        #expect(try HDF5File.open(last).read("model/b_out.2.ln.weight", as: Float.self).values.allSatisfy { $0 == 1 })
        #expect(try HDF5File.open(last).read("model/b_out.2.ln.bias", as: Float.self).values.allSatisfy { $0 == 0 })
    }

    /// 4 steps on two ranks straight through, and the same stopped after 2 and resumed: the final
    /// checkpoints are bit-identical (weights, table, Adam moments, EMA, every rank's RNG); then the
    /// checkpoint samples and predicts.
    @Test func trainsOnTwoRanksResumesBitExactlySamplesAndPredicts() throws {
        let dir = try BinaryRunner.temporaryDirectory("my-unet")
        try Self.writeImages(dir + "/images.h5", count: 16)
        let common = ["train", "--model", "my-unet", "--data", "images.h5", "--batch-size", "4", "--steps", "4",
                      "--checkpoint-every", "2", "--sample-count", "0", "--ema-rate", "0.9", "--seed", "5"]
        _ = try CheckpointComparison.straightAndResumed(common, in: dir, timeout: 300)

        let checkpoint = dir + "/straight/ckpt-00000004.h5"
        let (differing, compared) = try CheckpointComparison.differingArrays(
            checkpoint, dir + "/resumed/ckpt-00000004.h5", groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq", "ema"])
        #expect(differing.isEmpty, "differ: \(differing)")
        // 172 trained tensors in each of the four groups, and the table in /model.
        #expect(compared == 4 * 172 + 1, "\(compared) arrays")
        let a = try HDF5File.open(checkpoint), b = try HDF5File.open(dir + "/resumed/ckpt-00000004.h5")
        #expect(try a.read("ranks/rng", as: Int64.self).values == b.read("ranks/rng", as: Int64.self).values)
        #expect(a.attribute("model") == "my-unet")
        #expect(try Self.bits(dir + "/straight/ckpt-00000002.h5", "model/b_mid.1.conv2.weight") != Self.bits(checkpoint, "model/b_mid.1.conv2.weight"))

        let sample = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "2", "--sampler-steps", "2", "--out", dir + "/s.png"],
                                          timeout: 120)
        #expect(sample.status == 0, "\(sample.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/s.png"))
        let input = try HDF5File.create(dir + "/x.h5")
        try input.write("x", [Float](repeating: 0.1, count: 2 * 784), shape: [2, 1, 28, 28])
        try input.write("t", [Int64](arrayLiteral: 0, 999), shape: [2])
        try input.close()
        let predict = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", dir + "/x.h5", "--out", dir + "/eps.h5"], timeout: 120)
        #expect(predict.status == 0, "\(predict.stderr)")
        let eps = try HDF5File.open(dir + "/eps.h5").read("eps", as: Float.self)
        #expect(eps.shape == [2, 1, 28, 28] && eps.values.allSatisfy { $0.isFinite })
        // The same image at two timesteps: the prediction depends on t (through the table's rows).
        #expect(Array(eps.values[0..<784]) != Array(eps.values[784...]))
    }

    @Test func refusesOtherImageSizesAndTimestepsBeyondItsTable() throws {
        let dir = try BinaryRunner.temporaryDirectory("my-unet-refusals")
        try Self.writeImages(dir + "/small.h5", count: 4, side: 16)
        try Self.writeImages(dir + "/images.h5", count: 4)
        let size = try BinaryRunner.run(["train", "--model", "my-unet", "--data", "small.h5", "--steps", "1", "--out", "a"], in: dir, timeout: 120)
        #expect(size.status != 0 && size.stderr.contains("my-unet") && size.stderr.contains("28×28") && size.stderr.contains("16×16"), "\(size.stderr)")
        let long = try BinaryRunner.run(["train", "--model", "my-unet", "--data", "images.h5", "--steps", "1", "--timesteps", "2000", "--out", "b"],
                                        in: dir, timeout: 120)
        #expect(long.status != 0 && long.stderr.contains("--timesteps 2000") && long.stderr.contains("0…999"), "\(long.stderr)")
        let course = try BinaryRunner.run(["train", "--model", "my-unet", "--data", "images.h5", "--steps", "1", "--schedule", "course", "--out", "c"],
                                          in: dir, timeout: 120)
        #expect(course.status != 0 && course.stderr.contains("1…1000"), "\(course.stderr)")
    }

    @Test func benchTimesTheInstance() throws {
        let r = try BinaryRunner.run(["bench", "--model", "my-unet", "--batch-size", "2", "--steps", "1", "--warmup", "0"], timeout: 240)
        #expect(r.status == 0, "\(r.stderr)")
        let last = try #require(r.stdout.split(separator: "\n").last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(json["model"] as? String == "my-unet")
        #expect(json["parameters"] as? Int == 506_852)
        let imagesPerSecond = try #require(json["img_per_s"] as? Double)
        let gflops = try #require(json["gflops"] as? Double)
        // FLOPs are 6 × forward MACs: 6 × 0.024931521 G per image.
        #expect(imagesPerSecond > 0 && abs(gflops - imagesPerSecond * 6 * 0.024931521) < 0.01 * gflops + 1e-3, "\(last)")
    }
}
