import Foundation
import IO
import Testing

/// cluster/train.sbatch on a real single-machine SLURM (started and stopped here by
/// cluster/slurm-local.sh): a 2-task job leaves its checkpoint and metrics; a job warned with SIGUSR1,
/// as before a time limit, checkpoints, requeues itself, resumes and ends with the same weights as an
/// uninterrupted job. Needs root (CI has it); elsewhere it records nothing. Takes about 3 minutes:
/// SLURM holds a requeued job for ~2 minutes before it may start again.
@Suite(.serialized) struct SlurmTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @discardableResult
    static func shell(_ command: String, _ environment: [String: String] = [:]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Polls `squeue` until the job has left the queue (finished) or the deadline passes.
    static func waitForJob(_ id: String, seconds: Double, _ env: [String: String]) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if shell("squeue -h -j \(id) 2>/dev/null", env).output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return true }
            usleep(300_000)
        }
        return false
    }

    @Test func sbatchJobTrainsAndAWarnedJobRequeuesResumesAndMatches() throws {
        guard getuid() == 0 else { return }
        let dir = try BinaryRunner.temporaryDirectory("slurm")
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let slurm = dir + "/slurm"
        let started = Self.shell("'\(Self.root)/cluster/slurm-local.sh' start '\(slurm)'")
        try #require(started.status == 0, "slurm did not start: \(started.output)")
        defer { Self.shell("'\(Self.root)/cluster/slurm-local.sh' stop '\(slurm)'") }
        let env = ["SLURM_CONF": slurm + "/slurm.conf"]
        func submit(_ out: String) -> String {
            let r = Self.shell("cd '\(dir)' && sbatch --parsable --export=ALL,DISTTRAIN='\(BinaryRunner.binary)',DATA=images.h5,MODEL=cnn,STEPS=150,OUT=\(out) "
                               + "'\(Self.root)/cluster/train.sbatch' --batch-size 4 --sample-count 0 --checkpoint-every 1000", env)
            return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        let straight = submit("straight")
        #expect(Self.waitForJob(straight, seconds: 180, env), "job \(straight) did not finish")
        #expect(FileManager.default.fileExists(atPath: dir + "/straight/ckpt-00000150.h5"))
        let metrics = try String(contentsOfFile: dir + "/straight/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 150)
        let log = try String(contentsOfFile: dir + "/disttrain-\(straight).out", encoding: .utf8)
        #expect(log.contains("2 ranks × 1 threads"), "\(log)")

        let warned = submit("warned")
        var progressed = false
        for _ in 0..<600 {
            if let text = try? String(contentsOfFile: dir + "/warned/metrics.jsonl", encoding: .utf8), text.split(separator: "\n").count >= 5 { progressed = true; break }
            usleep(100_000)
        }
        #expect(progressed)
        // What SLURM does at --signal=USR1@120: SIGUSR1 to every task of the job.
        #expect(Self.shell("scancel --signal=USR1 \(warned)", env).status == 0)
        #expect(Self.waitForJob(warned, seconds: 330, env), "job \(warned) was not requeued and finished")
        let warnedLog = try String(contentsOfFile: dir + "/disttrain-\(warned).out", encoding: .utf8)
        #expect(warnedLog.contains("requeueing job \(warned)") && warnedLog.contains("(restart 1)") && warnedLog.contains("resumed from"), "\(warnedLog)")

        let differing = try CheckpointComparison.differingArrays(
            dir + "/straight/ckpt-00000150.h5", dir + "/warned/ckpt-00000150.h5", groups: ["model", "optimizer/exp_avg", "optimizer/exp_avg_sq"]).differing
        #expect(differing.isEmpty, "differ after requeue: \(differing)")
    }
}
