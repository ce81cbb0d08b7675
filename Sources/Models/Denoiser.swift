import Tensor

/// A noise-prediction network ε̂(x_t, conditioning) with explicit forward and backward passes over
/// flat buffers. Implementations: `UNetDenoiser` (images) and `MLPDenoiser` (2-D toy data); the
/// registry (`ModelArchitecture`) builds them by name. Their flat buffers and tables are those of every
/// `TrainableModel`.
public protocol Denoiser: TrainableModel {
    /// The largest batch the activations were sized for.
    var batchCapacity: Int { get }
    /// Shape of one sample: [C, H, W] for images, [dim] for points.
    var sampleShape: [Int] { get }
    /// Forward multiply-accumulates for one sample.
    var multiplyAccumulatesPerSample: Int { get }
    /// Its Conv2d layers and their algorithms (none for models without convolutions).
    var convolutionPlan: [ConvolutionPlanEntry] { get }
    /// Floats of the scratch its layers share (im2col columns, Winograd's transformed tiles).
    var workspaceCount: Int { get }
    /// Train mode uses batch statistics in BatchNorm; eval mode the running ones.
    var training: Bool { get set }
    /// Classes it is conditioned on (labels 0..<classCount, or `Conditioning.noLabel`); 0: unconditional.
    var classCount: Int { get }
    /// Set for SyncBatchNorm: an in-place sum over the ranks of per-channel statistics.
    var reduceStatistics: ((UnsafeMutablePointer<Double>, Int) -> Void)? { get set }

    /// output[batch, sample…] = ε̂(input, conditioning); keeps what `backward` needs.
    func forward(input: UnsafePointer<Float>, conditioning: Conditioning, output: UnsafeMutablePointer<Float>, batch: Int)
    /// Adds the gradients of Σ output·outputGrad for the last `forward` into `gradients` (the gradient
    /// rule, Layer.swift: the caller zeroes `gradients` once per optimizer step).
    func backward(outputGrad: UnsafePointer<Float>)
}

extension Denoiser {
    public var convolutionPlan: [ConvolutionPlanEntry] { [] }
    public var workspaceCount: Int { 0 }
    public var classCount: Int { 0 }
    public var sampleCount: Int { sampleShape.reduce(1, *) }

    var pointers: ModelPointers {
        ModelPointers(parameters: parameters.pointer, gradients: gradients.pointer, buffers: buffers.pointer,
                      gradientsReady: gradientsReady, reduceStatistics: reduceStatistics)
    }
}
