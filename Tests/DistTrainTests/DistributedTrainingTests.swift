import Foundation
import IO
import Testing

/// Multi-rank behaviour, proven by running the real binary under `mpirun -np 2`.
@Suite(.serialized) struct DistributedTrainingTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// 32 random 1×8×8 uint8 images: small enough for the CNNDenoiser to step quickly.
    static func writeImages(_ path: String, count: Int = 32, seed: UInt64 = 7) throws {
        var state = seed
        let bytes = (0..<(count * 64)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let file = try HDF5File.create(path)
        try file.write("images", bytes, shape: [count, 1, 8, 8])
        try file.close()
    }

    static func floats(_ path: String, _ name: String) throws -> [Float] {
        try HDF5File.open(path).read(name, as: Float.self).values
    }

    @Test func syncBatchNormOnTwoRanksOfFourMatchesOneRankOfEight() throws {
        let dir = try BinaryRunner.temporaryDirectory("syncbn")
        // One batch of 8: x0, timesteps and noise fixed in the file, so both runs see the same numbers.
        var state: UInt64 = 3
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        let input = try HDF5File.create(dir + "/batch.h5")
        try input.write("x0", (0..<(8 * 64)).map { _ in next() }, shape: [8, 1, 8, 8])
        try input.write("eps", (0..<(8 * 64)).map { _ in next() * 1.7 }, shape: [8, 1, 8, 8])
        try input.write("t", [Int64](arrayLiteral: 0, 999, 10, 500, 250, 3, 720, 64), shape: [8])
        try input.close()

        let one = try BinaryRunner.mpirun(1, ["gradients", "--model", "cnn", "--input", "batch.h5", "--out", "one.h5", "--sync-bn"], in: dir, timeout: 120)
        let two = try BinaryRunner.mpirun(2, ["gradients", "--model", "cnn", "--input", "batch.h5", "--out", "two.h5", "--sync-bn"], in: dir, timeout: 120)
        let local = try BinaryRunner.mpirun(2, ["gradients", "--model", "cnn", "--input", "batch.h5", "--out", "local.h5"], in: dir, timeout: 120)
        for r in [one, two, local] { #expect(r.status == 0 && !r.timedOut, "\(r.stderr)") }

        let a = try HDF5File.open(dir + "/one.h5"), b = try HDF5File.open(dir + "/two.h5"), c = try HDF5File.open(dir + "/local.h5")
        let lossA = try a.read("loss", as: Double.self).values[0], lossB = try b.read("loss", as: Double.self).values[0]
        #expect(abs(lossA - lossB) <= 1e-6 * abs(lossA), "loss \(lossA) vs \(lossB)")
        var worstGradient: Float = 0
        for name in try a.members(of: "grads") {
            let x = try a.read("grads/\(name)", as: Float.self).values, y = try b.read("grads/\(name)", as: Float.self).values
            // Biases right before BatchNorm have a true gradient of 0; measure against a floor.
            let scale = max(x.map { abs($0) }.max()!, 1e-3)
            worstGradient = max(worstGradient, zip(x, y).map { abs($0 - $1) }.max()! / scale)
        }
        #expect(worstGradient < 1e-4, "largest gradient difference, relative to each tensor's largest entry: \(worstGradient)")
        for name in try a.members(of: "buffers") {
            let x = try a.read("buffers/\(name)", as: Float.self).values, y = try b.read("buffers/\(name)", as: Float.self).values
            #expect(zip(x, y).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) }, "running statistic \(name)")
        }
        // Without --sync-bn each rank normalises its own 4 images: the statistics differ, so the
        // comparison above is one that can fail.
        let lossC = try c.read("loss", as: Double.self).values[0]
        #expect(abs(lossA - lossC) > 1e-4 * abs(lossA), "per-rank BatchNorm should change the loss")
    }

    /// The same run, once straight through 6 steps and once stopped after 3 and resumed: every array
    /// of the final checkpoint is bit-identical.
    @Test func stoppingAndResumingEndsWithBitIdenticalCheckpoint() throws {
        let dir = try BinaryRunner.temporaryDirectory("resume")
        try Self.writeImages(dir + "/images.h5")
        let common = ["train", "--model", "cnn", "--data", "images.h5", "--batch-size", "4", "--steps", "6",
                      "--checkpoint-every", "3", "--sample-count", "0", "--ema-rate", "0.9", "--seed", "5"]
        let straight = try BinaryRunner.mpirun(2, common + ["--out", "straight"], in: dir, timeout: 180)
        #expect(straight.status == 0 && !straight.timedOut, "\(straight.stderr)")
        let first = try BinaryRunner.mpirun(2, common + ["--out", "resumed", "--halt-after", "3"], in: dir, timeout: 180)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/resumed/ckpt-00000006.h5"))
        let second = try BinaryRunner.mpirun(2, common + ["--out", "resumed", "--resume"], in: dir, timeout: 180)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("resumed from") && second.stdout.contains("at step 3"))

        let (differing, compared) = try CheckpointComparison.differingArrays(
            dir + "/straight/ckpt-00000006.h5", dir + "/resumed/ckpt-00000006.h5", groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq", "ema"])
        #expect(differing.isEmpty, "differ: \(differing)")
        #expect(compared > 100)
        let a = try HDF5File.open(dir + "/straight/ckpt-00000006.h5"), b = try HDF5File.open(dir + "/resumed/ckpt-00000006.h5")
        #expect(try a.read("ranks/rng", as: Int64.self).values == b.read("ranks/rng", as: Int64.self).values)
        #expect(try a.read("ranks/data", as: Int64.self).values == b.read("ranks/data", as: Int64.self).values)
        // The run really moved: the weights are not the initial ones of step 3.
        let third = try HDF5File.open(dir + "/straight/ckpt-00000003.h5")
        #expect(try third.read("model/out_conv.weight", as: Float.self).values != a.read("model/out_conv.weight", as: Float.self).values)
    }

    /// Many small buckets summed by the communication thread while backward still runs must give
    /// exactly what one bucket summed after backward gives: a bucket sent before its gradients were
    /// final, or summed twice, or not at all, would change the weights.
    @Test func overlappedSmallBucketsEndBitIdenticalToOneBucketAfterBackward() throws {
        let dir = try BinaryRunner.temporaryDirectory("buckets")
        try Self.writeImages(dir + "/images.h5")
        let common = ["train", "--model", "cnn", "--data", "images.h5", "--batch-size", "4", "--steps", "3",
                      "--checkpoint-every", "3", "--sample-count", "0", "--seed", "11"]
        let small = try BinaryRunner.mpirun(2, common + ["--out", "small", "--bucket-mb", "0.25"], in: dir, timeout: 180)
        let whole = try BinaryRunner.mpirun(2, common + ["--out", "whole", "--bucket-mb", "100", "--no-overlap"], in: dir, timeout: 180)
        // The thread done with every bucket before the main thread asks (it once sent them all again).
        let early = try BinaryRunner.mpirun(2, common + ["--out", "early", "--bucket-mb", "0.25", "--delay-allreduce-wait-ms", "300"], in: dir, timeout: 180)
        for r in [small, whole, early] { #expect(r.status == 0 && !r.timedOut, "\(r.stderr)") }
        let bucketCount = small.stdout.firstMatch(of: /allreduce in (\d+) bucket/).map { Int($0.1)! } ?? 0
        #expect(bucketCount > 10, "\(small.stdout)")
        #expect(small.stdout.contains("started during backward on a communication thread"), "\(small.stdout)")
        #expect(whole.stdout.contains("allreduce in 1 bucket(s)"), "\(whole.stdout)")
        for run in ["small", "early"] {
            let (differing, compared) = try CheckpointComparison.differingArrays(
                dir + "/\(run)/ckpt-00000003.h5", dir + "/whole/ckpt-00000003.h5", groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq"])
            #expect(differing.isEmpty, "\(run) differs: \(differing)")
            #expect(compared > 100)
        }
    }

    @Test func trainingLeavesCheckpointMetricsAndSampleGrid() throws {
        let dir = try BinaryRunner.temporaryDirectory("artifacts")
        try Self.writeImages(dir + "/images.h5")
        let r = try BinaryRunner.mpirun(2, ["train", "--model", "cnn", "--data", "images.h5", "--batch-size", "4", "--steps", "4",
                                            "--sample-count", "6", "--sampler", "ddim", "--sampler-steps", "4", "--out", "run"],
                                        in: dir, timeout: 180)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        let run = dir + "/run"
        #expect(FileManager.default.fileExists(atPath: run + "/ckpt-00000004.h5"))
        #expect(FileManager.default.fileExists(atPath: run + "/samples/step-00000004.png"))
        let samples = try HDF5File.open(run + "/samples/step-00000004.h5")
        #expect(try samples.shape(of: "images") == [6, 1, 8, 8])
        let lines = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        let last = try #require(try JSONSerialization.jsonObject(with: Data(lines[3].utf8)) as? [String: Any])
        for key in ["step", "epoch", "loss", "lr", "grad_norm", "img_per_s", "step_seconds", "allreduce_wait_seconds"] {
            #expect(last[key] != nil, "metrics.jsonl lacks \(key)")
        }
        #expect(last["step"] as? Int == 4)
        let csv = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.first?.hasPrefix("step,epoch,loss,lr,grad_norm") == true && csv.count == 5)
        // The checkpoint holds every rank's RNG state: two rows, distinct streams.
        let rng = try HDF5File.open(run + "/ckpt-00000004.h5").read("ranks/rng", as: Int64.self)
        #expect(rng.shape == [2, 3] && rng.values[1] != rng.values[4])
    }
}
