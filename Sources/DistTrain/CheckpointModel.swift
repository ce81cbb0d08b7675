import Foundation
import IO
import Models
import Tensor

/// A model rebuilt from a checkpoint for inference: its kind and sample shape come from the file.
struct CheckpointModel {
    let architecture: ModelArchitecture
    let model: Denoiser
    let configuration: TrainingConfiguration
    let schedule: NoiseSchedule

    /// Loads the weights (the EMA weights when the checkpoint has them and `useEMA`) into a model whose
    /// activations hold `batchCapacity` samples.
    init(path: String, batchCapacity: Int, useEMA: Bool) throws {
        let file = try HDF5File.open(path)
        guard file.attribute("format") == Checkpoint.format else { throw IOError(path: path, "not a disttrain checkpoint") }
        guard let name = file.attribute("model"), let architecture = ModelArchitecture.named(name) else {
            throw IOError(path: path, "unknown model '\(file.attribute("model") ?? "")'")
        }
        let shape = (file.attribute("sample_shape") ?? "").split(separator: ",").compactMap { Int($0) }
        guard !shape.isEmpty else { throw IOError(path: path, "no sample_shape attribute") }
        if let problem = architecture.validate(shape) { throw IOError(path: path, "sample_shape \(shape): \(problem)") }
        let validated = try Checkpoint.validate(path, modelKind: architecture.name, sampleShape: shape)
        self.architecture = architecture
        model = architecture.build(shape, batchCapacity)
        let ema = useEMA && validated.contains("ema") ? FloatBuffer(count: model.parameters.count) : nil
        let contents = try Checkpoint.load(validated, model: model, optimizer: nil, ema: ema)
        if let ema { model.parameters.copy(from: ema) }
        configuration = contents.configuration
        schedule = NoiseSchedule(NoiseSchedule.Kind(rawValue: configuration.schedule) ?? .linear)
        model.training = false
    }
}

