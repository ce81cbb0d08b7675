import Tensor

/// MyUNet's MyBlock(shape (i, H, W), i → o, normalize) (ZOO.md §4):
///   y = SiLU(conv2(SiLU(conv1(normalize ? ln(x) : x))))
/// `name.ln` LayerNorm((i, H, W)) with elementwise affine, `name.conv1` Conv3x3 p1 (i → o), `name.conv2`
/// Conv3x3 p1 (o → o). Without `normalize` the LayerNorm is still built (it is in the state_dict and
/// counted) but never read: its gradient stays 0. Activations CNHW, sized once for the batch capacity;
/// the SiLUs run out of place, since their backward needs the pre-activations.
final class MyBlock {
    let ln: LayerNormLayer, conv1: Conv2d, conv2: Conv2d
    let normalize: Bool
    let inChannels, outChannels, height, width: Int
    private let normalized, conv1Output, hidden, conv2Output: FloatBuffer
    private let normalizedGrad, conv1OutputGrad, hiddenGrad, conv2OutputGrad: FloatBuffer

    init(_ b: ModelBuilder, _ name: String, inChannels: Int, outChannels: Int, height: Int, width: Int, normalize: Bool = true) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.height = height; self.width = width
        self.normalize = normalize
        ln = LayerNormLayer(b, "\(name).ln", channels: inChannels, height: height, width: width)
        conv1 = Conv2d(b, "\(name).conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3, padding: 1, height: height, width: width)
        conv2 = Conv2d(b, "\(name).conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3, padding: 1, height: height, width: width)
        let inputCount = inChannels * b.batchCapacity * height * width, count = conv1.outputCount
        normalized = b.activation(normalize ? inputCount : 0); normalizedGrad = b.gradient(normalize ? inputCount : 0)
        conv1Output = b.activation(count); hidden = b.activation(count); conv2Output = b.activation(count)
        conv1OutputGrad = b.gradient(count); hiddenGrad = b.gradient(count); conv2OutputGrad = b.gradient(count)
    }

    /// Floats of the output at the batch capacity: [o, N, H, W].
    var outputCount: Int { conv1.outputCount }

    /// output = the block of `input` [i, N, H, W]; `input` must stay unchanged until `backward`.
    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int) {
        let count = outChannels * batch * height * width
        var convInput = input
        if normalize {
            ln.forward(m, output: normalized.pointer, input: input, batch: batch)
            convInput = UnsafePointer(normalized.pointer)
        }
        conv1.forward(m, output: conv1Output.pointer, input: convInput, batch: batch)
        activationForward(.silu, output: hidden.pointer, input: conv1Output.pointer, count: count)
        conv2.forward(m, output: conv2Output.pointer, input: hidden.pointer, batch: batch)
        activationForward(.silu, output: output, input: conv2Output.pointer, count: count)
    }

    /// The forward pass read in reverse; adds into `inputGrad` (the gradient rule, Layer.swift).
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, batch: Int) {
        let count = outChannels * batch * height * width
        activationBackward(.silu, inputGrad: conv2OutputGrad.pointer, outputGrad: outputGrad, input: conv2Output.pointer, count: count)
        conv2.backward(m, inputGrad: hiddenGrad.pointer, outputGrad: conv2OutputGrad.pointer, input: hidden.pointer, batch: batch)
        activationBackward(.silu, inputGrad: conv1OutputGrad.pointer, outputGrad: hiddenGrad.pointer, input: conv1Output.pointer, count: count)
        if normalize {
            conv1.backward(m, inputGrad: normalizedGrad.pointer, outputGrad: conv1OutputGrad.pointer, input: normalized.pointer, batch: batch)
            ln.backward(m, inputGrad: inputGrad, outputGrad: normalizedGrad.pointer, input: input, batch: batch)
        } else {
            conv1.backward(m, inputGrad: inputGrad, outputGrad: conv1OutputGrad.pointer, input: input, batch: batch)
            // The unused LayerNorm's gradient (0) is final too: from its offset on, this block is done.
            m.gradientsReady?(ln.weight)
        }
    }

    var multiplyAccumulatesPerImage: Int { conv1.multiplyAccumulatesPerImage + conv2.multiplyAccumulatesPerImage }
}
