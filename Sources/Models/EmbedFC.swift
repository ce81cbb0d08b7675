import Tensor

/// ContextUnet's EmbedFC(i → e): `name.model.0` Linear(i → e), GELU, `name.model.2` Linear(e → e), on
/// rows [N, i] (the time t/T or the context vector), giving [N, e].
final class EmbedFC {
    let first: LinearLayer, second: LinearLayer
    /// [N, e]: before and after the GELU, and the output; the caller adds into `outputGrad`.
    let preActivation, hidden, output: FloatBuffer
    let preActivationGrad, hiddenGrad, outputGrad: FloatBuffer

    init(_ b: ModelBuilder, _ name: String, inFeatures: Int, outFeatures: Int) {
        first = LinearLayer(b, "\(name).model.0", inFeatures: inFeatures, outFeatures: outFeatures)
        second = LinearLayer(b, "\(name).model.2", inFeatures: outFeatures, outFeatures: outFeatures)
        let count = b.batchCapacity * outFeatures
        preActivation = b.activation(count); hidden = b.activation(count); output = b.activation(count)
        preActivationGrad = b.gradient(count); hiddenGrad = b.gradient(count); outputGrad = b.gradient(count)
    }

    func forward(_ m: ModelPointers, input: UnsafePointer<Float>, batch: Int) {
        first.forward(m, output: preActivation.pointer, input: input, batch: batch)
        activationForward(.gelu, output: hidden.pointer, input: preActivation.pointer, count: batch * first.outFeatures)
        second.forward(m, output: output.pointer, input: hidden.pointer, batch: batch)
    }

    /// From what the decoder added into `outputGrad`; the input (a model input) gets no gradient.
    func backward(_ m: ModelPointers, input: UnsafePointer<Float>, batch: Int) {
        second.backward(m, inputGrad: hiddenGrad.pointer, outputGrad: outputGrad.pointer, input: hidden.pointer, batch: batch)
        activationBackward(.gelu, inputGrad: preActivationGrad.pointer, outputGrad: hiddenGrad.pointer,
                           input: preActivation.pointer, count: batch * first.outFeatures)
        first.backward(m, inputGrad: nil, outputGrad: preActivationGrad.pointer, input: input, batch: batch)
    }

    var multiplyAccumulatesPerImage: Int { first.inFeatures * first.outFeatures + second.inFeatures * second.outFeatures }
}
