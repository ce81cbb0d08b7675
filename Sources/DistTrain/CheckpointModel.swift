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
    /// The training data's per-channel statistics (--normalize-data), which the samples are de-normalised with.
    let normalization: DataNormalization?
    let path: String

    /// Loads the weights (the EMA weights, and the EMA of the running statistics, when the checkpoint has
    /// them and `useEMA`) into a model whose
    /// activations hold `batchCapacity` samples; its convolutions run as the checkpoint's run chose unless
    /// `convolutions` says otherwise (every algorithm computes the same function, to rounding).
    init(path: String, batchCapacity: Int, useEMA: Bool, convolutions: ConvolutionChoice? = nil) throws {
        let reader = try CheckpointReader(path)
        self.path = path
        architecture = reader.metadata.model
        let shape = reader.metadata.sampleShape
        let options = reader.metadata.configuration.modelOptions
        if let problem = architecture.validate(shape, options: options) { throw IOError(path: path, "sample_shape \(shape): \(problem)") }
        model = architecture.build(shape, batchCapacity, options: options,
                                   convolutions: convolutions ?? reader.metadata.configuration.convolutions)
        let ema = useEMA && reader.containsEMA ? FloatBuffer(count: model.parameters.count) : nil
        let emaBuffers = useEMA && reader.containsEMABuffers ? FloatBuffer(count: model.buffers.count) : nil
        _ = try reader.load(into: model, optimizer: nil, ema: ema, emaBuffers: emaBuffers)
        if let ema { model.parameters.copy(from: ema) }
        if let emaBuffers { model.buffers.copy(from: emaBuffers) }
        configuration = reader.metadata.configuration
        schedule = configuration.noiseSchedule
        normalization = try reader.dataNormalization()
        if configuration.normalizeData && normalization == nil {
            throw IOError(path: path, "its run normalised the data (--normalize-data) but /data_normalization is missing")
        }
        model.training = false
    }

    /// A sampler for this checkpoint (de-normalising when its run normalised the data), refusing a method
    /// its schedule cannot take: DDPM or η > 0 on a continuous schedule.
    func sampler(_ method: DiffusionSampler.Method, guidance: Double?) throws -> DiffusionSampler {
        if schedule.isContinuous {
            switch method {
            case .ddpm: throw RunFailure("--sampler ddpm: \(path) was trained with the \(schedule.kind.rawValue) schedule, which is continuous and has no timesteps; use --sampler ddim")
            case .ddim(_, let eta) where eta != 0: throw RunFailure("--eta \(eta): the \(schedule.kind.rawValue) schedule's DDIM sampler is deterministic (η 0)")
            case .ddim: break
            }
        }
        return DiffusionSampler(model: model, schedule: schedule, guidance: guidance, normalization: normalization)
    }
}

