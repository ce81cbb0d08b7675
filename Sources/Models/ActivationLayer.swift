import Tensor

/// A standalone elementwise activation (ReLU, GELU, SiLU) on an activation buffer, for where it cannot
/// be fused into a norm: BatchNorm after a ReLU, a GELU after pooling, SiLU between convolutions.
/// No parameters. Its backward needs the forward pass's INPUT (the pre-activation) kept: the caller must
/// not overwrite it, so the forward pass may not run in place (except a ReLU, whose output marks the same
/// positions as its input: pass the output as `input` to backward then).
public struct ActivationLayer: Sendable {
    public let activation: Activation
    /// C·H·W floats of one image.
    public let valuesPerImage: Int

    public init(_ activation: Activation, valuesPerImage: Int) {
        self.activation = activation; self.valuesPerImage = valuesPerImage
    }

    func forward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int) {
        activationForward(activation, output: output, input: input, count: batch * valuesPerImage)
    }

    /// Adds inputGrad += outputGrad · activation′(input).
    func backward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>, input: UnsafePointer<Float>, batch: Int) {
        activationBackward(activation, inputGrad: inputGrad, outputGrad: outputGrad, input: input, count: batch * valuesPerImage)
    }
}
