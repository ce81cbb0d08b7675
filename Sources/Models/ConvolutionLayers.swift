import Tensor

/// What Conv2d and ConvTranspose2d share: parameter offsets and an algorithm that runs the passes.
protocol ConvolutionLayer {
    var algorithm: ConvolutionAlgorithm { get }
    var weight: Int { get }
    var bias: Int { get }
}

extension ConvolutionLayer {
    /// `moments`: where to put the output's per-channel Σy, Σy² for a BatchNorm that follows.
    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int,
                 moments: UnsafeMutablePointer<Double>? = nil) {
        algorithm.forward(output: output, input: input, weight: m.parameters + weight, bias: m.parameters + bias, batch: batch,
                          moments: moments)
    }

    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, batch: Int) {
        algorithm.backward(inputGrad: inputGrad, weightGrad: m.gradients + weight, biasGrad: m.gradients + bias,
                           outputGrad: outputGrad, input: input, weight: m.parameters + weight, batch: batch)
        m.gradientsReady?(weight)
    }
}

/// Conv2d with bias, square kernel, stride and zero padding, over activations of one size:
/// `name.weight` [Cout, Cin, k, k], `name.bias` [Cout]. Owns its algorithm (im2col + sgemm by default).
public final class Conv2d: ConvolutionLayer {
    /// The convolution at the model's batch capacity.
    public let shape: ConvShape
    public let algorithm: ConvolutionAlgorithm
    let weight, bias: Int

    public init(_ b: ModelBuilder, _ name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int? = nil, height: Int, width: Int, initialization: LayerInitialization = .pytorchDefault) {
        shape = ConvShape(batch: b.batchCapacity, inChannels: inChannels, outChannels: outChannels, height: height, width: width,
                          kernel: kernel, stride: stride, padding: padding)
        let bound = initialization.weight(fanIn: inChannels * kernel * kernel)
        weight = b.parameters.add("\(name).weight", shape: [outChannels, inChannels, kernel, kernel], initialization: bound)
        bias = b.parameters.add("\(name).bias", shape: [outChannels], initialization: bound)
        algorithm = b.makeConvolution(name, shape)
    }

    public var outChannels: Int { shape.outChannels }
    /// Floats of one output activation at the batch capacity.
    public var outputCount: Int { shape.outChannels * shape.positions }
    public var multiplyAccumulatesPerImage: Int { shape.with(batch: 1).multiplyAccumulates }

}

/// ConvTranspose2d with bias: `name.weight` [Cin, Cout, k, k] (PyTorch's layout), `name.bias` [Cout];
/// output (H − 1)·s − 2p + k high. PyTorch's default initialisation reads fan_in from weight dim 1: Cout·k².
public final class ConvTranspose2d: ConvolutionLayer {
    public let shape: ConvTransposeShape
    public let algorithm: ConvolutionAlgorithm
    let weight, bias: Int

    public init(_ b: ModelBuilder, _ name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, height: Int, width: Int, initialization: LayerInitialization = .pytorchDefault) {
        shape = ConvTransposeShape(batch: b.batchCapacity, inChannels: inChannels, outChannels: outChannels, height: height,
                                   width: width, kernel: kernel, stride: stride, padding: padding)
        let bound = initialization.weight(fanIn: outChannels * kernel * kernel)
        weight = b.parameters.add("\(name).weight", shape: [inChannels, outChannels, kernel, kernel], initialization: bound)
        bias = b.parameters.add("\(name).bias", shape: [outChannels], initialization: bound)
        algorithm = Im2colTransposedConvolution(shape, workspace: b.workspace)
    }

    public var outputCount: Int { shape.outChannels * shape.positions }
    public var multiplyAccumulatesPerImage: Int { shape.with(batch: 1).multiplyAccumulates }

}
