import Foundation
import IO
import Testing

/// `disttrain classifier`: a small CNN classifier trained by disttrain itself and written as a feature
/// network file (Sources/DistTrain/FeatureNetworkFile.swift), alone and under `mpirun -np 2`, and its
/// refusals of bad input.
@Suite(.serialized) struct ClassifierCommandTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// `count` 1×8×8 uint8 images of three classes a small network tells apart at once: bright top half,
    /// bright bottom half, and uniform gray, with noise; the labels cycle 0, 1, 2.
    static func writeLabelled(_ path: String, count: Int = 120, labels: Bool = true, split: String? = nil) throws {
        var state: UInt64 = 11
        var pixels: [UInt8] = []
        for n in 0..<count {
            for i in 0..<64 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let noise = Int(state >> 59) - 16
                let base = n % 3 == 2 ? 128 : (i < 32) == (n % 3 == 0) ? 220 : 30
                pixels.append(UInt8(max(0, min(255, base + noise))))
            }
        }
        let file = try HDF5File.create(path)
        try file.write("images", pixels, shape: [count, 1, 8, 8])
        if labels { try file.write("labels", (0..<count).map { Int64($0 % 3) }, shape: [count]) }
        if let split { try file.setAttribute("split", split) }
        try file.close()
    }

    /// A run of the classifier small enough to take a second or two.
    static func classifier(data: String = "labelled.h5", out: String = "fn/net.h5", steps: String = "30", batch: String = "8") -> [String] {
        ["classifier", "--data", data, "--out", out, "--steps", steps, "--batch-size", batch, "--stages", "4/8", "--hidden", "8",
         "--lr", "0.01", "--seed", "2", "--log-every", "10"]
    }

    static func directory(_ name: String) throws -> String {
        let dir = try BinaryRunner.temporaryDirectory(name)
        try FileManager.default.createDirectory(atPath: dir + "/fn", withIntermediateDirectories: true)
        return dir
    }

    @Test func trainsAndWritesTheFeatureNetworkWithItsMetadata() throws {
        let dir = try Self.directory("classifier")
        try Self.writeLabelled(dir + "/labelled.h5")
        let r = try BinaryRunner.run(Self.classifier(), in: dir, timeout: 120)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)\n\(r.stdout)")
        #expect(r.stdout.contains("held-out accuracy") && r.stdout.contains("12 of the 120 images of --data"), "\(r.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/fn") == ["net.h5"], "no temporary file left")
        let f = try HDF5File.open(dir + "/fn/net.h5")
        let expected = ["format": "disttrain-feature-network", "format_version": "1", "architecture": "cnn-classifier",
                        "stages": "4/8", "hidden": "8", "input_shape": "1,8,8", "classes": "3", "feature_layer": "fc1",
                        "feature_dimension": "8", "heldout_count": "12", "data_count": "120", "data_sample_shape": "1,8,8",
                        "data_dtype": "uint8"]
        for (name, value) in expected { #expect(f.attribute(name) == value, "\(name): \(f.attribute(name) ?? "missing")") }
        #expect(f.attribute("data_path") == URL(fileURLWithPath: dir + "/labelled.h5").resolvingSymlinksInPath().path)
        #expect(f.attribute("data_fingerprint")?.count == 16)
        #expect(f.attribute("heldout")?.contains("prepare --heldout 0.1 --seed 2") == true)
        let accuracy = try #require(Double(f.attribute("heldout_accuracy") ?? ""))
        #expect(accuracy >= 0.9, "three classes this easy should be told apart: held-out accuracy \(accuracy)")
        let training = try #require(f.attribute("training").flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(training["steps"] as? Int == 30 && training["ranks"] as? Int == 1 && training["batch_per_rank"] as? Int == 8)
        // The weights by state_dict name, BatchNorm running statistics, and the loss curve.
        #expect(try f.shape(of: "parameters/stage1.conv1.weight") == [4, 1, 3, 3])
        #expect(try f.shape(of: "parameters/fc1.weight") == [8, 8])
        #expect(try f.shape(of: "parameters/fc2.weight") == [3, 8])
        #expect(try f.members(of: "buffers") == ["stage1.bn1.running_mean", "stage1.bn1.running_var", "stage2.bn1.running_mean", "stage2.bn1.running_var"])
        #expect(try f.read("buffers/stage1.bn1.running_var", as: Float.self).values.allSatisfy { $0 > 0 && $0 != 1 }, "trained statistics")
        let losses = try f.read("training/loss", as: Double.self).values
        #expect(losses.count == 30 && losses.last! < losses.first!)
        // `inspect` loads it as the evaluator does.
        let inspect = try BinaryRunner.run(["inspect", dir + "/fn/net.h5"])
        #expect(inspect.status == 0 && inspect.stdout.contains("feature network") && inspect.stdout.contains("fc1, 8 dimensions"), "\(inspect.stdout)\(inspect.stderr)")
    }

    @Test func trainsOnTwoRanksAndMeasuresOnAGivenHeldOutFile() throws {
        let dir = try Self.directory("classifier-np2")
        try Self.writeLabelled(dir + "/labelled.h5")
        try Self.writeLabelled(dir + "/test.h5", count: 30)
        let r = try BinaryRunner.mpirun(2, Self.classifier(batch: "4") + ["--heldout-data", "test.h5", "--flip"], in: dir, timeout: 120)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)\n\(r.stdout)")
        #expect(r.stdout.contains("2 rank(s) × batch 4 = 8 per step"), "\(r.stdout)")
        let f = try HDF5File.open(dir + "/fn/net.h5")
        #expect(f.attribute("heldout_count") == "30" && f.attribute("heldout_path")?.hasSuffix("/test.h5") == true)
        #expect(try #require(Double(f.attribute("heldout_accuracy") ?? "")) >= 0.9)
        let training = try #require(f.attribute("training").flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(training["ranks"] as? Int == 2 && training["global_batch"] as? Int == 8 && training["train_count"] as? Int == 120)
        #expect(training["flip"] as? Bool == true && r.stdout.contains("random horizontal flips"))
    }

    /// prepare --heldout writes X.h5 (split "train: …") and X-heldout.h5 (split "heldout: …"); the
    /// classifier measures on the second.
    @Test func usesTheHeldOutFilePrepareWroteBesideTheData() throws {
        let dir = try Self.directory("classifier-split")
        try Self.writeLabelled(dir + "/set.h5", split: "train: 120 of 150 samples")
        try Self.writeLabelled(dir + "/set-heldout.h5", count: 30, split: "heldout: 30 of 150 samples")
        let r = try BinaryRunner.run(Self.classifier(data: "set.h5", steps: "5"), in: dir, timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("set-heldout.h5"), "\(r.stdout)")
        let f = try HDF5File.open(dir + "/fn/net.h5")
        #expect(f.attribute("heldout_count") == "30" && f.attribute("heldout_path")?.hasSuffix("/set-heldout.h5") == true)
    }

    // MARK: - Bad input

    @Test func aDatasetWithoutLabelsIsRefusedOnEveryRankAndNothingIsWritten() throws {
        let dir = try Self.directory("classifier-nolabels")
        try Self.writeLabelled(dir + "/plain.h5", labels: false)
        let r = try BinaryRunner.mpirun(2, Self.classifier(data: "plain.h5"), in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(r, names: ["plain.h5", "has no /labels"],
                                         problem: ["the classifier needs a labelled dataset; for unlabelled data use a feature network trained on another labelled set"],
                                         out: dir + "/fn")
    }

    @Test func aMissingDataFileIsNamed() throws {
        let dir = try Self.directory("classifier-missing")
        let r = try BinaryRunner.mpirun(2, Self.classifier(data: "absent.h5"), in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(r, names: ["absent.h5"], problem: ["missing"], out: dir + "/fn")
    }

    @Test func impossibleOptionsAreRefusedNamingThem() throws {
        let dir = try Self.directory("classifier-options")
        try Self.writeLabelled(dir + "/labelled.h5")
        let cases: [(extra: [String], names: [String], problem: String)] = [
            (["--epochs", "2"], ["--steps", "--epochs"], "give one of them"),
            (["--heldout-fraction", "1.5"], ["--heldout-fraction", "1.5"], "must be in (0, 1)"),
            (["--stages", "4,/8"], ["--stages", "4,/8"], "positive widths"),
        ]
        for c in cases {
            let r = try BinaryRunner.run(Self.classifier() + c.extra, in: dir, timeout: 60)
            BadInputTests.expectCleanFailure(r, names: c.names, problem: [c.problem], out: dir + "/fn")
        }
        // Found only once the data are read: under mpirun, so that a rank left waiting would show.
        let tooLarge = try BinaryRunner.mpirun(2, Self.classifier(batch: "64"), in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(tooLarge, names: ["labelled.h5", "--batch-size 64"], problem: ["fewer than"], out: dir + "/fn")
        let nowhere = try BinaryRunner.mpirun(2, Self.classifier(out: "absent/net.h5"), in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(nowhere, names: ["absent/net.h5"], problem: ["does not exist"], out: dir + "/fn")
        let sideways = try BinaryRunner.run(Self.classifier() + ["--heldout-data", "plain.h5"], in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(sideways, names: ["plain.h5"], problem: ["missing"], out: dir + "/fn")
    }
}
