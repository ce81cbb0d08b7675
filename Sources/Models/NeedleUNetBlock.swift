import Tensor

/// The needle U-Net's UnetBlock(i → o) at one resolution (ZOO.md §3), τ the model's time embedding [N, d]:
///   h = bnorm1(ReLU(conv1 x)) + ReLU(time_mlp τ)[:, :, None, None]
///   h = bnorm2(ReLU(conv2 h));  y = transform(h)
/// transform is MaxPool2d(2) going down and ConvTranspose2d k4 s2 p1 (o → o) going up; an up block's
/// conv1 reads the concatenation [x, skip], so its `inChannels` is already the doubled 2i.
/// BatchNorm follows the ReLU here (the reverse of UNetBlock), so each ReLU is a pass of its own, run in
/// place on the convolution's output, and the BatchNorms are plain (`.identity`); bnorm1 adds the time
/// projection as it writes h. Activations CNHW, sized once for the model's batch capacity.
final class NeedleUNetBlock {
    enum Direction { case down, up }

    // Registered in the order whose reverse is the backward pass's (the gradient-ready order, Layer.swift);
    // the state_dict names are PyTorch's whatever the order.
    let conv1: Conv2d, bnorm1: BatchNormLayer, timeMLP: LinearLayer, conv2: Conv2d, bnorm2: BatchNormLayer
    /// The up blocks' ConvTranspose2d; nil going down (MaxPool2d has no parameters).
    let transform: ConvTranspose2d?
    let direction: Direction
    let outChannels, height, width: Int
    // [o, N, H, W]: each convolution's output, rectified in place (BatchNorm's input; the ReLU's output marks
    // where its input was positive, which is all its backward needs), h, and bnorm2's output.
    private let conv1Rectified, hidden, conv2Rectified, normalized: FloatBuffer
    private let conv1Grad, conv1RectifiedGrad, hiddenGrad, conv2Grad, conv2RectifiedGrad, normalizedGrad: FloatBuffer
    private let timeShift, timeShiftGrad, timeProjectionGrad: FloatBuffer   // [N, o]: ReLU(time_mlp τ) in place
    /// MaxPool2d's window positions, one per output value; empty going up.
    private let poolArgmax: UnsafeMutablePointer<UInt8>

