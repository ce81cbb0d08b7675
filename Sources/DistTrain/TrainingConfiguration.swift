import Foundation
import Models

/// Everything that defines a training run; stored as JSON in every checkpoint. The initial values
/// are the defaults of a fresh run: `train`'s options start from them, and a checkpoint written
/// before a field existed decodes with them (see `init(from:)`).
struct TrainingConfiguration: Equatable {
    var data: String = DefaultDataset.path
    var model: ModelArchitecture = .cnnLarge
    /// The model's size options (`--features`, `--channels`, …; ModelOptions), unset ones at the model's defaults.
    var modelOptions = ModelOptions()
    /// Images per rank per micro-step (0: the reference's global batch of 128 split over the ranks).
    var batchSize: Int = 0
    /// Optimizer steps of the whole run (K in lr_k = lr_0·(1 − k/K); 0: from --epochs).
    var steps: Int = 0
    var learningRate: Double = 1e-3
    var warmupSteps: Int = 0
    /// How the learning rate decays over the run (`--lr-schedule`).
    var learningRateSchedule: LearningRateSchedule.Kind = .linear
    var seed: UInt64 = 0
    var outputDirectory: String = "runs/default"
    var checkpointEvery: Int = 1000
    var keepCheckpoints: Int = 3
    var sampleEvery: Int = 0
    var sampleCount: Int = 16
    var sampler: SamplerOptions.Kind = .ddim
    var samplerSteps: Int = 50
    var eta: Double = 0
    /// σ_t² of DDPM sampling (`--ddpm-variance`): β_t, or the posterior variance (the needle seed's).
    var ddpmVariance: DiffusionSampler.DDPMVariance = .beta
    /// Classifier-free guidance weight of the periodic samples and evaluations (nil: none).
    var guidance: Double?
    /// Probability of training an image without its label (`--label-dropout`, for guidance).
    var labelDropout: Double = 0
    var emaRate: Double = 0
    /// Ramp the EMA decay up from 0 as diffusers' EMAModel does (`--ema-warmup`).
    var emaWarmup: Bool = false
    /// The EMA also averages the BatchNorm running statistics (`--ema-buffers`; samples use both).
    var emaBuffers: Bool = false
    /// The noise-prediction error (`--loss`): mean squared or mean absolute.
    var loss: DiffusionLoss.LossFunction = .mse
    /// Adam or AdamW (`--optimizer`), AdamW's decoupled weight decay (`--weight-decay`; 0 with Adam) and ε (`--adam-epsilon`).
    var optimizer: OptimizerKind = .adam
    var weightDecay: Double = 0
    var adamEpsilon: Double = 1e-8
    /// Train on per-channel normalised images (`--normalize-data`; statistics in the checkpoint's /data_normalization).
    var normalizeData: Bool = false
    var gradientClip: Double = 0
    var accumulation: Int = 1
    /// The noise schedule (`--schedule`) and its number of timesteps T (`--timesteps`).
    var schedule: NoiseSchedule.Kind = .linear
    var timesteps: Int = 1000
    var syncBatchNorm: Bool = false
    var bucketMegabytes: Double = 4
    var overlap: Bool = true
    var logEvery: Int = 10
    var worldSize: Int = 1
    /// Seconds a blocking collective may take before the watchdog ends the job (0: off).
    var collectiveTimeout: Double = 900
    /// Consecutive steps with non-finite loss or gradients after which the run stops.
    var maxNonfiniteSteps: Int = 10
    /// Which algorithm runs each convolution (`--conv-algorithm`).
    var convolutions: ConvolutionChoice = .im2col
    /// Evaluate (FID, KID, class entropy) every N steps and at the end (0: never), on `evalCount`
    /// samples, with the feature network `evalFeatures` (`disttrain classifier`).
    var evalEvery: Int = 0
    var evalCount: Int = 1000
    var evalFeatures: String = ""

    /// `--optimizer`: PyTorch's Adam, or AdamW with decoupled weight decay (Adam.swift).
    enum OptimizerKind: String, CaseIterable { case adam, adamw }

    /// The one place a fresh run's defaults come from.
    static let defaults = TrainingConfiguration()

    /// The timesteps T a run may have (`--timesteps`; a checkpoint claiming others is refused).
    static let timestepLimits = 2...10000

    /// The run's noise schedule, as training drew from it: every command that samples or predicts from a
    /// checkpoint rebuilds it here.
    var noiseSchedule: NoiseSchedule { NoiseSchedule(schedule, timesteps: timesteps) }

    /// How the run's periodic sample grids and evaluations are drawn.
    var samplingMethod: DiffusionSampler.Method {
        sampler == .ddpm ? .ddpm(variance: ddpmVariance) : .ddim(steps: samplerSteps, eta: eta)
    }

