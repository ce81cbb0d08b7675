import Foundation
import IO
import Testing

/// Checkpoints written by older builds keep loading. `Tests/Fixtures/checkpoint-v1-mlp.h5` is step 4
/// of a run by main at 0bac94c (format version 1), made in a directory holding the moons data as
/// `disttrain prepare --source two-moons --count 256 --seed 0 --out data/moons.h5`, by the `straight`
/// arguments below with `--out run`, on OpenBLAS' Prescott kernels (0bac94c left Debian's OpenBLAS to
/// its own choice, which was Prescott on that machine): to continue its arithmetic bit for bit, every run
/// here pins them (`kernels`); disttrain leaves a user's OPENBLAS_CORETYPE alone.
@Suite(.serialized) struct CheckpointCompatibilityTests {
    static let kernels = ["OPENBLAS_CORETYPE": "Prescott"]
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/checkpoint-v1-mlp.h5").path
    static let straight = ["train", "--model", "mlp", "--data", "data/moons.h5", "--batch-size", "16", "--steps", "8",
                           "--checkpoint-every", "4", "--keep", "5", "--sample-count", "0", "--seed", "7"]

    /// A directory with the fixture's data, the fixture as `run/ckpt-00000004.h5`, and the same run
    /// trained straight to step 8 in `straight/`.
    static func prepare(_ name: String) throws -> String {
        let dir = try BinaryRunner.temporaryDirectory(name)
        let prepared = try BinaryRunner.run(["prepare", "--source", "two-moons", "--count", "256", "--seed", "0", "--out", "data/moons.h5"], in: dir)
        #expect(prepared.status == 0, "\(prepared.stderr)")
        try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture, toPath: dir + "/run/ckpt-00000004.h5")
        let straight = try BinaryRunner.run(Self.straight + ["--out", "straight"], in: dir, timeout: 120, environment: kernels)
        #expect(straight.status == 0, "\(straight.stderr)")
        return dir
    }

    static func expectBitIdentical(_ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (differing, compared) = try CheckpointComparison.differingArrays(a, b, groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq"])
        #expect(differing.isEmpty, "arrays that differ between \(a) and \(b): \(differing)", sourceLocation: sourceLocation)
        #expect(compared == 18, "compared \(compared) arrays", sourceLocation: sourceLocation)
        let x = try HDF5File.open(a), y = try HDF5File.open(b)
        for name in ["ranks/rng", "ranks/data", "state/step", "optimizer/step"] {
            #expect(try x.read(name, as: Int64.self).values == y.read(name, as: Int64.self).values, "\(name)", sourceLocation: sourceLocation)
        }
        #expect(try x.read("state/learning_rate", as: Double.self).values == y.read("state/learning_rate", as: Double.self).values,
                sourceLocation: sourceLocation)
    }

    @Test func versionOneCheckpointOfMainResumesToTheSameWeightsAsAStraightRun() throws {
        #expect(try HDF5File.open(Self.fixture).attribute("format_version") == "1")
        let dir = try Self.prepare("v1-resume")
        // Neither --model nor --data: a resumed run continues with the checkpoint's.
        let resumed = try BinaryRunner.run(["train", "--out", "run", "--resume"], in: dir, timeout: 120, environment: Self.kernels)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resumed from run/ckpt-00000004.h5 at step 4"), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("does not record its data"), "\(resumed.stdout)")
        try Self.expectBitIdentical(dir + "/straight/ckpt-00000008.h5", dir + "/run/ckpt-00000008.h5")
        let written = try HDF5File.open(dir + "/run/ckpt-00000008.h5")
        #expect(written.attribute("format_version") == "2")
        #expect(written.attribute("data_fingerprint") == (try HDF5File.open(dir + "/straight/ckpt-00000008.h5").attribute("data_fingerprint")))
    }

    /// A configuration from an older build (without fields added since) and from a newer one (with a
    /// field this build does not know) both decode: missing fields take a fresh run's defaults.
    @Test func configurationWithMissingAndUnknownFieldsDecodesWithDefaults() throws {
        let dir = try Self.prepare("v1-old-configuration")
        let checkpoint = try HDF5File.open(dir + "/run/ckpt-00000004.h5", writable: true)
        let json = try #require(checkpoint.attribute("configuration"))
        var fields = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        for name in ["collectiveTimeout", "maxNonfiniteSteps", "logEvery", "warmupSteps"] {
            #expect(fields.removeValue(forKey: name) != nil, "the fixture has no \(name)")
        }
        for name in ["timesteps", "ddpmVariance"] { #expect(fields[name] == nil, "the fixture predates \(name)") }
        fields["someFutureOption"] = 3
        try checkpoint.setAttribute("configuration", String(decoding: try JSONSerialization.data(withJSONObject: fields), as: UTF8.self))
        try checkpoint.close()

        let resumed = try BinaryRunner.run(["train", "--out", "run", "--resume"], in: dir, timeout: 120, environment: Self.kernels)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resumed from run/ckpt-00000004.h5 at step 4"), "\(resumed.stdout)")
        try Self.expectBitIdentical(dir + "/straight/ckpt-00000008.h5", dir + "/run/ckpt-00000008.h5")
        let saved = try #require(try HDF5File.open(dir + "/run/ckpt-00000008.h5").attribute("configuration"))
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(saved.utf8)) as? [String: Any])
        #expect(decoded["logEvery"] as? Int == 10 && decoded["warmupSteps"] as? Int == 0, "\(saved)")
        // The noise schedule and DDPM variance of every run before they were options.
        #expect(decoded["schedule"] as? String == "linear", "\(saved)")
        #expect(decoded["timesteps"] as? Int == 1000, "\(saved)")
        #expect(decoded["ddpmVariance"] as? String == "beta", "\(saved)")
        #expect(decoded["someFutureOption"] == nil, "\(saved)")
    }

    /// A name this build does not know is reported as such (and the checkpoint not used), never a crash.
    @Test func unknownScheduleInTheConfigurationIsReportedByName() throws {
        let dir = try Self.prepare("v1-unknown-schedule")
        let checkpoint = try HDF5File.open(dir + "/run/ckpt-00000004.h5", writable: true)
        let json = try #require(checkpoint.attribute("configuration"))
        try checkpoint.setAttribute("configuration", json.replacingOccurrences(of: "\"schedule\":\"linear\"", with: "\"schedule\":\"quadratic\""))
        try checkpoint.close()
        let before = BadInputTests.snapshot(dir + "/run")
        let r = try BinaryRunner.run(["train", "--out", "run", "--resume", "--require-checkpoint"], in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(r, names: ["--require-checkpoint"], problem: ["no usable checkpoint"], out: dir + "/run", before: before)
        #expect(r.stdout.contains("ckpt-00000004.h5: configuration attribute does not describe a run: schedule: unknown schedule 'quadratic'"), "\(r.stdout)")
    }
}
