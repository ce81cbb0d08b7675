import Tensor

// How the layers of a denoiser fit together.
//
// THE GRADIENT RULE. Every backward pass ADDS into the gradients it is handed — parameter gradients
// and input gradients alike — and never overwrites them. Parameter gradients are zeroed once per
// optimizer step, by the training step, before the first micro-batch (so micro-batches accumulate);
// activation gradients are zeroed by the model at the start of each backward pass. A tensor read by
// two layers (a skip connection, a residual, a fan-out) therefore needs nothing special: each reader
// adds its share into the same gradient buffer. Only the loss writes: it seeds the output gradient.
//
// A layer is a small value that knows its parameters' offsets in the model's flat buffers (see
// ParameterTable) and, where it needs them, owns its saved statistics and its algorithm. It is built
// once, from a `ModelBuilder`, for the model's batch capacity and image size; forward and backward
// take the model's buffers (`ModelPointers`) and the batch of this call.

/// Raw pointers to a model's three flat buffers, handed to each layer.
public struct ModelPointers {
    public let parameters: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    public let buffers: UnsafeMutablePointer<Float>
    /// Called after each layer's backward with that layer's lowest parameter offset: from there to the
    /// end of the buffer every gradient is final (backward visits layers in reverse table order).
    public let gradientsReady: ((Int) -> Void)?
    /// When set, BatchNorm in train mode sums its statistics over the ranks with it (SyncBatchNorm).
    public let reduceStatistics: ((UnsafeMutablePointer<Double>, Int) -> Void)?
}

/// What every layer needs while a model is built: the parameter and buffer tables it appends to, the
/// batch capacity its activations are sized for, the scratch shared by all its layers, the choice of
/// convolution algorithm, and the list of activation gradients the model zeroes before backward.
public final class ModelBuilder {
    public var parameters = ParameterTable()
    public var buffers = ParameterTable()
    public let batchCapacity: Int
    public let workspace = Workspace()
    /// The algorithm of each Conv2d, by its shape (batch = capacity). im2col for every layer unless changed.
    public var convolutionAlgorithm: (ConvShape) -> ConvolutionAlgorithmKind = { _ in .im2col }
    public private(set) var activationGradients: [FloatBuffer] = []
    /// Every Conv2d built so far with the algorithm it got, in build order (for the start-up log and bench).
    public private(set) var convolutionPlan: [ConvolutionPlanEntry] = []

    /// The algorithm of the Conv2d `name` of `shape`, recorded in the plan.
    func makeConvolution(_ name: String, _ shape: ConvShape) -> ConvolutionAlgorithm {
        let kind = convolutionAlgorithm(shape)
        convolutionPlan.append(ConvolutionPlanEntry(layer: name, shape: shape, kind: kind))
        return kind.make(shape, workspace: workspace)
    }

    public init(batchCapacity: Int) { self.batchCapacity = batchCapacity }

    /// A buffer of `count` floats for an activation.
    public func activation(_ count: Int) -> FloatBuffer { FloatBuffer(count: count) }

    /// A buffer of `count` floats (per image × the batch capacity) for an activation's gradient, zeroed
    /// before each backward pass by the model's `ActivationGradients`.
    public func gradient(_ count: Int) -> FloatBuffer {
        precondition(count % batchCapacity == 0, "an activation gradient holds a whole number of images: \(count) floats for capacity \(batchCapacity)")
        let buffer = FloatBuffer(count: count)
        activationGradients.append(buffer)
        return buffer
    }
}

/// One convolution layer of a model and the algorithm that runs it.
public struct ConvolutionPlanEntry: Sendable {
    public let layer: String
    /// At the model's batch capacity.
    public let shape: ConvShape
    public let kind: ConvolutionAlgorithmKind
}

/// The activation gradients of a model, zeroed together at the start of each backward pass.
public struct ActivationGradients {
    let buffers: [FloatBuffer]
    let batchCapacity: Int
    public init(_ builder: ModelBuilder) { buffers = builder.activationGradients; batchCapacity = builder.batchCapacity }

    /// Zeroes what a pass over `batch` images uses. why only that: every activation is CNHW, packed for
    /// the batch of the call, so `batch` images fill the first batch/capacity of each buffer; a run whose
    /// capacity is set by its sample grids (16) trains on batches of 8 and would zero twice the memory.
    public func zero(batch: Int) {
        for b in buffers { b.pointer.update(repeating: 0, count: b.count / batchCapacity * batch) }
    }
}

/// How a layer's weight is initialised; biases follow PyTorch's fan-in rule unless zeroed too.
public enum LayerInitialization: Sendable, Equatable {
    /// PyTorch's default: weight and bias U(±1/√fan_in) (kaiming-uniform with a = √5).
    case pytorchDefault
    /// Weight and bias 0 (e.g. an output layer that starts by predicting nothing).
    case zeros

    func weight(fanIn: Int) -> Initialization {
        switch self {
        case .pytorchDefault: .uniform(bound: 1 / Float(fanIn).squareRoot())
        case .zeros: .constant(0)
        }
    }
}
