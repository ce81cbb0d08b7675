import Foundation
import IO
import Models
import Tensor

/// A model rebuilt from a checkpoint for inference: its architecture and sample shape come from the file.
struct CheckpointModel {
    let architecture: ModelArchitecture
    let model: Denoiser
    let configuration: TrainingConfiguration
    let schedule: NoiseSchedule

    /// Loads the weights (the EMA weights when the checkpoint has them and `useEMA`) into a model whose
    /// activations hold `batchCapacity` samples; its convolutions run as the checkpoint's run chose unless
    /// `convolutions` says otherwise (every algorithm computes the same function, to rounding).
    init(path: String, batchCapacity: Int, useEMA: Bool, convolutions: ConvolutionChoice? = nil) throws {
        let reader = try CheckpointReader(path)
        architecture = reader.metadata.model
        let shape = reader.metadata.sampleShape
        let options = reader.metadata.configuration.modelOptions
        if let problem = architecture.validate(shape, options: options) { throw IOError(path: path, "sample_shape \(shape): \(problem)") }
        model = architecture.build(shape, batchCapacity, options: options,
                                   convolutions: convolutions ?? reader.metadata.configuration.convolutions)
        let ema = useEMA && reader.containsEMA ? FloatBuffer(count: model.parameters.count) : nil
        _ = try reader.load(into: model, optimizer: nil, ema: ema)
        if let ema { model.parameters.copy(from: ema) }
        configuration = reader.metadata.configuration
        schedule = configuration.noiseSchedule
        model.training = false
    }
}

