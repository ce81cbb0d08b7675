import Tensor

/// The U-Net's Block(cin → cout), used for down, bottleneck and up blocks alike:
///   h = ReLU(BN1(conv1(x))) + time_mlp(emb)[:, :, None, None];  y = ReLU(BN2(conv2(h)))
/// Activations and their gradients are CNHW and sized once for the model's batch capacity at this
/// block's resolution. Fused: each convolution hands its output's per-channel sums to its BatchNorm,
/// and BN1 adds the time projection as it writes h.
final class UNetBlock {
    let conv1: Conv2d, bn1: BatchNormLayer, timeMLP: LinearLayer, conv2: Conv2d, bn2: BatchNormLayer
    let inChannels, outChannels, height, width: Int
    private let conv1Output, hidden, conv2Output: FloatBuffer           // [cout, N, H, W]
    private let conv1OutputGrad, hiddenGrad, conv2OutputGrad: FloatBuffer
    private let timeProjection, timeProjectionGrad: FloatBuffer         // [N, cout]
    private let conv1Moments, conv2Moments: DoubleBuffer                // [2, cout]: Σ, Σ² per channel

    init(_ b: ModelBuilder, name: String, inChannels: Int, outChannels: Int, height: Int, width: Int) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.height = height; self.width = width
        conv1 = Conv2d(b, "\(name).conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3, height: height, width: width)
        bn1 = BatchNormLayer(b, "\(name).bn1", channels: outChannels, activation: .relu)
        timeMLP = LinearLayer(b, "\(name).time_mlp", inFeatures: timeEmbeddingDimension, outFeatures: outChannels)
        conv2 = Conv2d(b, "\(name).conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3, height: height, width: width)
        bn2 = BatchNormLayer(b, "\(name).bn2", channels: outChannels, activation: .relu)
        let activations = conv1.outputCount
        conv1Output = b.activation(activations); hidden = b.activation(activations); conv2Output = b.activation(activations)
        conv1OutputGrad = b.gradient(activations); hiddenGrad = b.gradient(activations); conv2OutputGrad = b.gradient(activations)
        timeProjection = b.activation(b.batchCapacity * outChannels)
        timeProjectionGrad = b.gradient(b.batchCapacity * outChannels)
        conv1Moments = DoubleBuffer(count: 2 * outChannels); conv2Moments = DoubleBuffer(count: 2 * outChannels)
    }

    private var timeShift: ChannelShift { ChannelShift(values: timeProjection.pointer, plane: height * width) }

    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                 embedding: UnsafePointer<Float>, batch: Int, training: Bool) {
        let perChannel = batch * height * width
        // Moments only in train mode: eval-mode BatchNorm uses the running statistics.
        conv1.forward(m, output: conv1Output.pointer, input: input, batch: batch, moments: training ? conv1Moments.pointer : nil)
        timeMLP.forward(m, output: timeProjection.pointer, input: embedding, batch: batch)
        bn1.forward(m, output: hidden.pointer, input: conv1Output.pointer, valuesPerChannel: perChannel, training: training,
                    moments: conv1Moments.pointer, shift: timeShift)
        conv2.forward(m, output: conv2Output.pointer, input: hidden.pointer, batch: batch, moments: training ? conv2Moments.pointer : nil)
        bn2.forward(m, output: output, input: conv2Output.pointer, valuesPerChannel: perChannel, training: training,
                    moments: conv2Moments.pointer)
    }

    /// The forward pass read in reverse; adds into `inputGrad`.
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, embedding: UnsafePointer<Float>, batch: Int) {
        let perChannel = batch * height * width
        bn2.backward(m, inputGrad: conv2OutputGrad.pointer, outputGrad: outputGrad, input: conv2Output.pointer, valuesPerChannel: perChannel)
        conv2.backward(m, inputGrad: hiddenGrad.pointer, outputGrad: conv2OutputGrad.pointer, input: hidden.pointer, batch: batch)
        // d(hidden) flows unchanged to the time projection and to BN1's ReLU output. why not summed inside
        // BN1's backward: the time MLP's gradients must be final before BN1 reports its own as final.
        addPerChannelBackward(addGrad: timeProjectionGrad.pointer, xGrad: hiddenGrad.pointer, channels: outChannels, batch: batch,
                              plane: height * width)
        timeMLP.backward(m, inputGrad: nil, outputGrad: timeProjectionGrad.pointer, input: embedding, batch: batch)
        bn1.backward(m, inputGrad: conv1OutputGrad.pointer, outputGrad: hiddenGrad.pointer, input: conv1Output.pointer,
                     valuesPerChannel: perChannel)
        conv1.backward(m, inputGrad: inputGrad, outputGrad: conv1OutputGrad.pointer, input: input, batch: batch)
    }

    var multiplyAccumulatesPerImage: Int {
        conv1.multiplyAccumulatesPerImage + conv2.multiplyAccumulatesPerImage + timeEmbeddingDimension * outChannels
    }
}
