import Tensor

/// One denoiser architecture as the program knows it: the name on the command line and in checkpoints,
/// the reference implementation's class name, the size options it takes, what sample shapes and options
/// it accepts (with the message users see otherwise), how to build it, and the instances `models` lists
/// and `bench` measures (the first is the reference). Each model's file defines its entry;
/// `ModelArchitecture.all` lists them.
public struct ModelArchitecture: Sendable {
    public let name: String
    public let className: String
    /// One line for `disttrain models` and the help text.
    public let summary: String
    public let instances: [ModelInstance]
    /// The options of `ModelOptions` this model reads; any other given option is refused.
    public let options: [ModelOptions.Field]
    private let check: @Sendable (_ sampleShape: [Int], _ options: ModelOptions) -> String?
    private let builder: @Sendable (_ sampleShape: [Int], _ options: ModelOptions, _ batchCapacity: Int, _ convolutions: ConvolutionChoice) -> Denoiser

    /// A model with size options: `validate` and `build` see the user's options (unset ones nil).
    public init(name: String, className: String, summary: String, instances: [ModelInstance], options: [ModelOptions.Field],
                validate: @escaping @Sendable ([Int], ModelOptions) -> String?,
                build: @escaping @Sendable ([Int], ModelOptions, Int, ConvolutionChoice) -> Denoiser) {
        precondition(!instances.isEmpty, "\(name) needs a reference instance")
        self.name = name; self.className = className; self.summary = summary; self.instances = instances
        self.options = options; check = validate; builder = build
    }

    /// A model without options, listed at `referenceSampleShape`.
    public init(name: String, className: String, summary: String, referenceSampleShape: [Int],
                validate: @escaping @Sendable ([Int]) -> String?,
                build: @escaping @Sendable ([Int], Int, ConvolutionChoice) -> Denoiser) {
        self.init(name: name, className: className, summary: summary, instances: [ModelInstance(name, sampleShape: referenceSampleShape)],
                  options: [], validate: { shape, _ in validate(shape) }, build: { shape, _, capacity, convolutions in build(shape, capacity, convolutions) })
    }

    public var referenceSampleShape: [Int] { instances[0].sampleShape }

    /// Set for a model that looks its timestep up in a table (MyUNet's frozen embedding): t must be in 0..<rows.
    public internal(set) var timestepTableRows: Int?

    /// nil when the model can embed every timestep of `range` (a schedule's); otherwise why not.
    public func validate(timesteps range: ClosedRange<Int>) -> String? {
        guard let rows = timestepTableRows, range.lowerBound < 0 || range.upperBound >= rows else { return nil }
        return "\(name) embeds timesteps 0…\(rows - 1) (its frozen table has \(rows) rows); this schedule's run \(range.lowerBound)…\(range.upperBound)"
    }

    /// nil when the model can take samples of this shape ([C, H, W] or [D]) with these options; otherwise why not.
    public func validate(_ sampleShape: [Int], options given: ModelOptions = ModelOptions()) -> String? {
        let foreign = given.given.filter { !options.contains($0) }
        if !foreign.isEmpty {
            let takes = options.isEmpty ? "it has no size options" : "it takes " + options.map { "--" + $0.rawValue }.joined(separator: ", ")
            return foreign.map { "--" + $0.rawValue }.joined(separator: ", ") + " is not an option of \(name) (\(takes))"
        }
        return check(sampleShape, given)
    }

    /// The model for samples of `sampleShape` (already validated with `options`), batches up to `batchCapacity`, and
    /// the convolution algorithms `convolutions` chooses.
    public func build(_ sampleShape: [Int], _ batchCapacity: Int, options: ModelOptions = ModelOptions(),
                      convolutions: ConvolutionChoice = .im2col) -> Denoiser {
        builder(sampleShape, options, batchCapacity, convolutions)
    }

    /// One of its listed instances, built.
    public func build(_ instance: ModelInstance, batchCapacity: Int, convolutions: ConvolutionChoice = .im2col) -> Denoiser {
        build(instance.sampleShape, batchCapacity, options: instance.options, convolutions: convolutions)
    }
}

