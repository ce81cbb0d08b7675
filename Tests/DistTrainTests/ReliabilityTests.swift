import Foundation
import IO
import Testing

/// Preemption, failures and non-finite steps, with real processes and real signals. Every test is
/// bounded in time, so a hang fails it instead of stalling CI.
@Suite(.serialized) struct ReliabilityTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    static let training = ["train", "--model", "cnn", "--data", "images.h5", "--batch-size", "4", "--sample-count", "0", "--seed", "9"]

    /// Starts `mpirun -np 2 disttrain …` in the background.
    static func launch(_ arguments: [String], in dir: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        process.arguments = ["-np", "2", BinaryRunner.binary] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in BinaryRunner.mpiEnvironment { environment[k] = v }
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        let errors = dir + "/stderr.txt"
        FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errors)
        try process.run()
        return process
    }

    /// Waits until `path` has at least `lines` lines (or the deadline passes).
    static func waitForLines(_ path: String, _ lines: Int, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), text.split(separator: "\n").count >= lines { return true }
            usleep(50_000)
        }
        return false
    }

    static func waitForExit(_ process: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return false }
        return true
    }

    static func assertSameWeights(_ a: String, _ b: String) throws {
        let differing = try CheckpointComparison.differingArrays(a, b, groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq", "ranks"]).differing
        let x = try HDF5File.open(a), y = try HDF5File.open(b)
        #expect(differing.isEmpty, "arrays that differ between \(a) and \(b): \(differing)")
        #expect(try x.read("ranks/rng", as: Int64.self).values == y.read("ranks/rng", as: Int64.self).values)
    }

    @Test func sigusr1CheckpointsEveryRankExitsForRequeueAndResumesBitExact() throws {
        let dir = try BinaryRunner.temporaryDirectory("preempt")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let steps = ["--steps", "60", "--checkpoint-every", "100"]
        let straight = try BinaryRunner.mpirun(2, Self.training + steps + ["--out", "straight"], in: dir, timeout: 240)
        #expect(straight.status == 0, "\(straight.stderr)")

        let job = try Self.launch(Self.training + steps + ["--out", "preempted"], in: dir)
        #expect(Self.waitForLines(dir + "/preempted/metrics.jsonl", 3, seconds: 120))
        // Every rank gets the signal, as from `scancel --signal=USR1` or srun's --signal. (mpirun also
        // forwards a SIGUSR1 sent to it, but under the test runner it inherits the signal blocked.)
        let ranks = try BinaryRunner.pids(matching: "--out preempted")
        #expect(ranks.count == 2)
        for rank in ranks { kill(rank, SIGUSR1) }
        #expect(Self.waitForExit(job, seconds: 120), "the job did not stop after SIGUSR1")
        #expect(job.terminationStatus == 75, "exit status \(job.terminationStatus): \((try? String(contentsOfFile: dir + "/stderr.txt", encoding: .utf8)) ?? "")")
        let saved = (try FileManager.default.contentsOfDirectory(atPath: dir + "/preempted")).filter { $0.hasPrefix("ckpt-") }
        #expect(saved.count == 1, "one checkpoint at the stop: \(saved)")
        #expect(!saved.contains("ckpt-00000060.h5"), "the signal arrived too late to test anything")

        let resumed = try BinaryRunner.mpirun(2, Self.training + steps + ["--out", "preempted", "--resume"], in: dir, timeout: 240)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try Self.assertSameWeights(dir + "/straight/ckpt-00000060.h5", dir + "/preempted/ckpt-00000060.h5")
    }

    @Test func nonFiniteStepIsSkippedOnEveryRankAndNeverReachesTheWeights() throws {
        let dir = try BinaryRunner.temporaryDirectory("nan")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let r = try BinaryRunner.mpirun(2, Self.training + ["--steps", "4", "--inject-nan-at", "2", "--ema-rate", "0.5", "--out", "run"], in: dir, timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        let skipped = rows.map { $0.split(separator: ",").last.map(String.init) ?? "" }
        #expect(skipped == ["0", "1", "0", "0"], "skipped column: \(skipped)")
        let file = try HDF5File.open(dir + "/run/ckpt-00000004.h5")
        for group in ["model", "ema", "optimizer/exp_avg", "optimizer/exp_avg_sq"] {
            for name in try file.members(of: group) {
                #expect(try file.read("\(group)/\(name)", as: Float.self).values.allSatisfy(\.isFinite), "\(group)/\(name) holds a non-finite value")
            }
        }
        // Limit reached: the run stops with a message and a failure status.
        let limited = try BinaryRunner.mpirun(2, Self.training + ["--steps", "4", "--inject-nan-at", "2", "--max-nonfinite-steps", "1", "--out", "limited"],
                                              in: dir, timeout: 120)
        #expect(limited.status != 0 && !limited.timedOut)
        #expect(limited.stderr.contains("non-finite") && limited.stderr.contains("step 2"), "\(limited.stderr)")
    }

    @Test func corruptedLatestCheckpointIsReportedAndThePreviousOneUsed() throws {
        let dir = try BinaryRunner.temporaryDirectory("corrupt")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let first = try BinaryRunner.mpirun(2, Self.training + ["--steps", "6", "--checkpoint-every", "3", "--out", "run", "--halt-after", "6"], in: dir, timeout: 120)
        #expect(first.status == 0, "\(first.stderr)")
        // Flip bytes in the middle of the newest checkpoint, where the arrays are.
        let latest = dir + "/run/ckpt-00000006.h5"
        let handle = try #require(FileHandle(forUpdatingAtPath: latest))
        let size = handle.seekToEndOfFile()
        handle.seek(toFileOffset: size / 2)
        handle.write(Data(repeating: 0x5A, count: 4096))
        handle.closeFile()
        let resumed = try BinaryRunner.mpirun(2, Self.training + ["--steps", "6", "--checkpoint-every", "3", "--out", "run", "--resume"], in: dir, timeout: 120)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("cannot resume from \(latest)") || resumed.stdout.contains("cannot resume from run/ckpt-00000006.h5"), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("at step 3"), "\(resumed.stdout)")
    }

    @Test func resumingOnAnotherNumberOfRanksKeepsStepGlobalBatchAndOptimizer() throws {
        let dir = try BinaryRunner.temporaryDirectory("reshard")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let common = ["train", "--model", "cnn", "--data", "images.h5", "--sample-count", "0", "--out", "run"]
        let two = try BinaryRunner.mpirun(2, common + ["--batch-size", "4", "--steps", "8", "--halt-after", "4"], in: dir, timeout: 120)
        #expect(two.status == 0, "\(two.stderr)")
        let one = try BinaryRunner.mpirun(1, common + ["--resume"], in: dir, timeout: 120)
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stdout.contains("continuing on 1 with batch 8 per rank (same global batch 8)"), "\(one.stdout)")
        #expect(one.stdout.contains("at step 4"))
        let final = try HDF5File.open(dir + "/run/ckpt-00000008.h5")
        #expect(try final.read("optimizer/step", as: Int64.self).values == [8])
        #expect(try final.shape(of: "ranks/rng") == [1, 3])
        let rows = try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(rows.compactMap { Int($0.split(separator: ",")[0]) } == Array(1...8))
        // 8 images per step cannot be split over 3 ranks: refused, naming the numbers.
        let three = try BinaryRunner.mpirun(3, common + ["--resume", "--steps", "12"], in: dir, timeout: 120)
        #expect(three.status != 0 && !three.timedOut)
        #expect(three.stderr.contains("cannot be split over 3 ranks"), "\(three.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/ckpt-00000012.h5"))
    }

    /// A checkpoint that cannot be written (disk full) leaves the previous one intact and says so.
    /// Needs root for a small tmpfs, which CI has; elsewhere the test records nothing.
    @Test func fullDiskDuringCheckpointKeepsThePreviousOneAndSaysSo() throws {
        guard getuid() == 0 else { return }
        let dir = try BinaryRunner.temporaryDirectory("fulldisk")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let mount = dir + "/small"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        // One checkpoint of this model is about 40 MB: the first fits in 60 MB, the second cannot.
        guard shell("mount -t tmpfs -o size=60M tmpfs '\(mount)'") == 0 else { return }
        defer { _ = shell("umount '\(mount)'") }
        let r = try BinaryRunner.mpirun(2, Self.training + ["--steps", "6", "--checkpoint-every", "2", "--keep", "3", "--out", "small/run"],
                                        in: dir, timeout: 120)
        #expect(r.status != 0 && !r.timedOut)
        #expect(r.stderr.contains("ckpt-00000004.h5 not written (the previous one is intact)"), "\(r.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: mount + "/run")
        #expect(names.contains("ckpt-00000002.h5") && !names.contains { $0.hasSuffix(".partial") } && !names.contains("ckpt-00000004.h5"), "\(names)")
        // The survivor is complete: every array reads back through its checksum.
        let survivor = try HDF5File.open(mount + "/run/ckpt-00000002.h5")
        for name in try survivor.members(of: "model") { _ = try survivor.read("model/\(name)", as: Float.self) }
        #expect(try survivor.read("state/step", as: Int64.self).values == [2])
    }

    private func shell(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        do { try p.run() } catch { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test func oneRankKilledEndsEveryRankPromptly() throws {
        let dir = try BinaryRunner.temporaryDirectory("kill")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let job = try Self.launch(Self.training + ["--steps", "100000", "--out", "victim"], in: dir)
        #expect(Self.waitForLines(dir + "/victim/metrics.jsonl", 2, seconds: 120))
        // The ranks are the binary's processes started for this output directory.
        let pids = try BinaryRunner.pids(matching: "--out victim")
        #expect(pids.count == 2, "ranks found: \(pids)")
        if let victim = pids.last { kill(victim, SIGKILL) }
        #expect(Self.waitForExit(job, seconds: 30), "the other rank kept running after one was killed")
        #expect(job.terminationStatus != 0)
        #expect(try BinaryRunner.pids(matching: "--out victim").isEmpty)
    }

    @Test func watchdogEndsTheJobWhenARankHangs() throws {
        let dir = try BinaryRunner.temporaryDirectory("hang")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let started = Date()
        let r = try BinaryRunner.mpirun(2, Self.training + ["--steps", "10", "--stall-at", "3", "--collective-timeout", "4", "--out", "run"], in: dir, timeout: 120)
        #expect(!r.timedOut && r.status != 0)
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(r.stderr.contains("rank 0") && r.stderr.contains("at step 3") && r.stderr.contains("did not complete within 4 s"), "\(r.stderr)")
    }
}

/// Runs Tests/scripts/kill-and-resume.sh: SIGKILL inside a step, during sampling and half-way through
/// a checkpoint write, then SIGUSR1 twice; every interrupted run must end bit-identical to the
/// uninterrupted one.
@Suite(.serialized) struct KillAndResumeScriptTests {
    @Test func killedAndPreemptedRunsEndBitIdenticalToUninterruptedOnes() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/kill-and-resume.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, BinaryRunner.binary]
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in BinaryRunner.mpiEnvironment { environment[k] = v }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output; process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print(text)
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.components(separatedBy: "identical: ").count - 1 == 2, "\(text)")
        #expect(text.contains("partial files left: 1"))
        #expect(text.contains("kill-and-resume: 0 failure(s)"))
    }
}