    init(_ b: ModelBuilder, _ name: String, inChannels: Int, outChannels: Int, timeDimension: Int,
         height: Int, width: Int, direction: Direction) {
        self.direction = direction; self.outChannels = outChannels; self.height = height; self.width = width
        conv1 = Conv2d(b, "\(name).conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3, height: height, width: width)
        bnorm1 = BatchNormLayer(b, "\(name).bnorm1", channels: outChannels, activation: .identity)
        timeMLP = LinearLayer(b, "\(name).time_mlp", inFeatures: timeDimension, outFeatures: outChannels)
        conv2 = Conv2d(b, "\(name).conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3, height: height, width: width)
        bnorm2 = BatchNormLayer(b, "\(name).bnorm2", channels: outChannels, activation: .identity)
        transform = direction == .up
            ? ConvTranspose2d(b, "\(name).transform", inChannels: outChannels, outChannels: outChannels, kernel: 4, stride: 2,
                              padding: 1, height: height, width: width)
            : nil
        let count = conv1.outputCount
        conv1Rectified = b.activation(count); hidden = b.activation(count)
        conv2Rectified = b.activation(count); normalized = b.activation(count)
        conv1Grad = b.gradient(count); conv1RectifiedGrad = b.gradient(count); hiddenGrad = b.gradient(count)
        conv2Grad = b.gradient(count); conv2RectifiedGrad = b.gradient(count); normalizedGrad = b.gradient(count)
        timeShift = b.activation(b.batchCapacity * outChannels)
        timeShiftGrad = b.gradient(b.batchCapacity * outChannels); timeProjectionGrad = b.gradient(b.batchCapacity * outChannels)
        let pooled = direction == .down ? count / 4 : 0
        poolArgmax = .allocate(capacity: max(pooled, 1)); poolArgmax.initialize(repeating: 0, count: max(pooled, 1))
    }

    deinit { poolArgmax.deallocate() }

    /// Floats of one output activation at the batch capacity: [o, N, H/2, W/2] down, [o, N, 2H, 2W] up.
    var outputCount: Int { direction == .down ? conv1.outputCount / 4 : transform!.outputCount }

    /// output = the block of `input`; `timeEmbedding` is τ [N, d].
    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                 timeEmbedding: UnsafePointer<Float>, batch: Int, training: Bool) {
        let perChannel = batch * height * width, count = outChannels * perChannel
        conv1.forward(m, output: conv1Rectified.pointer, input: input, batch: batch)
        reluForward(output: conv1Rectified.pointer, input: conv1Rectified.pointer, count: count)
        timeMLP.forward(m, output: timeShift.pointer, input: timeEmbedding, batch: batch)
        reluForward(output: timeShift.pointer, input: timeShift.pointer, count: batch * outChannels)
        bnorm1.forward(m, output: hidden.pointer, input: conv1Rectified.pointer, valuesPerChannel: perChannel, training: training,
                       shift: ChannelShift(values: timeShift.pointer, plane: height * width))
        conv2.forward(m, output: conv2Rectified.pointer, input: hidden.pointer, batch: batch)
        reluForward(output: conv2Rectified.pointer, input: conv2Rectified.pointer, count: count)
        bnorm2.forward(m, output: normalized.pointer, input: conv2Rectified.pointer, valuesPerChannel: perChannel, training: training)
        if let transform {
            transform.forward(m, output: output, input: normalized.pointer, batch: batch)
        } else {
            maxPool2x2Forward(output: output, argmax: poolArgmax, input: normalized.pointer, planes: outChannels * batch,
                              height: height, width: width)
        }
    }

    /// The forward pass read in reverse; adds into `inputGrad` and `timeEmbeddingGrad` (the gradient rule).
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, timeEmbedding: UnsafePointer<Float>,
                  timeEmbeddingGrad: UnsafeMutablePointer<Float>, batch: Int) {
        let perChannel = batch * height * width, count = outChannels * perChannel
        if let transform {
            transform.backward(m, inputGrad: normalizedGrad.pointer, outputGrad: outputGrad, input: normalized.pointer, batch: batch)
        } else {
            maxPool2x2Backward(inputGrad: normalizedGrad.pointer, outputGrad: outputGrad, argmax: poolArgmax,
                               planes: outChannels * batch, height: height, width: width)
        }
        bnorm2.backward(m, inputGrad: conv2RectifiedGrad.pointer, outputGrad: normalizedGrad.pointer, input: conv2Rectified.pointer,
                        valuesPerChannel: perChannel)
        reluBackward(inputGrad: conv2Grad.pointer, outputGrad: conv2RectifiedGrad.pointer, output: conv2Rectified.pointer, count: count)
        conv2.backward(m, inputGrad: hiddenGrad.pointer, outputGrad: conv2Grad.pointer, input: hidden.pointer, batch: batch)
        // d(h) reaches the time projection unchanged. why before bnorm1: time_mlp comes after bnorm1 in the
        // table, so its gradients must be final before bnorm1 reports its own as final.
        addPerChannelBackward(addGrad: timeShiftGrad.pointer, xGrad: hiddenGrad.pointer, channels: outChannels, batch: batch,
                              plane: height * width)
        reluBackward(inputGrad: timeProjectionGrad.pointer, outputGrad: timeShiftGrad.pointer, output: timeShift.pointer,
                     count: batch * outChannels)
        timeMLP.backward(m, inputGrad: timeEmbeddingGrad, outputGrad: timeProjectionGrad.pointer, input: timeEmbedding, batch: batch)
        bnorm1.backward(m, inputGrad: conv1RectifiedGrad.pointer, outputGrad: hiddenGrad.pointer, input: conv1Rectified.pointer,
                        valuesPerChannel: perChannel)
        reluBackward(inputGrad: conv1Grad.pointer, outputGrad: conv1RectifiedGrad.pointer, output: conv1Rectified.pointer, count: count)
        conv1.backward(m, inputGrad: inputGrad, outputGrad: conv1Grad.pointer, input: input, batch: batch)
    }

    var multiplyAccumulatesPerImage: Int {
        conv1.multiplyAccumulatesPerImage + conv2.multiplyAccumulatesPerImage + timeMLP.inFeatures * timeMLP.outFeatures
            + (transform?.multiplyAccumulatesPerImage ?? 0)
    }
}
