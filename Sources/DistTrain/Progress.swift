import Foundation

/// One row of metrics.jsonl / metrics.csv.
struct MetricsRecord {
    static let columns = ["step", "epoch", "loss", "lr", "grad_norm", "img_per_s", "step_seconds", "allreduce_wait_seconds", "skipped"]
    /// A run that evaluates has these too: empty (null) but at its evaluation steps.
    static let evaluationColumns = ["fid", "kid", "kid_std", "class_entropy"]
    let step, epoch: Int
    let loss, learningRate, gradientNorm, imagesPerSecond, stepSeconds, allreduceWaitSeconds: Double
    let skipped: Int
    var evaluation: EvaluationResult? = nil

    var values: [Double] {
        [Double(step), Double(epoch), loss, learningRate, gradientNorm, imagesPerSecond, stepSeconds, allreduceWaitSeconds, Double(skipped)]
    }
    var evaluationValues: [Double] {
        guard let e = evaluation else { return [.nan, .nan, .nan, .nan] }
        return [e.fid, e.kid, e.kidStandardDeviation, e.classes.entropy]
    }
}

/// Rank 0's progress: one self-rewriting line with ETA on a terminal, plain lines every `logEvery`
/// steps otherwise (batch jobs, pipes). Under mpirun/srun the ranks' output always reaches a
/// pseudo-terminal, whatever the launcher writes to, so there the plain lines are used.
final class ProgressReporter {
    let totalSteps, logEvery: Int
    let enabled: Bool
    private let terminal = isatty(STDOUT_FILENO) != 0 && !Communicator.launchedByMPI
    private var lastDrawn: UInt64 = 0
    private var averageSeconds = 0.0
    private var lineOpen = false

    init(totalSteps: Int, logEvery: Int, enabled: Bool) {
        self.totalSteps = totalSteps; self.logEvery = logEvery; self.enabled = enabled
    }

    func report(_ r: MetricsRecord) {
        guard enabled else { return }
        // An exponential average keeps the ETA steady after the slower first steps.
        averageSeconds = averageSeconds == 0 ? r.stepSeconds : 0.9 * averageSeconds + 0.1 * r.stepSeconds
        let eta = Double(totalSteps - r.step) * averageSeconds
        let text = String(format: "step %d/%d  epoch %d  loss %.5f  lr %.3g  grad %.3g  %.1f img/s  wait %.3f s  ETA %@",
                          r.step, totalSteps, r.epoch, r.loss, r.learningRate, r.gradientNorm, r.imagesPerSecond,
                          r.allreduceWaitSeconds, Self.duration(eta)) + (r.skipped > 0 ? "  (skipped: non-finite)" : "")
            + (r.evaluation.map { String(format: "  FID %.2f  KID %.4f  entropy %.3f", $0.fid, $0.kid, $0.classes.entropy) } ?? "")
        if terminal {
            // Redraw at most 5 times a second, and always for the last step.
            let now = DispatchTime.now().uptimeNanoseconds
            guard now - lastDrawn > 200_000_000 || r.step == totalSteps || r.evaluation != nil else { return }
            lastDrawn = now
            print("\r\u{1B}[2K" + text, terminator: "")
            fflush(nil)
            lineOpen = true
        } else if r.step % logEvery == 0 || r.step == totalSteps || r.step == 1 || r.skipped > 0 || r.evaluation != nil {
            print(text)
        }
    }

    func message(_ text: String) {
        guard enabled else { return }
        if lineOpen { print(""); lineOpen = false }
        print("disttrain: " + text)
    }

    func finish() {
        if enabled && lineOpen { print(""); lineOpen = false }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) : String(format: "%dm%02ds", s / 60, s % 60)
    }
}
