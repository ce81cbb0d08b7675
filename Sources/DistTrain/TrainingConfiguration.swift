import Foundation

/// Everything that defines a training run; stored as JSON in every checkpoint.
struct TrainingConfiguration: Codable, Equatable {
    var data: String
    var model: String
    /// Images per rank per micro-step.
    var batchSize: Int
    /// Optimizer steps of the whole run (K in lr_k = lr_0·(1 − k/K)).
    var steps: Int
    var learningRate: Double
    var warmupSteps: Int
    var seed: UInt64
    var outputDirectory: String
    var checkpointEvery: Int
    var keepCheckpoints: Int
    var sampleEvery: Int
    var sampleCount: Int
    var sampler: String
    var samplerSteps: Int
    var eta: Double
    var emaRate: Double
    var gradientClip: Double
    var accumulation: Int
    var schedule: String
    var syncBatchNorm: Bool
    var bucketMegabytes: Double
    var overlap: Bool
    var logEvery: Int
    var worldSize: Int
    /// Seconds a blocking collective may take before the watchdog ends the job (0: off).
    var collectiveTimeout: Double = 900
    /// Consecutive steps with non-finite loss or gradients after which the run stops.
    var maxNonfiniteSteps: Int = 10

    /// Images per optimizer step over all ranks.
    var globalBatch: Int { batchSize * accumulation * worldSize }

    /// lr_k = lr_0 · min(1, (k+1)/warm-up) · (1 − k/K).
    func learningRate(at step: Int) -> Float {
        let warm = warmupSteps > 0 ? min(1, Double(step + 1) / Double(warmupSteps)) : 1
        return Float(learningRate * warm * (1 - Double(step) / Double(steps)))
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    static func from(json: String) throws -> TrainingConfiguration {
        try JSONDecoder().decode(TrainingConfiguration.self, from: Data(json.utf8))
    }
}