/// Which algorithm runs each convolution of a model (`--conv-algorithm`).
public enum ConvolutionChoice: String, Sendable, CaseIterable, Codable {
    /// Per layer, by `autoRule` (the default for new runs).
    case auto
    /// im2col + sgemm everywhere.
    case im2col
    /// Winograd for every 3×3 stride-1 convolution (F(4×4) from 16×16 images, F(2×2) below), im2col for the others.
    case winograd
    /// Winograd F(2×2, 3×3) for every 3×3 stride-1 convolution (to compare tile sizes).
    case winogradF2 = "winograd-f2"
    /// Winograd F(4×4, 3×3) for every 3×3 stride-1 convolution (to compare tile sizes).
    case winogradF4 = "winograd-f4"

    public func algorithm(for shape: ConvShape) -> ConvolutionAlgorithmKind {
        let winogradShape = shape.kernel == 3 && shape.stride == 1 && shape.padding == 1
        guard winogradShape else { return .im2col }
        switch self {
        case .auto: return Self.autoRule(shape)
        case .im2col: return .im2col
        case .winograd: return shape.height * shape.width >= 256 ? .winogradF4 : .winogradF2
        case .winogradF2: return .winogradF2
        case .winogradF4: return .winogradF4
        }
    }

    /// The rule of `auto`, from `disttrain bench --per-layer` (README, "Convolution algorithms"): per layer
    /// at batch 8, F(4×4) is 2–2.4× faster than im2col + sgemm on 32×32 and 16×16 images, F(2×2) 1.3× on
    /// 8×8, and on 4×4 im2col wins (a 4×4 image is one F(4×4) tile: the transforms cost more than the
    /// multiplications they save). A layer with few channels (the 3-channel input) is too small for the
    /// transforms to pay off either.
    static func autoRule(_ shape: ConvShape) -> ConvolutionAlgorithmKind {
        guard min(shape.inChannels, shape.outChannels) >= 16 else { return .im2col }
        let pixels = shape.height * shape.width
        if pixels >= 256 { return .winogradF4 }
        if pixels >= 64 { return .winogradF2 }
        return .im2col
    }
}

extension Array where Element == ConvolutionPlanEntry {
    /// One line for the start-up log: how many convolutions run on each algorithm, with their image sizes.
    public var summary: String {
        var order: [ConvolutionAlgorithmKind] = [], sizes: [ConvolutionAlgorithmKind: [String]] = [:], counts: [ConvolutionAlgorithmKind: Int] = [:]
        for entry in self {
            if counts[entry.kind] == nil { order.append(entry.kind) }
            counts[entry.kind, default: 0] += 1
            let size = "\(entry.shape.height)×\(entry.shape.width)"
            if !(sizes[entry.kind]?.contains(size) ?? false) { sizes[entry.kind, default: []].append(size) }
        }
        return order.map { "\(counts[$0]!) × \($0.rawValue) (\(sizes[$0]!.joined(separator: ", ")))" }.joined(separator: "; ")
    }
}

extension ModelArchitecture {
    /// The registry: every model `train`, `sample`, `predict`, `bench`, `models` and checkpoints know.
    public static let all: [ModelArchitecture] = [.mlp, .cnn, .cnnLarge, .cnnTiny, .contextUnet, .needleUNet, .myUNet, .ddimUNet]

    public static func named(_ name: String) -> ModelArchitecture? { all.first { $0.name == name } }

    /// Builds the model at its reference instance.
    public func buildAtReferenceShape(batchCapacity: Int, convolutions: ConvolutionChoice = .im2col) -> Denoiser {
        build(instances[0], batchCapacity: batchCapacity, convolutions: convolutions)
    }
}

/// Architectures are known by name: two with the same name are the same entry of the registry.
extension ModelArchitecture: Equatable {
    public static func == (a: ModelArchitecture, b: ModelArchitecture) -> Bool { a.name == b.name }
}
