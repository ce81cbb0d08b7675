import Foundation
import IO
import Testing

/// Bad input (SPEC: "a clear message naming the file, dataset or option, a non-zero exit, and nothing
/// lost"). Every case runs the real binary, most under `mpirun -np 2` so that a rank left waiting in a
/// collective shows up as a timeout, and checks: the exit status, one message naming the culprit and
/// saying what is wrong, no crash report, and nothing written under --out (above all no checkpoint).
@Suite(.serialized) struct BadInputTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// A short cnn run on `images.h5` writing to `run`; cases override pieces of it.
    static func training(data: String = "images.h5", model: String = "cnn", out: String = "run", batch: String = "4") -> [String] {
        ["train", "--model", model, "--data", data, "--batch-size", batch, "--steps", "1", "--sample-count", "0", "--seed", "3", "--out", out]
    }

    // MARK: - Helpers

    /// Every file and directory under `path` (relative), with the contents of the files; empty when it does not exist.
    static func snapshot(_ path: String) -> [String: Data] {
        var entries: [String: Data] = [:]
        guard let walker = FileManager.default.enumerator(atPath: path) else { return entries }
        while let name = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &isDirectory)
            entries[name] = isDirectory.boolValue ? Data("<dir>".utf8) : (FileManager.default.contents(atPath: path + "/" + name) ?? Data())
        }
        return entries
    }

    /// Checkpoints, finished or partial, anywhere under `path`.
    static func checkpoints(under path: String) -> [String] {
        snapshot(path).keys.filter { ($0 as NSString).lastPathComponent.hasPrefix("ckpt-") || ($0 as NSString).lastPathComponent.hasPrefix(".ckpt-") }.sorted()
    }

    /// The failure contract: no hang, non-zero status, no Swift crash report, a message (on stderr or
    /// stdout) that contains every one of `names` and at least one of `problem` (case-insensitive), and
    /// `out` exactly as it was before the run (`before`: nil when it did not exist).
    static func expectCleanFailure(_ r: BinaryRunner.Result, names: [String], problem: [String], out: String,
                                   before: [String: Data] = [:], sourceLocation: SourceLocation = #_sourceLocation) {
        let output = r.stderr + "\n" + r.stdout
        let shown = "status \(r.status)\n--- stderr:\n\(r.stderr.prefix(3000))\n--- stdout:\n\(r.stdout.prefix(1500))"
        #expect(!r.timedOut, "the job hung (killed by the test's time limit)\n\(shown)", sourceLocation: sourceLocation)
        #expect(r.status != 0, "exit status 0 for bad input\n\(shown)", sourceLocation: sourceLocation)
        #expect(!output.contains("Fatal error") && !output.contains("Program crashed") && !output.contains("Backtrac"),
                "a Swift crash instead of a message\n\(shown)", sourceLocation: sourceLocation)
        let messages = output.split(separator: "\n").filter { $0.contains("error") || $0.contains("Error") }
        let named = messages.contains { line in names.allSatisfy { line.contains($0) } && problem.contains { line.lowercased().contains($0.lowercased()) } }
        #expect(named, "no error line names \(names) and says one of \(problem)\n\(shown)", sourceLocation: sourceLocation)
        let after = snapshot(out)
        #expect(checkpoints(under: out).filter { before[$0] == nil }.isEmpty, "a checkpoint was written for bad input: \(checkpoints(under: out))", sourceLocation: sourceLocation)
        let changed = after.keys.filter { after[$0] != before[$0] }.sorted()
        #expect(after == before, "--out \(out) changed: before \(before.keys.sorted()), after \(after.keys.sorted()), changed \(changed)",
                sourceLocation: sourceLocation)
    }

    /// `/images` with `values` of `shape`.
    static func writeDataset<T: HDF5Element>(_ path: String, _ values: [T], shape: [Int], labels: [Int64]? = nil) throws {
        let file = try HDF5File.create(path)
        try file.write("images", values, shape: shape)
        if let labels { try file.write("labels", labels, shape: [labels.count]) }
        try file.close()
    }

    /// Random uniform floats in [−1, 1].
    static func floats(_ count: Int, seed: UInt64 = 5) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }

    /// A uint8 `/images` whose dataspace claims `shape` (first dimension `count`) while the file holds no
    /// data at all: written as [0, rest…] with nothing stored (HDF5 allocates contiguous storage lazily),
    /// then the 8-byte first dimension is patched in the dataspace message (current and maximum dims).
    static func writeClaimedShape(_ path: String, count: Int, rest: [Int]) throws {
        let file = try HDF5File.create(path)
        let none = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        defer { none.deallocate() }
        try file.write("images", UnsafeBufferPointer(start: none, count: 0), shape: [0] + rest)
        try file.close()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func littleEndian(_ v: Int) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: UInt64(v) >> (8 * UInt64($0))) } }
        let pattern = ([0] + rest).flatMap(littleEndian)
        var patched = 0, i = 0
        while i + pattern.count <= bytes.count {
            if Array(bytes[i..<(i + pattern.count)]) == pattern {
                bytes.replaceSubrange(i..<(i + 8), with: littleEndian(count))
                patched += 1
                i += pattern.count
            } else { i += 1 }
        }
        guard patched > 0 else { throw HDF5Error("\(path): dataspace of [0, \(rest)] not found to patch") }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let check = try HDF5File.open(path)
        guard try check.shape(of: "images") == [count] + rest else { throw HDF5Error("\(path): patched shape reads back as \(try check.shape(of: "images"))") }
    }

    /// Runs `mpirun -np ranks disttrain …` with the address space of every process limited to `gigabytes`,
    /// so that a giant allocation fails at once instead of exhausting the machine.
    static func mpirunLimited(_ ranks: Int, _ arguments: [String], in dir: String, gigabytes: Int, timeout: Double) throws -> BinaryRunner.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -v \(gigabytes * 1_048_576) && exec \"$@\"", "sh",
                             "/usr/bin/mpirun", "-np", String(ranks), BinaryRunner.binary] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in BinaryRunner.mpiEnvironment { environment[k] = v }
        process.environment = environment
        let outPath = dir + "/.limited-stdout", errPath = dir + "/.limited-stderr"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try #require(FileHandle(forWritingAtPath: outPath)), err = try #require(FileHandle(forWritingAtPath: errPath))
        process.standardOutput = out; process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        let timedOut = process.isRunning
        if timedOut { process.terminate(); usleep(500_000); kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try out.close(); try err.close()
        defer { unlink(outPath); unlink(errPath) }
        return BinaryRunner.Result(status: process.terminationStatus,
                                   stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                                   stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "", timedOut: timedOut)
    }

    /// A finished 1-step cnn run on 32 1×8×8 images by `ranks` ranks, in `dir/run`; returns the checkpoint's path.
    static func cnnCheckpoint(in dir: String, ranks: Int = 2) throws -> String {
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let r = try BinaryRunner.mpirun(ranks, training(), in: dir, timeout: 120)
        #expect(r.status == 0 && !r.timedOut, "could not make a checkpoint to test with: \(r.stderr)")
        let path = dir + "/run/ckpt-00000001.h5"
        #expect(FileManager.default.fileExists(atPath: path), "no checkpoint at \(path): \(r.stdout)")
        return path
    }

    // MARK: - The data file

    @Test func missingDataFileIsNamedAndNothingIsWritten() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-missing")
        let r = try BinaryRunner.mpirun(2, Self.training(data: "absent.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["absent.h5"], problem: ["missing", "not found", "no such file", "does not exist"], out: dir + "/run")
    }

    @Test func fileThatIsNotHDF5IsNamedAndNothingIsWritten() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-text")
        try Data("pixels,label\n0,1\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.h5"))
        let r = try BinaryRunner.mpirun(2, Self.training(data: "notes.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["notes.h5"], problem: ["not an HDF5"], out: dir + "/run")
    }

    @Test func fileWithoutAnImagesDatasetIsNamedAndNothingIsWritten() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-noimages")
        let file = try HDF5File.create(dir + "/pictures.h5")
        try file.write("pictures", [UInt8](repeating: 9, count: 32 * 64), shape: [32, 1, 8, 8])
        try file.close()
        let r = try BinaryRunner.mpirun(2, Self.training(data: "pictures.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["pictures.h5", "/images"], problem: ["no /images"], out: dir + "/run")
    }

    @Test(arguments: [[32, 8, 8], [32, 1, 1, 8, 8], [2048]])
    func imagesWithTheWrongNumberOfDimensionsAreRejected(shape: [Int]) throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-rank")
        try Self.writeDataset(dir + "/flat.h5", [UInt8](repeating: 128, count: shape.reduce(1, *)), shape: shape)
        let r = try BinaryRunner.mpirun(2, Self.training(data: "flat.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["flat.h5", "/images"], problem: ["dimensions", "needs images"], out: dir + "/run")
    }

    @Test func int64AndFloat64ImagesAreRejectedNamingTheType() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-dtype")
        try Self.writeDataset(dir + "/wide.h5", [Int64](repeating: 200, count: 32 * 64), shape: [32, 1, 8, 8])
        try Self.writeDataset(dir + "/double.h5", Self.floats(32 * 64).map(Double.init), shape: [32, 1, 8, 8])
        let wide = try BinaryRunner.mpirun(2, Self.training(data: "wide.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(wide, names: ["wide.h5", "/images", "int64"], problem: ["supported"], out: dir + "/run")
        let double = try BinaryRunner.mpirun(2, Self.training(data: "double.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(double, names: ["double.h5", "/images", "float64"], problem: ["supported"], out: dir + "/run")
    }

    @Test func imageSidesNotDivisibleByTheModelsPoolingAreRejected() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-sides")
        // cnn pools twice (sides divisible by 4), cnn-large three times (by 8): 12×12 passes one, not the other.
        try Self.writeDataset(dir + "/six.h5", [UInt8](repeating: 7, count: 32 * 36), shape: [32, 1, 6, 6])
        try Self.writeDataset(dir + "/twelve.h5", [UInt8](repeating: 7, count: 32 * 144), shape: [32, 1, 12, 12])
        let cnn = try BinaryRunner.mpirun(2, Self.training(data: "six.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(cnn, names: ["six.h5", "6×6"], problem: ["divisible by 4"], out: dir + "/run")
        let large = try BinaryRunner.mpirun(2, Self.training(data: "twelve.h5", model: "cnn-large"), in: dir, timeout: 60)
        Self.expectCleanFailure(large, names: ["twelve.h5", "12×12"], problem: ["divisible by 8"], out: dir + "/run")
    }

    @Test func emptyImagesDatasetIsRejected() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-empty")
        let file = try HDF5File.create(dir + "/empty.h5")
        let none = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        defer { none.deallocate() }
        try file.write("images", UnsafeBufferPointer(start: none, count: 0), shape: [0, 1, 8, 8])
        try file.close()
        let r = try BinaryRunner.mpirun(2, Self.training(data: "empty.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["empty.h5", "/images"], problem: ["no images"], out: dir + "/run")
    }

    @Test func fewerImagesThanRanksTimesBatchAreRejected() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-few")
        try DistributedTrainingTests.writeImages(dir + "/few.h5", count: 6)
        let r = try BinaryRunner.mpirun(2, Self.training(data: "few.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["few.h5", "6 images", "batch"], problem: ["fewer than"], out: dir + "/run")
    }

    /// The NaN is in the last rank's shard (images 16…31 of 32), so rank 0 reads a clean shard and must
    /// still leave nothing behind when rank 1 fails.
    @Test func nonFiniteFloatPixelOnTheLastRankIsRejectedAndNothingIsWritten() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-nan")
        var values = Self.floats(32 * 64)
        values[20 * 64 + 27] = .nan
        try Self.writeDataset(dir + "/nan.h5", values, shape: [32, 1, 8, 8])
        let r = try BinaryRunner.mpirun(2, Self.training(data: "nan.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["nan.h5", "/images", "sample 20"], problem: ["nan", "not finite", "outside"], out: dir + "/run")
    }

    @Test func outOfRangeFloatPixelIsRejectedNamingTheSample() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-range")
        var values = Self.floats(32 * 64)
        values[5 * 64 + 9] = 3.5
        try Self.writeDataset(dir + "/range.h5", values, shape: [32, 1, 8, 8])
        let r = try BinaryRunner.mpirun(2, Self.training(data: "range.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["range.h5", "/images", "3.5", "sample 5"], problem: ["outside [−1, 1]", "outside [-1, 1]"], out: dir + "/run")
    }

    @Test func labelsOfAnotherLengthAreRejected() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-labels")
        try Self.writeDataset(dir + "/labelled.h5", [UInt8](repeating: 60, count: 32 * 64), shape: [32, 1, 8, 8],
                              labels: [Int64](repeating: 1, count: 31))
        let r = try BinaryRunner.mpirun(2, Self.training(data: "labelled.h5"), in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["labelled.h5", "/labels", "31", "32"], problem: ["entries for"], out: dir + "/run")
    }

    /// A header that claims far more images than the file holds must be refused from the header, not
    /// by trying to allocate them. [1e9, 3, 1024, 1024] is caught by the element-count limit; [1e9, 1,
    /// 32, 32] (2 TB of floats per rank, a 200-byte file) is under that limit. The ranks run with a
    /// 16 GB address-space limit so a wrong attempt fails fast instead of swapping the machine.
    @Test(arguments: [[3, 1024, 1024], [1, 32, 32]])
    func absurdDeclaredShapeIsRejectedWithoutAGiantAllocation(rest: [Int]) throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-huge")
        try Self.writeClaimedShape(dir + "/claims.h5", count: 1_000_000_000, rest: rest)
        let attr = try FileManager.default.attributesOfItem(atPath: dir + "/claims.h5")
        #expect((attr[.size] as? Int ?? 0) < 100_000, "the crafted file should be tiny")
        let r = try Self.mpirunLimited(2, Self.training(data: "claims.h5"), in: dir, gigabytes: 16, timeout: 60)
        Self.expectCleanFailure(r, names: ["claims.h5", "/images"], problem: ["impossible", "claims", "holds only", "larger than", "exceeds", "more than"], out: dir + "/run")
    }

    // MARK: - Checkpoints

    /// A cnn checkpoint in --out and `--resume --model mlp`: the run must stop, not skip it, start
    /// fresh and overwrite ckpt-00000001.h5 with an mlp one (which loses the cnn run).
    @Test func resumingACheckpointOfAnotherModelFailsAndKeepsIt() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-resume-model")
        _ = try Self.cnnCheckpoint(in: dir)
        try Self.writeDataset(dir + "/points.h5", Self.floats(32 * 2), shape: [32, 2])
        let before = Self.snapshot(dir + "/run")
        let r = try BinaryRunner.mpirun(2, Self.training(data: "points.h5", model: "mlp") + ["--resume"], in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["ckpt-00000001.h5", "cnn", "mlp"], problem: ["holds model", "not mlp", "checkpoint of", "another model", "does not match", "mismatch"], out: dir + "/run", before: before)
    }

    @Test func resumingACheckpointOnDataWithAnotherChannelCountFailsAndKeepsIt() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-resume-channels")
        _ = try Self.cnnCheckpoint(in: dir)
        try Self.writeDataset(dir + "/rgb.h5", [UInt8](repeating: 90, count: 32 * 3 * 64), shape: [32, 3, 8, 8])
        let before = Self.snapshot(dir + "/run")
        // With --require-checkpoint the run stops, naming the checkpoint that does not fit…
        let required = try BinaryRunner.mpirun(2, Self.training(data: "rgb.h5") + ["--resume", "--require-checkpoint"], in: dir, timeout: 60)
        Self.expectCleanFailure(required, names: ["ckpt-00000001.h5"], problem: ["shape", "channel", "does not match", "mismatch"], out: dir + "/run", before: before)
        // …and with --resume alone it must stop too, instead of starting fresh over the 1-channel checkpoint.
        let r = try BinaryRunner.mpirun(2, Self.training(data: "rgb.h5") + ["--resume"], in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["ckpt-00000001.h5"], problem: ["shape", "channel", "does not match", "mismatch"], out: dir + "/run", before: before)
    }

    @Test func sampleAndPredictRejectInputThatDoesNotFitTheCheckpoint() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-predict")
        let checkpoint = try Self.cnnCheckpoint(in: dir)
        for (name, shape) in [("rgb.h5", [2, 3, 8, 8]), ("points.h5", [2, 2])] {
            let input = try HDF5File.create(dir + "/" + name)
            try input.write("x", [Float](repeating: 0, count: shape.reduce(1, *)), shape: shape)
            try input.write("t", [Int64](arrayLiteral: 1, 2), shape: [2])
            try input.close()
            let r = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", name, "--out", "out/eps.h5"], in: dir, timeout: 60)
            Self.expectCleanFailure(r, names: [name, "/x"], problem: ["the checkpoint's model takes"], out: dir + "/out")
        }
        // A data file is not a checkpoint.
        let sample = try BinaryRunner.mpirun(2, ["sample", "--checkpoint", "images.h5", "--count", "2", "--sampler-steps", "2", "--out", "out/s.png"],
                                             in: dir, timeout: 60)
        Self.expectCleanFailure(sample, names: ["images.h5"], problem: ["not a disttrain checkpoint"], out: dir + "/out")
    }

    @Test func checkpointOfAnUnknownFormatVersionIsRejectedBySampleAndPredict() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-version")
        let original = try Self.cnnCheckpoint(in: dir)
        try FileManager.default.copyItem(atPath: original, toPath: dir + "/future.h5")
        let file = try HDF5File.open(dir + "/future.h5", writable: true)
        try file.setAttribute("format_version", "99")
        try file.close()
        let input = try HDF5File.create(dir + "/x.h5")
        try input.write("x", [Float](repeating: 0, count: 2 * 64), shape: [2, 1, 8, 8])
        try input.write("t", [Int64](arrayLiteral: 1, 2), shape: [2])
        try input.close()
        let predict = try BinaryRunner.run(["predict", "--checkpoint", "future.h5", "--input", "x.h5", "--out", "out/eps.h5"], in: dir, timeout: 60)
        Self.expectCleanFailure(predict, names: ["future.h5", "99"], problem: ["format version"], out: dir + "/out")
        let sample = try BinaryRunner.mpirun(2, ["sample", "--checkpoint", "future.h5", "--count", "2", "--sampler-steps", "2", "--out", "out/s.png"],
                                             in: dir, timeout: 60)
        Self.expectCleanFailure(sample, names: ["future.h5", "99"], problem: ["format version"], out: dir + "/out")
    }

    /// The only checkpoint in --out is of format version 99: `--resume` must refuse it, not start fresh
    /// and overwrite it with a version-1 checkpoint of the same name.
    @Test func resumingACheckpointOfAnUnknownFormatVersionFailsAndKeepsIt() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-version-resume")
        let checkpoint = try Self.cnnCheckpoint(in: dir)
        let file = try HDF5File.open(checkpoint, writable: true)
        try file.setAttribute("format_version", "99")
        try file.close()
        let before = Self.snapshot(dir + "/run")
        let r = try BinaryRunner.mpirun(2, Self.training() + ["--resume"], in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["ckpt-00000001.h5", "99"], problem: ["format version"], out: dir + "/run", before: before)
        #expect(try HDF5File.open(checkpoint).attribute("format_version") == "99", "the version-99 checkpoint was replaced")
    }

    @Test func resumeWithoutACheckpointStartsFreshWithANotice() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-fresh")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let r = try BinaryRunner.mpirun(2, Self.training() + ["--resume"], in: dir, timeout: 120)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        #expect(r.stdout.contains("--resume") && r.stdout.contains("no checkpoint") && r.stdout.contains("starting fresh"), "\(r.stdout)")
        #expect(Self.checkpoints(under: dir + "/run") == ["ckpt-00000001.h5"])
    }

    @Test func requireCheckpointWithoutACheckpointFailsAndWritesNothing() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-require")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let r = try BinaryRunner.mpirun(2, Self.training() + ["--resume", "--require-checkpoint"], in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["--require-checkpoint", "run"], problem: ["no usable checkpoint"], out: dir + "/run")
    }

    // MARK: - Options

    /// The message is checked on one rank: under mpirun every rank rejects the option and prints the same
    /// usage error, and Open MPI may interleave the two copies character by character. The mpirun run
    /// proves that no rank waits for the other.
    @Test(arguments: ["0", "-3"])
    func nonPositiveBatchSizeIsRejectedNamingTheOption(value: String) throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-batch")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        var arguments = Self.training()
        if let i = arguments.firstIndex(of: "--batch-size") { arguments.removeSubrange(i...(i + 1)) }
        arguments.append("--batch-size=\(value)")
        let r = try BinaryRunner.run(arguments, in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["--batch-size", value], problem: ["at least 1"], out: dir + "/run")
        let ranks = try BinaryRunner.mpirun(2, arguments, in: dir, timeout: 60)
        #expect(!ranks.timedOut && ranks.status != 0, "status \(ranks.status), timed out: \(ranks.timedOut)\n\(ranks.stderr)")
        #expect(Self.snapshot(dir + "/run").isEmpty && Self.checkpoints(under: dir + "/run").isEmpty)
    }

    @Test func negativeLearningRateIsRejectedNamingTheOption() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-lr")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let r = try BinaryRunner.run(Self.training() + ["--lr=-0.001"], in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: ["--lr", "-0.001"], problem: ["must be positive"], out: dir + "/run")
    }

    /// `--batch-size -3` and `--lr -0.001`, as people type them: the value is there, so "Missing value"
    /// is the wrong message; it should say the value is not allowed, as with `--lr=-0.001`.
    @Test(arguments: [("--batch-size", "-3"), ("--lr", "-0.001")])
    func negativeValueAfterASpaceIsReportedAsInvalidNotMissing(option: String, value: String) throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-negative")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        var arguments = Self.training()
        if let i = arguments.firstIndex(of: option) { arguments.removeSubrange(i...(i + 1)) }
        let r = try BinaryRunner.run(arguments + [option, value], in: dir, timeout: 60)
        Self.expectCleanFailure(r, names: [option, value], problem: ["at least 1", "must be positive", "negative", "not allowed", "invalid"], out: dir + "/run")
    }

    @Test func unwritableOutputDirectoryIsNamedAndNoRankHangs() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-out")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        try Data("a regular file".utf8).write(to: URL(fileURLWithPath: dir + "/plain"))
        for out in ["/proc/disttrain-test", "plain/run"] {
            let r = try BinaryRunner.mpirun(2, Self.training(out: out), in: dir, timeout: 60)
            Self.expectCleanFailure(r, names: [out], problem: ["cannot create"], out: out.hasPrefix("/") ? out : dir + "/" + out)
        }
        #expect(try String(contentsOfFile: dir + "/plain", encoding: .utf8) == "a regular file")
    }
}
