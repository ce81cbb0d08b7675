import Foundation
import IO
import Testing

/// Seed 001's recipe (`train --recipe ddim-keras`, ZOO.md §5) through the binary: it trains and lowers its
/// MAE, samples in the data's range, computes the same data statistics on one rank and two, resumes
/// bit-exactly at two ranks with AdamW and the EMA of the running statistics, and refuses what cannot go together.
@Suite(.serialized) struct DDIMRecipeCommandTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// `count` 3×8×8 uint8 images: a gradient per channel at its own brightness (channel means ≈ 0.7,
    /// 0.45, 0.2 of 255), plus noise, so that the images have something to learn and the channels differ.
    static func writeImages(_ path: String, count: Int, seed: UInt64 = 11) throws -> [UInt8] {
        var state = seed
        var bytes: [UInt8] = []
        for _ in 0..<count {
            for c in 0..<3 {
                for y in 0..<8 { for x in 0..<8 {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    let noise = Double(Int(state >> 59)) - 16
                    let brightness: [Double] = [178, 115, 51]
                    let value: Double = brightness[c] + Double(x + y - 7) * 6 + noise
                    bytes.append(UInt8(min(max(value, 0), 255)))
                } }
            }
        }
        let file = try HDF5File.create(path)
        try file.write("images", bytes, shape: [count, 3, 8, 8])
        try file.close()
        return bytes
    }

    static func configuration(_ checkpoint: String) throws -> [String: Any] {
        let json = try #require(try HDF5File.open(checkpoint).attribute("configuration"))
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    static func losses(_ run: String) throws -> [Double] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").compactMap { line in
            (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["loss"] as? Double
        }
    }

    static let model = ["--model", "context-unet", "--features", "16"]

    @Test func theRecipeTrainsLowersItsLossAndSamplesInTheDataRange() throws {
        let dir = try BinaryRunner.temporaryDirectory("ddim-keras")
        let images = try Self.writeImages(dir + "/images.h5", count: 64)
        let train = try BinaryRunner.run(["train", "--recipe", "ddim-keras"] + Self.model + ["--data", "images.h5", "--batch-size", "16",
                                          "--steps", "80", "--log-every", "1", "--sample-count", "4", "--sampler-steps", "5", "--out", "run"],
                                         in: dir, timeout: 300)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("--normalize-data: per-channel μ ± σ"), "\(train.stdout)")
        let losses = try Self.losses(dir + "/run")
        #expect(losses.count == 80)
        let first = losses.prefix(10).reduce(0, +) / 10, last = losses.suffix(10).reduce(0, +) / 10
        #expect(last < 0.8 * first, "MAE from \(first) to \(last)")
        let checkpoint = dir + "/run/ckpt-00000080.h5"
        let c = try Self.configuration(checkpoint)
        #expect(c["schedule"] as? String == "continuous-cosine" && c["loss"] as? String == "mae")
        #expect(c["optimizer"] as? String == "adamw" && c["weightDecay"] as? Double == 1e-4 && c["adamEpsilon"] as? Double == 1e-7)
        #expect(c["learningRate"] as? Double == 1e-3 && c["learningRateSchedule"] as? String == "constant")
        #expect(c["emaRate"] as? Double == 0.999 && c["emaBuffers"] as? Bool == true && c["normalizeData"] as? Bool == true)
        #expect(c["batchSize"] as? Int == 16, "--batch-size overrides the recipe's 64")
        let file = try HDF5File.open(checkpoint)
        #expect(file.contains("ema_buffers") && file.contains("ranks/ema_buffers") && file.contains("data_normalization/mean"))
        // The EMA of the running statistics lags the live ones.
        let liveMean = try file.read("model/down1.model.0.conv1.1.running_mean", as: Float.self).values
        let averaged = try file.read("ema_buffers/down1.model.0.conv1.1.running_mean", as: Float.self).values
        #expect(liveMean != averaged && averaged.allSatisfy(\.isFinite))

        // The grid at the end (a row per class of the class-conditional model: 10 samples): de-normalised,
        // in [−1, 1], not all clipped to one value.
        let grid = try HDF5File.open(dir + "/run/samples/step-00000080.h5").read("images", as: Float.self).values
        #expect(grid.count == 10 * 192 && grid.allSatisfy { $0 >= -1 && $0 <= 1 })
        #expect(Set(grid).count > 100, "\(Set(grid).count) distinct values")
        let sample = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "3", "--class", "none", "--sampler-steps", "4", "--out", "s.png"],
                                          in: dir, timeout: 120)
        #expect(sample.status == 0, "\(sample.stderr)")
        let sampled = try HDF5File.open(dir + "/s.h5").read("images", as: Float.self).values
        #expect(sampled.count == 3 * 192 && sampled.allSatisfy { $0 >= -1 && $0 <= 1 } && sampled.contains { abs($0) < 1 })
        // The live weights' samples keep the data's brightness order (channel means 0.7, 0.45, 0.2 on [0, 1])
        // once de-normalised. (After 80 steps the EMA at 0.999 is still mostly the initial weights.)
        let live = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "3", "--class", "none", "--sampler-steps", "10",
                                         "--no-ema", "--out", "live.png"], in: dir, timeout: 120)
        #expect(live.status == 0, "\(live.stderr)")
        let liveSamples = try HDF5File.open(dir + "/live.h5").read("images", as: Float.self).values
        #expect(liveSamples.count == 3 * 192)
        var channelMeans = [Float](repeating: 0, count: 3)
        for n in 0..<3 { for k in 0..<3 { for i in 0..<64 { channelMeans[k] += liveSamples[(n * 3 + k) * 64 + i] / 192 } } }
        #expect(channelMeans[0] > channelMeans[1] && channelMeans[1] > channelMeans[2], "\(channelMeans)")

        let ddpm = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "2", "--sampler", "ddpm", "--out", "d.png"], in: dir)
        #expect(ddpm.status != 0 && ddpm.stderr.contains("--sampler ddpm") && ddpm.stderr.contains("continuous-cosine"), "\(ddpm.stderr)")
        try Self.checkPredict(checkpoint, images: images, in: dir)
    }

    /// `predict` on a continuous-schedule checkpoint: /t holds times in [0, 1]; the model sees the noise
    /// variance there. On x_t built from training images (normalised with the checkpoint's statistics) its
    /// ε̂ is closer to the true ε than predicting 0 is, and the same whatever the batch; integer /t and
    /// times outside [0, 1] are refused by name.
    static func checkPredict(_ checkpoint: String, images: [UInt8], in dir: String) throws {
        let stats = try HDF5File.open(checkpoint)
        let mean = try stats.read("data_normalization/mean", as: Double.self).values
        let variance = try stats.read("data_normalization/variance", as: Double.self).values
        let count = 16, width = 192
        var x = [Float](), noise = [Float](), times = [Double]()
        var state: UInt64 = 5
        func gaussian() -> Double {   // Box–Muller on an LCG: any fixed normal noise does
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u1 = Double((state >> 11) + 1) / Double(1 << 53)
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u2 = Double(state >> 11) / Double(1 << 53)
            return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        }
        for n in 0..<count {
            let t = (Double(n) + 0.5) / Double(count)
            let angle = acos(0.95) + t * (acos(0.02) - acos(0.95))
            times.append(t)
            for i in 0..<width {
                let c = i / 64, x0 = (Double(images[n * width + i]) / 255 - mean[c]) / variance[c].squareRoot()
                let e = gaussian()
                x.append(Float(cos(angle) * x0 + sin(angle) * e))
                noise.append(Float(e))
            }
        }
        func write(_ name: String, t: (HDF5File) throws -> Void) throws {
            let file = try HDF5File.create(dir + "/" + name)
            try file.write("x", x, shape: [count, 3, 8, 8])
            try t(file)
            try file.close()
        }
        try write("xt.h5") { try $0.write("t", times, shape: [count]) }
        let predict = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", "xt.h5", "--out", "eps.h5"], in: dir)
        #expect(predict.status == 0, "\(predict.stderr)")
        let eps = try HDF5File.open(dir + "/eps.h5").read("eps", as: Float.self).values
        #expect(eps.count == count * width && eps.allSatisfy(\.isFinite))
        let error = zip(eps, noise).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(eps.count)
        let zeroError = noise.map { Double(abs($0)) }.reduce(0, +) / Double(noise.count)
        #expect(error < 0.85 * zeroError, "MAE of ε̂ \(error), of 0 \(zeroError)")
        let one = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", "xt.h5", "--out", "eps1.h5", "--batch-size", "1"], in: dir)
        #expect(one.status == 0, "\(one.stderr)")
        #expect(try HDF5File.open(dir + "/eps1.h5").read("eps", as: Float.self).values == eps)

        try write("integer.h5") { try $0.write("t", [Int64](repeating: 5, count: count), shape: [count]) }
        let integer = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", "integer.h5", "--out", "e2.h5"], in: dir)
        #expect(integer.status != 0 && integer.stderr.contains("/t is int64") && integer.stderr.contains("[0, 1]"), "\(integer.stderr)")
        try write("late.h5") { try $0.write("t", times.map { $0 + 0.5 }, shape: [count]) }
        let late = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", "late.h5", "--out", "e3.h5"], in: dir)
        #expect(late.status != 0 && late.stderr.contains("outside the continuous-cosine schedule's times 0…1"), "\(late.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/e2.h5") && !FileManager.default.fileExists(atPath: dir + "/e3.h5"))
    }

    /// The per-channel statistics: bit-identical on one rank and on two, and the direct computation's.
    @Test func normalisationStatisticsAreTheSameOnOneAndTwoRanks() throws {
        let dir = try BinaryRunner.temporaryDirectory("ddim-keras-stats")
        let bytes = try Self.writeImages(dir + "/images.h5", count: 18)
        let common = ["train", "--recipe", "ddim-keras"] + Self.model + ["--data", "images.h5", "--batch-size", "4", "--steps", "1",
                      "--sample-count", "0", "--ema-rate", "0.99"]
        let one = try BinaryRunner.run(common + ["--out", "one"], in: dir, timeout: 120)
        #expect(one.status == 0, "\(one.stderr)")
        let two = try BinaryRunner.mpirun(2, common + ["--out", "two"], in: dir, timeout: 120)
        #expect(two.status == 0 && !two.timedOut, "\(two.stderr)")
        let a = try HDF5File.open(dir + "/one/ckpt-00000001.h5"), b = try HDF5File.open(dir + "/two/ckpt-00000001.h5")
        for name in ["data_normalization/mean", "data_normalization/variance"] {
            let x = try a.read(name, as: Double.self), y = try b.read(name, as: Double.self)
            #expect(x.shape == [3] && x.values.map(\.bitPattern) == y.values.map(\.bitPattern), "\(name): \(x.values) vs \(y.values)")
        }
        let mean = try a.read("data_normalization/mean", as: Double.self).values
        let variance = try a.read("data_normalization/variance", as: Double.self).values
        for c in 0..<3 {
            var values: [Double] = []
            for n in 0..<18 { for i in 0..<64 { values.append(Double(bytes[(n * 3 + c) * 64 + i]) / 255) } }
            let m: Double = values.reduce(0, +) / Double(values.count)
            let v: Double = values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count)
            #expect(abs(mean[c] - m) < 1e-12 && abs(variance[c] - v) < 1e-12, "channel \(c): \(mean[c]), \(variance[c]) vs \(m), \(v)")
        }
        #expect(mean[0] > 0.6 && mean[2] < 0.3)
        // An option beside the recipe overrides it, the rest stays the recipe's.
        let c = try Self.configuration(dir + "/one/ckpt-00000001.h5")
        #expect(c["emaRate"] as? Double == 0.99 && c["optimizer"] as? String == "adamw")
    }

    /// 4 steps on two ranks straight through, and stopped after 2 and resumed: the final checkpoints are
    /// bit-identical, AdamW's moments, the EMA of weights and running statistics and every rank's rows included.
    @Test func resumesBitExactlyOnTwoRanksWithAdamWAndTheEMAOfTheStatistics() throws {
        let dir = try BinaryRunner.temporaryDirectory("ddim-keras-resume")
        _ = try Self.writeImages(dir + "/images.h5", count: 16)
        let common = ["train", "--recipe", "ddim-keras"] + Self.model + ["--data", "images.h5", "--batch-size", "4", "--steps", "4",
                      "--checkpoint-every", "2", "--sample-count", "0", "--ema-rate", "0.9", "--seed", "3"]
        let (_, second) = try CheckpointComparison.straightAndResumed(common, in: dir)
        #expect(!second.stdout.contains("per-channel μ ± σ"), "statistics read, not recomputed: \(second.stdout)")

        let x = dir + "/straight/ckpt-00000004.h5", y = dir + "/resumed/ckpt-00000004.h5"
        let (differing, compared) = try CheckpointComparison.differingArrays(
            x, y, groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq", "ema", "ema_buffers", "ranks"])
        #expect(differing.isEmpty, "differ: \(differing)")
        #expect(compared > 100, "\(compared) arrays")
        let a = try HDF5File.open(x), b = try HDF5File.open(y)
        #expect(try a.read("ranks/rng", as: Int64.self).values == b.read("ranks/rng", as: Int64.self).values)
        #expect(try a.read("ranks/ema_buffers", as: Float.self).shape.first == 2)
        #expect(try a.read("data_normalization/variance", as: Double.self).values == b.read("data_normalization/variance", as: Double.self).values)
        // The two ranks' EMAs of their statistics differ (each averages its own), and the run moved them.
        let rows = try a.read("ranks/ema_buffers", as: Float.self)
        let width = rows.shape[1]
        #expect(Array(rows.values[0..<width]) != Array(rows.values[width...]))
        let early = try HDF5File.open(dir + "/straight/ckpt-00000002.h5")
        #expect(try early.read("ema_buffers/down1.model.0.conv1.1.running_var", as: Float.self).values
                != a.read("ema_buffers/down1.model.0.conv1.1.running_var", as: Float.self).values)
    }

    @Test func combinationsThatCannotTrainAreRefusedByName() throws {
        let cases: [([String], String)] = [
            (["--schedule", "continuous-cosine", "--sampler", "ddpm"], "--sampler ddpm"),
            (["--recipe", "ddim-keras", "--sampler", "ddpm"], "--sampler ddpm"),
            (["--schedule", "continuous-cosine", "--timesteps", "500"], "--timesteps 500"),
            (["--schedule", "continuous-cosine", "--eta", "0.5"], "--eta"),
            (["--weight-decay", "0.1"], "--optimizer adamw"),
            (["--optimizer", "adamw", "--weight-decay", "-1"], "--weight-decay must not be negative"),
            (["--adam-epsilon", "0"], "--adam-epsilon must be positive"),
            (["--ema-buffers"], "--ema-buffers needs --ema-rate"),
            (["--loss", "l1"], "--loss"),
            (["--recipe", "keras"], "--recipe"),
        ]
        for (arguments, expected) in cases {
            let r = try BinaryRunner.run(["train", "--model", "mlp", "--steps", "1"] + arguments)
            #expect(r.status != 0, "\(arguments)")
            #expect(r.stderr.contains(expected), "\(arguments): \(r.stderr)")
        }
        // Points have no image channels to normalise.
        let dir = try BinaryRunner.temporaryDirectory("ddim-keras-points")
        let file = try HDF5File.create(dir + "/points.h5")
        let coordinates: [Float] = (0..<64).map { (i: Int) -> Float in Float(i % 7) / 7 }
        try file.write("images", coordinates, shape: [32, 2])
        try file.close()
        let points = try BinaryRunner.run(["train", "--model", "mlp", "--data", "points.h5", "--steps", "1", "--batch-size", "4",
                                           "--normalize-data", "--out", "run"], in: dir)
        #expect(points.status != 0 && points.stderr.contains("--normalize-data"), "\(points.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run"), "nothing written")
    }

    /// The MLP on points takes the continuous schedule and the recipe's optimizer, without normalisation.
    @Test func theMLPTrainsOnPointsWithTheContinuousScheduleAndSamples() throws {
        let dir = try BinaryRunner.temporaryDirectory("ddim-keras-mlp")
        let file = try HDF5File.create(dir + "/points.h5")
        let coordinates: [Float] = (0..<256).map { (i: Int) -> Float in Float((i * 13) % 17) / 17 - 0.5 }
        try file.write("images", coordinates, shape: [128, 2])
        try file.close()
        let r = try BinaryRunner.run(["train", "--recipe", "ddim-keras", "--no-normalize-data", "--model", "mlp", "--data", "points.h5",
                                      "--batch-size", "32", "--steps", "30", "--sample-count", "8", "--sampler-steps", "10", "--out", "run"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let samples = try HDF5File.open(dir + "/run/samples/step-00000030.h5").read("images", as: Float.self).values
        #expect(samples.count == 16 && samples.allSatisfy(\.isFinite))
        let c = try Self.configuration(dir + "/run/ckpt-00000030.h5")
        #expect(c["normalizeData"] as? Bool == false && c["schedule"] as? String == "continuous-cosine")
    }

    /// The seed's own pairing: the DDIM residual U-Net on the lensing set (`prepare --source lenses`), small
    /// widths at 16×16, trained with the recipe on two ranks: the MAE falls and the live weights sample
    /// images in the data's range.
    @Test func theRecipeTrainsTheDDIMUNetOnTheLensingSet() throws {
        let dir = try BinaryRunner.temporaryDirectory("ddim-lenses")
        let prepare = try BinaryRunner.run(["prepare", "--source", "lenses", "--count", "256", "--size", "16", "--out", "lenses.h5"],
                                           in: dir, timeout: 120)
        #expect(prepare.status == 0, "\(prepare.stderr)")
        let train = try BinaryRunner.mpirun(2, ["train", "--recipe", "ddim-keras", "--model", "ddim-unet", "--channels", "8,16,24",
                                                       "--block-depth", "1", "--data", "lenses.h5", "--steps", "60", "--log-every", "1",
                                                       "--sample-count", "0", "--out", "run"], in: dir, timeout: 300)
        #expect(train.status == 0, "\(train.stderr)")
        let losses = try Self.losses(dir + "/run")
        #expect(losses.count == 60)
        let first = losses.prefix(10).reduce(0, +) / 10, last = losses.suffix(10).reduce(0, +) / 10
        #expect(last < 0.8 * first, "MAE from \(first) to \(last)")
        let sample = try BinaryRunner.run(["sample", "--checkpoint", "run/ckpt-00000060.h5", "--count", "4", "--no-ema",
                                           "--sampler-steps", "5", "--out", "s.png"], in: dir, timeout: 120)
        #expect(sample.status == 0, "\(sample.stderr)")
        let images = try HDF5File.open(dir + "/s.h5").read("images", as: Float.self).values
        #expect(images.count == 4 * 256 && images.allSatisfy { $0 >= -1 && $0 <= 1 } && Set(images).count > 50)
    }
}
