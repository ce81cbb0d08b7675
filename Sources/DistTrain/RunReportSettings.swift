import Foundation
import IO
import Models

/// The configuration part of a run's report. A run directory holds no configuration file: it lives in
/// every checkpoint, so it is read from the newest one whose metadata is sound.
enum RunReportSettings {
    /// The tables, and notes on checkpoints passed over (or on there being none).
    static func tables(runDirectory: String) -> ([RunReport.Table], [String]) {
        var notes: [String] = []
        for path in Checkpoint.all(in: runDirectory) {
            do {
                let reader = try CheckpointReader(path)
                return ([summary(of: reader), allSettings(reader.metadata.configuration)], notes)
            } catch {
                notes.append("\((path as NSString).lastPathComponent) passed over: \(error)")
            }
        }
        notes.append("No readable checkpoint (ckpt-*.h5) in the run directory yet, so no configuration to show.")
        return ([], notes)
    }

    /// What a reader wants first: model, data, ranks and batch, length, optimiser, sampling.
    private static let decay: [LearningRateSchedule.Kind: String] = [
        .linear: "linear decay to 0", .cosine: "cosine decay to 0", .constant: "constant",
    ]

    private static func summary(of reader: CheckpointReader) -> RunReport.Table {
        let m = reader.metadata, c = m.configuration
        let name = (reader.path as NSString).lastPathComponent
        let step = Int(name.dropFirst(5).dropLast(3)).map(String.init) ?? "?"
        var rows: [(name: String, value: String)] = [
            ("model", "\(m.model.name) (\(m.model.className))"),
            ("sample shape", "[\(Checkpoint.shapeText(m.sampleShape))]"),
            ("data", c.data),
        ]
        if let d = m.data {
            rows.append(("data contents", "\(d.count) samples of [\(Checkpoint.shapeText(d.sampleShape))] \(d.elementType), fingerprint \(d.fingerprint)"))
        }
        rows += [
            ("ranks × batch", "\(c.worldSize) × \(c.batchSize) × \(c.accumulation) accumulation = \(c.globalBatch) images per step"),
            ("steps", "\(step) of \(c.steps) (at this checkpoint)"),
            ("learning rate", "\(c.learningRate), \(c.warmupSteps) warm-up steps, " + Self.decay[c.learningRateSchedule]!),
            ("schedule", c.schedule.isContinuous ? "\(c.schedule.rawValue) (continuous time)" : "\(c.schedule.rawValue), T = \(c.timesteps)"),
            ("optimizer", c.optimizer == .adamw ? "AdamW, weight decay \(c.weightDecay), ε \(c.adamEpsilon)" : "Adam, ε \(c.adamEpsilon)"),
            ("loss", c.loss.rawValue + (c.normalizeData ? ", per-channel normalised data" : "")),
            ("EMA of the weights", c.emaRate > 0 ? "\(c.emaRate)\(c.emaWarmup ? " with warm-up" : "")\(c.emaBuffers ? " and of the BatchNorm statistics" : "") (samples use it)" : "off"),
            ("sampling", "\(c.sampleCount) samples every \(c.sampleEvery > 0 ? "\(c.sampleEvery) steps" : "run (at the end)"), \(c.sampler.rawValue)\(c.sampler == .ddim ? " \(c.samplerSteps) steps, η = \(c.eta)" : ", σ² \(c.ddpmVariance.rawValue)")"),
            ("convolutions", c.convolutions.rawValue),
        ]
        return RunReport.Table(heading: "Run (from \(name))", rows: rows)
    }

    /// Every field of the configuration as stored, in declaration order.
    private static func allSettings(_ c: TrainingConfiguration) -> RunReport.Table {
        let values = (try? JSONDecoder().decode([String: Scalar].self, from: Data(c.json().utf8))) ?? [:]
        let rows = TrainingConfiguration.CodingKeys.allCases.compactMap { key -> (name: String, value: String)? in
            // The one field that is not a scalar: the model's size options, shown as they are passed.
            if key == .modelOptions { return (key.rawValue, c.modelOptions.given.isEmpty ? "(the model's defaults)" : c.modelOptions.commandLine) }
            return values[key.rawValue].map { (name: key.rawValue, value: $0.text) }
        }
        return RunReport.Table(heading: "All settings (configuration attribute)", rows: rows)
    }

    /// A JSON scalar shown as written: strings without quotes, numbers in Swift's shortest form.
    private struct Scalar: Decodable {
        let text: String

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            // why this order: JSONDecoder refuses a number as Bool, and an integer decodes as Double too
            if let b = try? c.decode(Bool.self) { text = String(b) }
            else if let i = try? c.decode(Int64.self) { text = String(i) }
            else if let u = try? c.decode(UInt64.self) { text = String(u) }
            else if let d = try? c.decode(Double.self) { text = String(d) }
            else if let string = try? c.decode(String.self) { text = string }
            else { text = "" }   // an object (modelOptions), shown by allSettings itself
        }
    }
}
