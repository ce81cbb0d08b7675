/// The denoisers this program trains, by the names the command line uses.
public enum ModelKind: String, CaseIterable, Sendable {
    case mlp
    case cnn
    case cnnLarge = "cnn-large"

    /// The reference implementation's class name.
    public var className: String {
        switch self {
        case .mlp: "MLPDenoiser"
        case .cnn: "CNNDenoiser"
        case .cnnLarge: "CNNDenoiserLarge"
        }
    }

    /// Builds the model for samples of `sampleShape` ([C, H, W], or [dim] for the MLP).
    public func make(sampleShape: [Int], batchCapacity: Int) -> Denoiser {
        switch self {
        case .mlp:
            return MLPDenoiser(dimension: sampleShape.reduce(1, *), batchCapacity: batchCapacity)
        case .cnn, .cnnLarge:
            let c = self == .cnn ? UNetConfiguration.small(inChannels: sampleShape[0]) : .large(inChannels: sampleShape[0])
            return UNetDenoiser(c, height: sampleShape[1], width: sampleShape[2], batchCapacity: batchCapacity)
        }
    }

    /// The sample shape the model is benchmarked and listed at: 3×32×32 images, or 2-D points.
    public var referenceSampleShape: [Int] { self == .mlp ? [2] : [3, 32, 32] }
}
