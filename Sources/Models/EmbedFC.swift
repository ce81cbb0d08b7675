import Tensor

/// ContextUnet's EmbedFC(i → e): `name.model.0` Linear(i → e), GELU, `name.model.2` Linear(e → e), on
/// rows [N, i] (the time t/T or the context vector), giving [N, e]. MyUNet's time MLPs te* are the same
/// with SiLU and the names `te*.0`, `te*.2`.
final class EmbedFC {
    let first: LinearLayer, second: LinearLayer
    let activation: Activation
    /// [N, e]: before and after the activation, and the output; the caller adds into `outputGrad`.
    let preActivation, hidden, output: FloatBuffer
    let preActivationGrad, hiddenGrad, outputGrad: FloatBuffer

    /// ContextUnet's: `name.model.0`, GELU, `name.model.2`.
    convenience init(_ b: ModelBuilder, _ name: String, inFeatures: Int, outFeatures: Int) {
        self.init(b, first: "\(name).model.0", second: "\(name).model.2", inFeatures: inFeatures, outFeatures: outFeatures,
                  activation: .gelu)
    }

    /// Linear `first`, `activation`, Linear `second` (the full names of the two layers).
    init(_ b: ModelBuilder, first firstName: String, second secondName: String, inFeatures: Int, outFeatures: Int,
         activation: Activation) {
        self.activation = activation
        first = LinearLayer(b, firstName, inFeatures: inFeatures, outFeatures: outFeatures)
        second = LinearLayer(b, secondName, inFeatures: outFeatures, outFeatures: outFeatures)
        let count = b.batchCapacity * outFeatures
        preActivation = b.activation(count); hidden = b.activation(count); output = b.activation(count)
        preActivationGrad = b.gradient(count); hiddenGrad = b.gradient(count); outputGrad = b.gradient(count)
    }

    func forward(_ m: ModelPointers, input: UnsafePointer<Float>, batch: Int) {
        first.forward(m, output: preActivation.pointer, input: input, batch: batch)
        activationForward(activation, output: hidden.pointer, input: preActivation.pointer, count: batch * first.outFeatures)
        second.forward(m, output: output.pointer, input: hidden.pointer, batch: batch)
    }

    /// From what the decoder added into `outputGrad`; the input (a model input) gets no gradient.
    func backward(_ m: ModelPointers, input: UnsafePointer<Float>, batch: Int) {
        second.backward(m, inputGrad: hiddenGrad.pointer, outputGrad: outputGrad.pointer, input: hidden.pointer, batch: batch)
        activationBackward(activation, inputGrad: preActivationGrad.pointer, outputGrad: hiddenGrad.pointer,
                           input: preActivation.pointer, count: batch * first.outFeatures)
        first.backward(m, inputGrad: nil, outputGrad: preActivationGrad.pointer, input: input, batch: batch)
    }

    var multiplyAccumulatesPerImage: Int { first.inFeatures * first.outFeatures + second.inFeatures * second.outFeatures }
}
