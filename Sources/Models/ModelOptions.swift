/// The size options of the model families that have them — ContextUnet's `n_feat` and `n_cfeat`, the
/// needle U-Net's channels and time-embedding width, the DDIM U-Net's widths and block depth. nil means
/// the architecture's default. They are part of a run's configuration, so every checkpoint rebuilds the
/// model it was trained with.
public struct ModelOptions: Sendable, Equatable, Codable {
    /// ContextUnet's n_feat: channels of its first level (divisible by 8, for GroupNorm(8)).
    public var features: Int?
    /// ContextUnet's n_cfeat: the length of the context vector, a one-hot class (or all zeros).
    public var contextFeatures: Int?
    /// The needle U-Net's channels c_0 < … < c_L, one level per pooling after the first; the DDIM U-Net's
    /// widths w_0, …, w_L (default 32,64,96,128), one down and one up block per width but the last, which is
    /// the bottleneck's.
    public var channels: [Int]?
    /// The needle U-Net's sinusoidal time-embedding width d (even).
    public var timeDimension: Int?
    /// The DDIM U-Net's block depth: residual blocks per down block, up block and in the bottleneck (default 2).
    public var blockDepth: Int?

    /// How each option is spelled on the command line.
    public enum Field: String, Sendable, CaseIterable {
        case features, contextFeatures = "context-features", channels, timeDimension = "time-dim", blockDepth = "block-depth"
    }

    public init(features: Int? = nil, contextFeatures: Int? = nil, channels: [Int]? = nil, timeDimension: Int? = nil,
                blockDepth: Int? = nil) {
        self.features = features; self.contextFeatures = contextFeatures; self.channels = channels; self.timeDimension = timeDimension
        self.blockDepth = blockDepth
    }

    /// The options that are set, in `Field` order.
    public var given: [Field] {
        Field.allCases.filter { field in
            switch field {
            case .features: features != nil
            case .contextFeatures: contextFeatures != nil
            case .channels: channels != nil
            case .timeDimension: timeDimension != nil
            case .blockDepth: blockDepth != nil
            }
        }
    }

    /// These options with `other`'s set ones on top (an instance's defaults under the user's choices).
    public func overridden(by other: ModelOptions) -> ModelOptions {
        ModelOptions(features: other.features ?? features, contextFeatures: other.contextFeatures ?? contextFeatures,
                     channels: other.channels ?? channels, timeDimension: other.timeDimension ?? timeDimension,
                     blockDepth: other.blockDepth ?? blockDepth)
    }

    /// "--features 16 --channels 8,16,32": the options as a user would pass them (empty when none).
    public var commandLine: String {
        given.map { field -> String in
            switch field {
            case .features: "--features \(features!)"
            case .contextFeatures: "--context-features \(contextFeatures!)"
            case .channels: "--channels \(channels!.map(String.init).joined(separator: ","))"
            case .timeDimension: "--time-dim \(timeDimension!)"
            case .blockDepth: "--block-depth \(blockDepth!)"
            }
        }.joined(separator: " ")
    }
}

/// One configuration of a model that `disttrain models` lists and `bench` measures: a sample shape
/// and options (ZOO.md's instances).
public struct ModelInstance: Sendable {
    public let name: String
    public let sampleShape: [Int]
    public let options: ModelOptions
    public init(_ name: String, sampleShape: [Int], options: ModelOptions = ModelOptions()) {
        self.name = name; self.sampleShape = sampleShape; self.options = options
    }
}
