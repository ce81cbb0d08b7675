import Foundation
import IO
import Testing

/// `--schedule`, `--timesteps` and `--ddpm-variance` reach the checkpoint, and every command that
/// rebuilds the schedule from it (sample, predict) uses the run's.
@Suite struct NoiseScheduleOptionTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    static func configuration(_ checkpoint: String) throws -> [String: Any] {
        let json = try #require(try HDF5File.open(checkpoint).attribute("configuration"))
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test func theCourseScheduleTrainsAndItsCheckpointSamplesAndPredicts() throws {
        let dir = try BinaryRunner.temporaryDirectory("course-schedule")
        try DistributedTrainingTests.writeImages(dir + "/images.h5", count: 16)
        // The grid at the end samples with DDPM over the run's 50 steps, with the posterior variance.
        let train = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--data", "images.h5", "--batch-size", "4", "--steps", "2",
                                          "--schedule", "course", "--timesteps", "50", "--sample-count", "2", "--sampler", "ddpm",
                                          "--ddpm-variance", "posterior", "--out", "run"], in: dir, timeout: 120)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/run/samples/step-00000002.png"))
        let checkpoint = dir + "/run/ckpt-00000002.h5"
        let saved = try Self.configuration(checkpoint)
        #expect(saved["schedule"] as? String == "course")
        #expect(saved["timesteps"] as? Int == 50)
        #expect(saved["ddpmVariance"] as? String == "posterior")

        let ddpm = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "2", "--sampler", "ddpm", "--trajectory",
                                         "--out", "ddpm.png"], in: dir, timeout: 120)
        #expect(ddpm.status == 0, "\(ddpm.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/ddpm-trajectory.png"))
        let ddim = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "2", "--sampler-steps", "100",
                                         "--out", "ddim.png"], in: dir, timeout: 120)
        #expect(ddim.status == 0, "\(ddim.stderr)")
        let ddpmImages = try HDF5File.open(dir + "/ddpm.h5").read("images", as: Float.self).values
        #expect(ddpmImages.count == 2 * 64 && ddpmImages.allSatisfy { $0.isFinite && abs($0) <= 1 })

        // The course's timesteps are 1…T: T is valid, 0 (the clean image) is not.
        let input = try HDF5File.create(dir + "/x.h5")
        try input.write("x", [Float](repeating: 0.1, count: 2 * 64), shape: [2, 1, 8, 8])
        try input.write("t", [Int64](arrayLiteral: 1, 50), shape: [2])
        try input.close()
        let predict = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", "x.h5", "--out", "eps.h5"], in: dir)
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(try HDF5File.open(dir + "/eps.h5").shape(of: "eps") == [2, 1, 8, 8])
        let clean = try HDF5File.create(dir + "/x0.h5")
        try clean.write("x", [Float](repeating: 0.1, count: 64), shape: [1, 1, 8, 8])
        try clean.write("t", [Int64](arrayLiteral: 0), shape: [1])
        try clean.close()
        let refused = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", "x0.h5", "--out", "eps0.h5"], in: dir)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("timestep 0, outside the checkpoint's schedule's 1…50"), "\(refused.stderr)")
    }

    @Test func tooFewTimestepsAreRefusedNamingTheOption() throws {
        for value in ["1", "10001"] {
            let r = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--timesteps", value, "--steps", "1"])
            #expect(r.status != 0)
            #expect(r.stderr.contains("--timesteps must be in 2…10000, got \(value)"), "\(r.stderr)")
        }
    }

    @Test func anUnknownScheduleOrVarianceIsRefusedNamingTheOption() throws {
        let schedule = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--schedule", "quadratic", "--steps", "1"])
        #expect(schedule.status != 0)
        #expect(schedule.stderr.contains("--schedule") && schedule.stderr.contains("quadratic"), "\(schedule.stderr)")
        #expect(schedule.stderr.contains("needle-linear"), "the accepted values are listed: \(schedule.stderr)")
        let variance = try BinaryRunner.run(["sample", "--checkpoint", "none.h5", "--ddpm-variance", "wide"])
        #expect(variance.status != 0)
        #expect(variance.stderr.contains("--ddpm-variance") && variance.stderr.contains("wide"), "\(variance.stderr)")
    }

    @Test func trainHelpDescribesTheSchedulesAndTheVariances() throws {
        let r = try BinaryRunner.run(["train", "--help"])
        #expect(r.status == 0, "\(r.stderr)")
        for text in ["--timesteps", "course", "needle-linear", "--ddpm-variance", "posterior"] {
            #expect(r.stdout.contains(text), "\(text) missing from train --help")
        }
    }
}
