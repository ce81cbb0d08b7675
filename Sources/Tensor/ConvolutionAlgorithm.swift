/// How a convolution layer computes its three passes (forward, input gradient, weight gradient).
/// A layer owns one algorithm, chosen per layer when the model is built; the algorithm owns its
/// workspace needs (reserved in the model's shared `Workspace`). im2col + sgemm is the default; a
/// faster one for some shapes (e.g. Winograd for 3×3 stride 1) is another type behind this seam.
/// Backward adds into the gradients it is given, like every backward pass.
public protocol ConvolutionAlgorithm: AnyObject {
    /// For the start-up log: which algorithm runs a layer.
    var name: String { get }
    /// output[Cout, N, Hout, Wout] from input[Cin, N, H, W] for `batch` ≤ the capacity it was built for;
    /// when `moments` is given, also each output channel's Σy and Σy² (`channelMoments`' layout), for the
    /// BatchNorm that follows: taken while the values are in cache where the algorithm allows.
    func forward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                 weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, batch: Int, moments: UnsafeMutablePointer<Double>?)
    /// Adds the weight, bias and (when `inputGrad` is not nil) input gradients of the last forward pass's shape.
    func backward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                  biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, weight: UnsafePointer<Float>, batch: Int)
}

extension ConvolutionAlgorithm {
    public func forward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, batch: Int) {
        forward(output: output, input: input, weight: weight, bias: bias, batch: batch, moments: nil)
    }
}

/// Which algorithm a convolution layer uses; models ask for `.im2col` unless told otherwise.
public enum ConvolutionAlgorithmKind: String, Sendable, CaseIterable {
    case im2col
    /// Winograd F(2×2, 3×3), for 3×3 stride-1 padding-1 convolutions only (WinogradConvolution.swift).
    case winogradF2 = "winograd-f2"
    /// Winograd F(4×4, 3×3), likewise: fewer multiplications, more rounding.
    case winogradF4 = "winograd-f4"

    /// Builds the algorithm for a Conv2d of `shape` (its batch is the capacity), reserving its scratch.
    public func make(_ shape: ConvShape, workspace: Workspace) -> ConvolutionAlgorithm {
        switch self {
        case .im2col: Im2colConvolution(shape, workspace: workspace)
        case .winogradF2: WinogradConvolution(shape, outputTile: 2, workspace: workspace)
        case .winogradF4: WinogradConvolution(shape, outputTile: 4, workspace: workspace)
        }
    }
}

/// Conv2d as im2col + sgemm (Conv2d.swift).
public final class Im2colConvolution: ConvolutionAlgorithm {
    public let shape: ConvShape
    private let workspace: Workspace
    public var name: String { "im2col" }

    public init(_ shape: ConvShape, workspace: Workspace) {
        self.shape = shape; self.workspace = workspace
        workspace.reserve(shape.columnsCount)
    }

    public func forward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, batch: Int, moments: UnsafeMutablePointer<Double>?) {
        let s = shape.with(batch: batch)
        conv2dForward(output: output, input: input, weight: weight, bias: bias, columns: workspace.pointer, shape: s)
        if let moments { channelMoments(moments, output, channels: s.outChannels, count: s.positions) }
    }

    public func backward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                         input: UnsafePointer<Float>, weight: UnsafePointer<Float>, batch: Int) {
        conv2dBackward(inputGrad: inputGrad, weightGrad: weightGrad, biasGrad: biasGrad, outputGrad: outputGrad,
                       input: input, weight: weight, columns: workspace.pointer, shape: shape.with(batch: batch))
    }
}

/// ConvTranspose2d as sgemm + col2im (ConvTranspose2d.swift).
public final class Im2colTransposedConvolution: ConvolutionAlgorithm {
    public let shape: ConvTransposeShape
    private let workspace: Workspace
    public var name: String { "im2col" }

    public init(_ shape: ConvTransposeShape, workspace: Workspace) {
        self.shape = shape; self.workspace = workspace
        workspace.reserve(shape.columnsCount)
    }

    public func forward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, batch: Int, moments: UnsafeMutablePointer<Double>?) {
        let s = shape.with(batch: batch)
        convTranspose2dForward(output: output, input: input, weight: weight, bias: bias, columns: workspace.pointer, shape: s)
        if let moments { channelMoments(moments, output, channels: s.outChannels, count: s.positions) }
    }

    public func backward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                         input: UnsafePointer<Float>, weight: UnsafePointer<Float>, batch: Int) {
        convTranspose2dBackward(inputGrad: inputGrad, weightGrad: weightGrad, biasGrad: biasGrad, outputGrad: outputGrad,
                                input: input, weight: weight, columns: workspace.pointer, shape: shape.with(batch: batch))
    }
}
