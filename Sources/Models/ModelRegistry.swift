import Tensor

/// One denoiser architecture as the program knows it: the name on the command line and in checkpoints,
/// the reference implementation's class name, what sample shapes it accepts (with the message users
/// see otherwise), how to build it, and the sample shape it is listed and benchmarked at.
/// Each model's file defines its entry; `ModelArchitecture.all` lists them.
public struct ModelArchitecture: Sendable {
    public let name: String
    public let className: String
    /// One line for `disttrain models` and the help text.
    public let summary: String
    public let referenceSampleShape: [Int]
    /// nil when the model can take samples of this shape ([C, H, W] or [D]); otherwise why not.
    public let validate: @Sendable (_ sampleShape: [Int]) -> String?
    /// The model for samples of `sampleShape` (already validated), batches up to `batchCapacity`, and
    /// the convolution algorithms `convolutions` chooses.
    public let builder: @Sendable (_ sampleShape: [Int], _ batchCapacity: Int, _ convolutions: ConvolutionChoice) -> Denoiser

    public init(name: String, className: String, summary: String, referenceSampleShape: [Int],
                validate: @escaping @Sendable ([Int]) -> String?,
                build: @escaping @Sendable ([Int], Int, ConvolutionChoice) -> Denoiser) {
        self.name = name; self.className = className; self.summary = summary
        self.referenceSampleShape = referenceSampleShape; self.validate = validate; self.builder = build
    }

    /// The model for samples of `sampleShape` and batches up to `batchCapacity`.
    public func build(_ sampleShape: [Int], _ batchCapacity: Int, convolutions: ConvolutionChoice = .im2col) -> Denoiser {
        builder(sampleShape, batchCapacity, convolutions)
    }
}

/// Which algorithm runs each convolution of a model (`--conv-algorithm`).
public enum ConvolutionChoice: String, Sendable, CaseIterable, Codable {
    /// im2col + sgemm everywhere.
    case im2col
    /// Winograd for every 3×3 stride-1 convolution, im2col for the others.
    case winograd
    /// Winograd F(2×2, 3×3) for every 3×3 stride-1 convolution (to compare tile sizes).
    case winogradF2 = "winograd-f2"
    /// Winograd F(4×4, 3×3) for every 3×3 stride-1 convolution (to compare tile sizes).
    case winogradF4 = "winograd-f4"

    public func algorithm(for shape: ConvShape) -> ConvolutionAlgorithmKind {
        let winogradShape = shape.kernel == 3 && shape.stride == 1 && shape.padding == 1
        switch self {
        case .im2col: return .im2col
        case .winograd, .winogradF4: return winogradShape ? .winogradF4 : .im2col
        case .winogradF2: return winogradShape ? .winogradF2 : .im2col
        }
    }
}

extension ModelArchitecture {
    /// The registry: every model `train`, `sample`, `predict`, `bench`, `models` and checkpoints know.
    public static let all: [ModelArchitecture] = [.mlp, .cnn, .cnnLarge, .cnnTiny]

    public static func named(_ name: String) -> ModelArchitecture? { all.first { $0.name == name } }

    /// Builds the model at its reference sample shape.
    public func buildAtReferenceShape(batchCapacity: Int, convolutions: ConvolutionChoice = .im2col) -> Denoiser {
        build(referenceSampleShape, batchCapacity, convolutions: convolutions)
    }
}

/// Architectures are known by name: two with the same name are the same entry of the registry.
extension ModelArchitecture: Equatable {
    public static func == (a: ModelArchitecture, b: ModelArchitecture) -> Bool { a.name == b.name }
}
