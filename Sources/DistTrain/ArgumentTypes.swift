import ArgumentParser
import Foundation
import Models

// Let ArgumentParser check these options' values: a wrong one gets an error naming the option and
// listing the accepted values, before any work starts.
extension NoiseSchedule.Kind: ExpressibleByArgument {}
extension DiffusionSampler.DDPMVariance: ExpressibleByArgument {}
extension ConvolutionChoice: ExpressibleByArgument {}
extension LearningRateSchedule.Kind: ExpressibleByArgument {}
extension DiffusionLoss.LossFunction: ExpressibleByArgument {}
extension TrainingConfiguration.OptimizerKind: ExpressibleByArgument {}

extension ModelArchitecture: ExpressibleByArgument {
    public init?(argument: String) {
        guard let architecture = ModelArchitecture.named(argument) else { return nil }
        self = architecture
    }
    public var defaultValueDescription: String { name }
    public static var allValueStrings: [String] { all.map(\.name) }
    /// For help texts: "mlp (MLPDenoiser …), cnn (…), …".
    static var listing: String { all.map { "\($0.name) (\($0.summary))" }.joined(separator: ", ") }
}

/// How samples are drawn; shared by `train` (periodic grids) and `sample`.
struct SamplerOptions: ParsableArguments {
    enum Kind: String, ExpressibleByArgument, CaseIterable { case ddpm, ddim }

    @Option(help: "Sampler: ddpm (all T steps, ancestral) or ddim (the default; train: a --recipe's).")
    var sampler: Kind?
    @Option(help: "DDIM steps (at most the schedule's T: more visit every timestep once).")
    var samplerSteps: Int = TrainingConfiguration.defaults.samplerSteps
    @Option(help: "DDIM η (0: deterministic).")
    var eta: Double = TrainingConfiguration.defaults.eta
    @Option(help: "DDPM's σ_t²: beta (β_t, DDPM's and the course's) or posterior (β_t(1−ᾱ_{t−1})/(1−ᾱ_t), the needle seed's); no noise at the last step either way. train: default beta, stored in the checkpoint; sample and evaluate: default the checkpoint's.")
    var ddpmVariance: DiffusionSampler.DDPMVariance?
    @Option(help: "Classifier-free guidance weight W of a class-conditional model: ε̂ = ε̂_u + W·(ε̂_c − ε̂_u), both from one batched forward pass (1: the conditional model alone, 0: the unconditional one; the (1 + w)·ε̂_c − w·ε̂_u form is W = 1 + w). Default: no guidance, one conditional pass.")
    var guidance: Double?

    func validate() throws {
        let limit = TrainingConfiguration.timestepLimits.upperBound
        guard samplerSteps >= 1, samplerSteps <= limit else { throw ValidationError("--sampler-steps must be in 1…\(limit), got \(samplerSteps)") }
        guard eta >= 0, eta.isFinite else { throw ValidationError("--eta must not be negative, got \(eta)") }
        if let guidance, !guidance.isFinite { throw ValidationError("--guidance must be a finite number, got \(guidance)") }
    }

    /// The sampler asked for; a DDPM variance not given is `runVariance` (the checkpoint's run's).
    func method(runVariance: DiffusionSampler.DDPMVariance) -> DiffusionSampler.Method {
        (sampler ?? TrainingConfiguration.defaults.sampler) == .ddpm
            ? .ddpm(variance: ddpmVariance ?? runVariance) : .ddim(steps: samplerSteps, eta: eta)
    }
}

/// The size options of the models that have them (ModelOptions); shared by `train`, `bench` and
/// `gradients`. A model refuses an option it does not take, by name.
struct ModelSizeOptions: ParsableArguments {
    @Option(help: "context-unet: n_feat, the channels of its first level (divisible by 8). Default 64.")
    var features: Int?
    @Option(help: "context-unet: n_cfeat, the length of the one-hot class vector (at least the data's number of classes). Default 10.")
    var contextFeatures: Int?
    @Option(help: "needle-unet: channels c_0,…,c_L, increasing, e.g. 32,64,128 (H and W divisible by 2^L). Default 64,128,256,512,1024. ddim-unet: widths w_0,…,w_L, the last the bottleneck's (H and W divisible by 2^L). Default 32,64,96,128.",
            transform: { text in
                let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
                    throw ValidationError("--channels takes integers separated by commas, e.g. 32,64,128; got '\(text)'")
                }
                return values.map { $0! }
            })
    var channels: [Int]?
    @Option(help: "needle-unet: the sinusoidal time-embedding width d (even, at least 4). Default 32.")
    var timeDim: Int?
    @Option(help: "ddim-unet: residual blocks in each down block, up block and the bottleneck (at least 1). Default 2.")
    var blockDepth: Int?

    var options: ModelOptions {
        ModelOptions(features: features, contextFeatures: contextFeatures, channels: channels, timeDimension: timeDim,
                     blockDepth: blockDepth)
    }
}

/// `sample --class`: which classes a class-conditional model samples, checked against the model.
enum SampleClassesArgument {
    /// nil: a row per class (conditional models) or unconditional; "none"; "K"; "K1,K2,…" (one grid row each).
    static func parse(_ text: String?, classCount: Int, model: String) throws -> SampleClasses {
        guard let text else { return .everyClass(of: classCount) }
        if text == "none" { return .unconditional }
        guard classCount > 0 else {
            throw RunFailure("--class \(text): \(model) is not class-conditional (only --class none applies)")
        }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var classes: [Int] = []
        for part in parts {
            guard let k = Int(part) else {
                throw RunFailure("--class takes class numbers separated by commas (or none); '\(part)' is not one")
            }
            guard k >= 0 && k < classCount else {
                throw RunFailure("--class \(k): \(model) knows the classes 0…\(classCount - 1)")
            }
            classes.append(k)
        }
        return .rows(classes)
    }
}