    /// Images per optimizer step over all ranks.
    var globalBatch: Int { batchSize * accumulation * worldSize }

    /// lr_k = lr_0 · min(1, (k+1)/warm-up) · f(k/K) (LearningRateSchedule).
    func learningRate(at step: Int) -> Float {
        LearningRateSchedule(kind: learningRateSchedule, peak: learningRate, warmupSteps: warmupSteps, totalSteps: steps).rate(at: step)
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

/// The JSON keeps the names and string values of format version 1. Decoding never rejects a
/// configuration for a missing field (it takes the default) or an unknown one (ignored), only for a
/// value of the wrong type, an unknown model, sampler, variance, schedule, loss or optimizer name, or timesteps out of range.
extension TrainingConfiguration: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case data, model, modelOptions, batchSize, steps, learningRate, warmupSteps, learningRateSchedule, seed, outputDirectory, checkpointEvery,
             keepCheckpoints, sampleEvery, sampleCount, sampler, samplerSteps, eta, ddpmVariance, guidance, labelDropout, emaRate, emaWarmup, emaBuffers,
             loss, optimizer, weightDecay, adamEpsilon, normalizeData, gradientClip,
             accumulation, schedule, timesteps, syncBatchNorm, bucketMegabytes, overlap, logEvery, worldSize,
             collectiveTimeout, maxNonfiniteSteps, convolutions, evalEvery, evalCount, evalFeatures
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainingConfiguration.defaults
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        func named<T: RawRepresentable & CaseIterable>(_ key: CodingKeys, _ fallback: T) throws -> T where T.RawValue == String {
            guard let name = try c.decodeIfPresent(String.self, forKey: key) else { return fallback }
            guard let known = T(rawValue: name) else {
                let choices = T.allCases.map(\.rawValue).joined(separator: ", ")
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "unknown \(key.rawValue) '\(name)' (this build knows \(choices))")
            }
            return known
        }
        data = try value(.data, d.data)
        if let name = try c.decodeIfPresent(String.self, forKey: .model) {
            guard let known = ModelArchitecture.named(name) else {
                let choices = ModelArchitecture.all.map(\.name).joined(separator: ", ")
                throw DecodingError.dataCorruptedError(forKey: .model, in: c, debugDescription: "unknown model '\(name)' (this build knows \(choices))")
            }
            model = known
        } else {
            model = d.model
        }
        modelOptions = try value(.modelOptions, d.modelOptions)
        batchSize = try value(.batchSize, d.batchSize)
        steps = try value(.steps, d.steps)
        learningRate = try value(.learningRate, d.learningRate)
        warmupSteps = try value(.warmupSteps, d.warmupSteps)
        learningRateSchedule = try named(.learningRateSchedule, d.learningRateSchedule)
        seed = try value(.seed, d.seed)
        outputDirectory = try value(.outputDirectory, d.outputDirectory)
        checkpointEvery = try value(.checkpointEvery, d.checkpointEvery)
        keepCheckpoints = try value(.keepCheckpoints, d.keepCheckpoints)
        sampleEvery = try value(.sampleEvery, d.sampleEvery)
        sampleCount = try value(.sampleCount, d.sampleCount)
        sampler = try named(.sampler, d.sampler)
        samplerSteps = try value(.samplerSteps, d.samplerSteps)
        eta = try value(.eta, d.eta)
        ddpmVariance = try named(.ddpmVariance, d.ddpmVariance)
        guidance = try c.decodeIfPresent(Double.self, forKey: .guidance)
        labelDropout = try value(.labelDropout, d.labelDropout)
        emaRate = try value(.emaRate, d.emaRate)
        emaWarmup = try value(.emaWarmup, d.emaWarmup)
        emaBuffers = try value(.emaBuffers, d.emaBuffers)
        loss = try named(.loss, d.loss)
        optimizer = try named(.optimizer, d.optimizer)
        weightDecay = try value(.weightDecay, d.weightDecay)
        adamEpsilon = try value(.adamEpsilon, d.adamEpsilon)
        normalizeData = try value(.normalizeData, d.normalizeData)
        gradientClip = try value(.gradientClip, d.gradientClip)
        accumulation = try value(.accumulation, d.accumulation)
        schedule = try named(.schedule, d.schedule)
        timesteps = try value(.timesteps, d.timesteps)
        guard Self.timestepLimits.contains(timesteps) else {
            throw DecodingError.dataCorruptedError(forKey: .timesteps, in: c, debugDescription: "timesteps \(timesteps) outside \(Self.timestepLimits.lowerBound)…\(Self.timestepLimits.upperBound)")
        }
        syncBatchNorm = try value(.syncBatchNorm, d.syncBatchNorm)
        bucketMegabytes = try value(.bucketMegabytes, d.bucketMegabytes)
        overlap = try value(.overlap, d.overlap)
        logEvery = try value(.logEvery, d.logEvery)
        worldSize = try value(.worldSize, d.worldSize)
        collectiveTimeout = try value(.collectiveTimeout, d.collectiveTimeout)
        maxNonfiniteSteps = try value(.maxNonfiniteSteps, d.maxNonfiniteSteps)
        convolutions = try named(.convolutions, d.convolutions)
        evalEvery = try value(.evalEvery, d.evalEvery)
        evalCount = try value(.evalCount, d.evalCount)
        evalFeatures = try value(.evalFeatures, d.evalFeatures)
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(data, forKey: .data)
        try c.encode(model.name, forKey: .model)
        try c.encode(modelOptions, forKey: .modelOptions)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(steps, forKey: .steps)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encode(learningRateSchedule.rawValue, forKey: .learningRateSchedule)
        try c.encode(seed, forKey: .seed)
        try c.encode(outputDirectory, forKey: .outputDirectory)
        try c.encode(checkpointEvery, forKey: .checkpointEvery)
        try c.encode(keepCheckpoints, forKey: .keepCheckpoints)
        try c.encode(sampleEvery, forKey: .sampleEvery)
        try c.encode(sampleCount, forKey: .sampleCount)
        try c.encode(sampler.rawValue, forKey: .sampler)
        try c.encode(samplerSteps, forKey: .samplerSteps)
        try c.encode(eta, forKey: .eta)
        try c.encode(ddpmVariance.rawValue, forKey: .ddpmVariance)
        try c.encodeIfPresent(guidance, forKey: .guidance)
        try c.encode(labelDropout, forKey: .labelDropout)
        try c.encode(emaRate, forKey: .emaRate)
        try c.encode(emaWarmup, forKey: .emaWarmup)
        try c.encode(emaBuffers, forKey: .emaBuffers)
        try c.encode(loss.rawValue, forKey: .loss)
        try c.encode(optimizer.rawValue, forKey: .optimizer)
        try c.encode(weightDecay, forKey: .weightDecay)
        try c.encode(adamEpsilon, forKey: .adamEpsilon)
        try c.encode(normalizeData, forKey: .normalizeData)
        try c.encode(gradientClip, forKey: .gradientClip)
        try c.encode(accumulation, forKey: .accumulation)
        try c.encode(schedule.rawValue, forKey: .schedule)
        try c.encode(timesteps, forKey: .timesteps)
        try c.encode(syncBatchNorm, forKey: .syncBatchNorm)
        try c.encode(bucketMegabytes, forKey: .bucketMegabytes)
        try c.encode(overlap, forKey: .overlap)
        try c.encode(logEvery, forKey: .logEvery)
        try c.encode(worldSize, forKey: .worldSize)
        try c.encode(collectiveTimeout, forKey: .collectiveTimeout)
        try c.encode(maxNonfiniteSteps, forKey: .maxNonfiniteSteps)
        try c.encode(convolutions.rawValue, forKey: .convolutions)
        try c.encode(evalEvery, forKey: .evalEvery)
        try c.encode(evalCount, forKey: .evalCount)
        try c.encode(evalFeatures, forKey: .evalFeatures)
    }
}

extension TrainingConfiguration {
    /// Why these settings cannot train together, naming the options (nil: they can). Checked by `train`
    /// after a recipe and the explicit options are merged.
    var combinationProblem: String? {
        if schedule.isContinuous && sampler == .ddpm {
            return "--sampler ddpm: the \(schedule.rawValue) schedule is continuous (t ~ U(0, 1)) and has no timesteps to step through; only --sampler ddim applies"
        }
        if schedule.isContinuous && eta != 0 { return "--eta \(eta): the \(schedule.rawValue) schedule's DDIM sampler is deterministic (η 0)" }
        guard weightDecay >= 0, weightDecay.isFinite else { return "--weight-decay must not be negative, got \(weightDecay)" }
        if optimizer == .adam && weightDecay != 0 {
            return "--weight-decay \(weightDecay) is AdamW's decoupled weight decay: pass --optimizer adamw (Adam here has none)"
        }
        guard adamEpsilon > 0, adamEpsilon.isFinite else { return "--adam-epsilon must be positive, got \(adamEpsilon)" }
        if emaBuffers && emaRate == 0 { return "--ema-buffers needs --ema-rate (the decay of the average)" }
        return nil
    }
}
