import ArgumentParser
import Models

// Let ArgumentParser check these options' values: a wrong one gets an error naming the option and
// listing the accepted values, before any work starts.
extension NoiseSchedule.Kind: ExpressibleByArgument {}
extension ConvolutionChoice: ExpressibleByArgument {}
extension LearningRateSchedule.Kind: ExpressibleByArgument {}

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

    @Option(help: "Sampler: ddpm (all T steps, ancestral) or ddim.")
    var sampler: Kind = TrainingConfiguration.defaults.sampler
    @Option(help: "DDIM steps.")
    var samplerSteps: Int = TrainingConfiguration.defaults.samplerSteps
    @Option(help: "DDIM η (0: deterministic).")
    var eta: Double = TrainingConfiguration.defaults.eta

    func validate() throws {
        guard samplerSteps >= 1, samplerSteps <= 1000 else { throw ValidationError("--sampler-steps must be in 1…1000, got \(samplerSteps)") }
        guard eta >= 0, eta.isFinite else { throw ValidationError("--eta must not be negative, got \(eta)") }
    }

    var method: DiffusionSampler.Method { sampler == .ddpm ? .ddpm : .ddim(steps: samplerSteps, eta: eta) }
}
