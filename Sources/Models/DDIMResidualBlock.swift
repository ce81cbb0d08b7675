import Tensor

/// The DDIM U-Net's residual block RB(i → w) at one resolution (ZOO.md §5, keras.io's ResidualBlock):
///   s = (i == w) ? x : skip Conv1x1(i→w)(x)
///   y = conv2 Conv3x3(SiLU(conv1 Conv3x3(norm x))) + s
/// norm is BatchNorm2d(i, eps 1e-3, momentum 0.01, affine=False): running statistics only, as Keras's
/// BatchNormalization(center=False, scale=False) with momentum 0.99. Activations CNHW, sized once for the
/// model's batch capacity; an up block's `inChannels` is already that of its concatenation.
final class DDIMResidualBlock {
    static let normEpsilon: Float = 1e-3
    static let normMomentum: Float = 0.01

    // Registered in the order whose reverse is the backward pass's (Layer.swift): skip, norm, conv1, conv2.
    /// The 1×1 projection of the residual; nil when i == w (the residual is x itself).
    let skip: Conv2d?
    let norm: BatchNormLayer
    let conv1, conv2: Conv2d
    let inChannels, outChannels, height, width: Int
    private let silu: ActivationLayer
    // norm's output [i], conv1's output (SiLU's input, kept for its backward) and SiLU's output [w], skip's output [w].
    private let normalized, preActivation, activated, skipOutput: FloatBuffer
    private let normalizedGrad, preActivationGrad, activatedGrad: FloatBuffer

    init(_ b: ModelBuilder, _ name: String, inChannels: Int, outChannels: Int, height: Int, width: Int) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.height = height; self.width = width
        skip = inChannels == outChannels ? nil
            : Conv2d(b, "\(name).skip", inChannels: inChannels, outChannels: outChannels, kernel: 1, height: height, width: width)
        norm = BatchNormLayer(b, "\(name).norm", channels: inChannels, activation: .identity, affine: false,
                              epsilon: Self.normEpsilon, momentum: Self.normMomentum)
        conv1 = Conv2d(b, "\(name).conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3, height: height, width: width)
        conv2 = Conv2d(b, "\(name).conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3, height: height, width: width)
        silu = ActivationLayer(.silu, valuesPerImage: outChannels * height * width)
        let inputCount = inChannels * b.batchCapacity * height * width, count = conv1.outputCount
        normalized = b.activation(inputCount); preActivation = b.activation(count); activated = b.activation(count)
        skipOutput = b.activation(skip == nil ? 0 : count)
        normalizedGrad = b.gradient(inputCount); preActivationGrad = b.gradient(count); activatedGrad = b.gradient(count)
    }

    /// Floats of one output activation at the batch capacity: [w, N, H, W].
    var outputCount: Int { conv2.outputCount }

    /// output[w, N, H, W] = RB(input[i, N, H, W]); `output` must not overlap `input`.
    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int, training: Bool) {
        let perChannel = batch * height * width
        norm.forward(m, output: normalized.pointer, input: input, valuesPerChannel: perChannel, training: training)
        conv1.forward(m, output: preActivation.pointer, input: normalized.pointer, batch: batch)
        silu.forward(output: activated.pointer, input: preActivation.pointer, batch: batch)
        conv2.forward(m, output: output, input: activated.pointer, batch: batch)
        if let skip {
            skip.forward(m, output: skipOutput.pointer, input: input, batch: batch)
            addInPlace(output, skipOutput.pointer, count: outChannels * perChannel)
        } else {
            addInPlace(output, input, count: inChannels * perChannel)
        }
    }

    /// The forward pass read in reverse; adds into `inputGrad` (the gradient rule): the norm's share, then the residual's.
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, batch: Int) {
        let perChannel = batch * height * width
        conv2.backward(m, inputGrad: activatedGrad.pointer, outputGrad: outputGrad, input: activated.pointer, batch: batch)
        silu.backward(inputGrad: preActivationGrad.pointer, outputGrad: activatedGrad.pointer, input: preActivation.pointer, batch: batch)
        conv1.backward(m, inputGrad: normalizedGrad.pointer, outputGrad: preActivationGrad.pointer, input: normalized.pointer, batch: batch)
        norm.backward(m, inputGrad: inputGrad, outputGrad: normalizedGrad.pointer, input: input, valuesPerChannel: perChannel)
        if let skip {
            skip.backward(m, inputGrad: inputGrad, outputGrad: outputGrad, input: input, batch: batch)
        } else {
            addInPlace(inputGrad, outputGrad, count: inChannels * perChannel)
        }
    }

    var multiplyAccumulatesPerImage: Int {
        conv1.multiplyAccumulatesPerImage + conv2.multiplyAccumulatesPerImage + (skip?.multiplyAccumulatesPerImage ?? 0)
    }
}
