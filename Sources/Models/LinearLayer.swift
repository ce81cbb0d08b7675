import Tensor

/// Linear with bias: `name.weight` [out, in], `name.bias` [out].
public struct LinearLayer: Sendable {
    public let inFeatures, outFeatures: Int
    let weight, bias: Int

    public init(_ b: ModelBuilder, _ name: String, inFeatures: Int, outFeatures: Int,
                initialization: LayerInitialization = .pytorchDefault) {
        self.inFeatures = inFeatures; self.outFeatures = outFeatures
        let bound = initialization.weight(fanIn: inFeatures)
        weight = b.parameters.add("\(name).weight", shape: [outFeatures, inFeatures], initialization: bound)
        bias = b.parameters.add("\(name).bias", shape: [outFeatures], initialization: bound)
    }

    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int) {
        linearForward(output: output, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                      batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, batch: Int) {
        linearBackward(inputGrad: inputGrad, weightGrad: m.gradients + weight, biasGrad: m.gradients + bias,
                       outputGrad: outputGrad, input: input, weight: m.parameters + weight,
                       batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
        m.gradientsReady?(weight)
    }
}
