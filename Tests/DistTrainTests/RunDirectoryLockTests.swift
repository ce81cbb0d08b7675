import Foundation
import Testing

/// A run owns its output directory for its lifetime (`<out>/.disttrain.lock`): real concurrent runs
/// under `mpirun -np 2`, real SIGKILLs. Waits are bounded; background jobs are killed on the way out.
@Suite(.serialized) struct RunDirectoryLockTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// A run far longer than any test: it ends only by signal.
    static func endless(_ out: String) -> [String] {
        ["train", "--model", "mlp", "--data", "moons.h5", "--batch-size", "64", "--steps", "10000000",
         "--checkpoint-every", "100", "--sample-count", "0", "--seed", "4", "--out", out]
    }

    static func prepareMoons(in dir: String) throws {
        let prepared = try BinaryRunner.run(["prepare", "--source", "two-moons", "--count", "4096", "--seed", "1", "--out", "moons.h5"], in: dir)
        try #require(prepared.status == 0, "\(prepared.stderr)")
    }

    /// `mpirun -np 2 [mpirunOptions] disttrain arguments` in the background, stderr to `dir/<out>.stderr`.
    static func launch(_ arguments: [String], mpirunOptions: [String] = [], in dir: String, stderrName: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        process.arguments = ["-np", "2"] + mpirunOptions + [BinaryRunner.binary] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in BinaryRunner.mpiEnvironment { environment[k] = v }
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        let errors = dir + "/" + stderrName
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errors)
        try process.run()
        return process
    }

    /// Ends a background job and its ranks, whatever state the test left it in.
    static func kill(_ job: Process, ranksMatching fragment: String) {
        for rank in (try? BinaryRunner.pids(matching: fragment)) ?? [] { Foundation.kill(rank, SIGKILL) }
        if job.isRunning { Foundation.kill(job.processIdentifier, SIGKILL) }
        job.waitUntilExit()
    }

    static func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    static func lines(_ path: String) -> Int {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    static func checkpoints(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("ckpt-") && $0.hasSuffix(".h5") }.sorted()
    }

    /// The `key=value` lines of a lock file.
    static func holder(_ dir: String) -> [String: String] {
        let text = (try? String(contentsOfFile: dir + "/.disttrain.lock", encoding: .utf8)) ?? ""
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    static var hostName: String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func secondRunOnABusyDirectoryIsRefusedNamingTheHolderAndTheFirstCarriesOn() throws {
        let dir = try BinaryRunner.temporaryDirectory("lock-busy")
        try Self.prepareMoons(in: dir)
        let out = "locked-run"
        // The ranks see a SLURM job id (mpirun itself must not, or it would look for an allocation).
        let first = try Self.launch(Self.endless(out), mpirunOptions: ["-x", "SLURM_JOB_ID=123456"], in: dir, stderrName: "first.stderr")
        defer { Self.kill(first, ranksMatching: "--out \(out)") }
        #expect(Self.waitUntil(seconds: 120) { Self.lines(dir + "/\(out)/metrics.jsonl") >= 3 }, "the first run did not start training")
        let ranks = try BinaryRunner.pids(matching: "--out \(out)")
        try #require(ranks.count == 2, "ranks of the first run: \(ranks)")
        let lockBefore = FileManager.default.contents(atPath: dir + "/\(out)/.disttrain.lock")

        // With --resume (a requeued job) and without (a double submission): both refused, naming the holder.
        for extra in [["--resume"], []] {
            let second = try BinaryRunner.mpirun(2, ["train", "--model", "mlp", "--data", "moons.h5", "--out", out] + extra, in: dir, timeout: 60)
            let shown = "status \(second.status)\n--- stderr:\n\(second.stderr)\n--- stdout:\n\(second.stdout)"
            #expect(!second.timedOut, "the refused run hung\n\(shown)")
            #expect(second.status != 0, "\(shown)")
            let refusals = second.stderr.split(separator: "\n").filter { $0.contains("is in use by another run") }
            #expect(refusals.count == 1, "one message, not one per rank\n\(shown)")
            let line = String(refusals.first ?? "")
            let named = ranks.contains { line.contains("\(out) is in use by another run (host \(Self.hostName), pid \($0), SLURM job 123456, since 20") }
            #expect(named, "the message does not name the holder (host \(Self.hostName), one of pids \(ranks), job 123456)\n\(shown)")
            #expect(line.hasSuffix("); wait for it to end or choose another --out"), "\(shown)")
            #expect(!second.stdout.contains("resumed from") && !second.stdout.contains("training MLPDenoiser"), "the refused run went on\n\(shown)")
            #expect(FileManager.default.contents(atPath: dir + "/\(out)/.disttrain.lock") == lockBefore, "the refused run touched the lock file")
        }

        // The first run is undisturbed: it keeps training, then stops cleanly with a checkpoint on SIGUSR1 ...
        let trained = Self.lines(dir + "/\(out)/metrics.jsonl")
        #expect(Self.waitUntil(seconds: 120) { Self.lines(dir + "/\(out)/metrics.jsonl") >= trained + 20 }, "the first run stopped training")
        #expect(first.isRunning)
        for rank in ranks { Foundation.kill(rank, SIGUSR1) }
        #expect(Self.waitUntil(seconds: 120) { !first.isRunning }, "the first run did not stop on SIGUSR1")
        #expect(first.terminationStatus == 75, "first run: status \(first.terminationStatus): \((try? String(contentsOfFile: dir + "/first.stderr", encoding: .utf8)) ?? "")")
        let saved = try #require(Self.checkpoints(dir + "/\(out)").last, "no checkpoint in \(out)")
        let savedStep = try #require(Int(saved.dropFirst(5).dropLast(3)))

        // ... and its checkpoint is intact: the directory is free again and the run continues from it.
        let resumed = try BinaryRunner.mpirun(2, ["train", "--model", "mlp", "--data", "moons.h5", "--out", out, "--resume", "--require-checkpoint",
                                                  "--steps", String(savedStep + 10)], in: dir, timeout: 120)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resumed from \(out)/\(saved) at step \(savedStep)"), "\(resumed.stdout)")
        #expect(Self.checkpoints(dir + "/\(out)").last == String(format: "ckpt-%08d.h5", savedStep + 10))
    }

    /// The checkpoint's configuration records the --out it was written under; a resumed run must still
    /// write (and lock) the directory it was given, not the old one.
    @Test func aMovedRunResumesIntoTheDirectoryItWasGiven() throws {
        let dir = try BinaryRunner.temporaryDirectory("lock-moved")
        try Self.prepareMoons(in: dir)
        let short = ["train", "--model", "mlp", "--data", "moons.h5", "--batch-size", "64", "--sample-count", "0"]
        let first = try BinaryRunner.run(short + ["--steps", "10", "--out", "before-move"], in: dir)
        try #require(first.status == 0, "\(first.stderr)")
        try FileManager.default.moveItem(atPath: dir + "/before-move", toPath: dir + "/after-move")
        let resumed = try BinaryRunner.run(short + ["--steps", "20", "--out", "after-move", "--resume", "--require-checkpoint"], in: dir)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(Self.checkpoints(dir + "/after-move") == ["ckpt-00000010.h5", "ckpt-00000020.h5"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/before-move"), "the resumed run wrote under the old --out")
        #expect(Self.holder(dir + "/after-move")["pid"] != nil)
    }

    @Test func aKilledRunsLockFileDoesNotBlockItsResume() throws {
        let dir = try BinaryRunner.temporaryDirectory("lock-stale")
        try Self.prepareMoons(in: dir)
        let out = "killed-run"
        let first = try Self.launch(Self.endless(out), in: dir, stderrName: "first.stderr")
        defer { Self.kill(first, ranksMatching: "--out \(out)") }
        #expect(Self.waitUntil(seconds: 120) { !Self.checkpoints(dir + "/\(out)").isEmpty }, "the first run wrote no checkpoint")
        let ranks = try BinaryRunner.pids(matching: "--out \(out)")
        try #require(ranks.count == 2, "ranks of the first run: \(ranks)")
        // The scheduler's hard kill: no chance to clean up, the lock file stays behind.
        for rank in ranks { Foundation.kill(rank, SIGKILL) }
        #expect(Self.waitUntil(seconds: 60) { !first.isRunning }, "mpirun outlived its killed ranks")
        let stale = Self.holder(dir + "/\(out)")
        #expect(stale["pid"].flatMap(Int32.init).map(ranks.contains) == true, "the lock file should still name the killed run: \(stale)")

        let saved = try #require(Self.checkpoints(dir + "/\(out)").last)
        let savedStep = try #require(Int(saved.dropFirst(5).dropLast(3)))
        let resumed = try BinaryRunner.mpirun(2, ["train", "--model", "mlp", "--data", "moons.h5", "--out", out, "--resume", "--require-checkpoint",
                                                  "--steps", String(savedStep + 10)], in: dir, timeout: 120)
        #expect(resumed.status == 0, "the stale lock blocked the resume: \(resumed.stderr)")
        #expect(!resumed.stderr.contains("in use"), "\(resumed.stderr)")
        #expect(resumed.stdout.contains("at step \(savedStep)"), "\(resumed.stdout)")
        let now = Self.holder(dir + "/\(out)")
        #expect(now["host"] == Self.hostName)
        #expect(now["pid"] != nil && now["pid"] != stale["pid"], "the new run did not rewrite the holder: \(now)")
    }
}
