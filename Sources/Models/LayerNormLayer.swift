import Tensor

/// LayerNorm((C, H, W)) over CNHW activations of one size (MyUNet's): each image normalised over all
/// its C·H·W values, then the elementwise affine `name.weight`, `name.bias` [C, H, W], initialised to 1 and 0.
public struct LayerNormLayer: @unchecked Sendable {
    public let channels, height, width: Int
    let epsilon: Float
    let weight, bias: Int
    /// Mean and 1/√(var + ε) per image of the last forward pass (room for the batch capacity).
    let saved: FloatBuffer
    let batchCapacity: Int

    public init(_ b: ModelBuilder, _ name: String, channels: Int, height: Int, width: Int, epsilon: Float = 1e-5) {
        self.channels = channels; self.height = height; self.width = width; self.epsilon = epsilon
        weight = b.parameters.add("\(name).weight", shape: [channels, height, width], initialization: .constant(1))
        bias = b.parameters.add("\(name).bias", shape: [channels, height, width], initialization: .constant(0))
        batchCapacity = b.batchCapacity
        saved = FloatBuffer(count: 2 * batchCapacity)
    }

    private func shape(batch: Int) -> LayerNormShape {
        precondition(batch <= batchCapacity, "LayerNorm: batch \(batch) over the capacity \(batchCapacity)")
        return LayerNormShape(batch: batch, channels: channels, plane: height * width, epsilon: epsilon)
    }

    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int) {
        layerNormForward(output: output, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                         savedMean: saved.pointer, savedInvStd: saved.pointer + batchCapacity, shape: shape(batch: batch))
    }

    /// Adds into `inputGrad` and the parameter gradients; needs the forward pass's input.
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, batch: Int) {
        layerNormBackward(inputGrad: inputGrad, weightGrad: m.gradients + weight, biasGrad: m.gradients + bias,
                          outputGrad: outputGrad, input: input, weight: m.parameters + weight,
                          savedMean: saved.pointer, savedInvStd: saved.pointer + batchCapacity, shape: shape(batch: batch))
        m.gradientsReady?(weight)
    }
}
