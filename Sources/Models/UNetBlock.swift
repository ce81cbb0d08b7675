import Tensor

/// The U-Net's Block(cin → cout), used for down, bottleneck and up blocks alike:
///   h = ReLU(BN1(conv1(x))) + time_mlp(emb)[:, :, None, None];  y = ReLU(BN2(conv2(h)))
/// Activations are CNHW and sized once for the model's batch capacity at this block's resolution.
final class UNetBlock {
    let conv1: Conv2dLayer, bn1: BatchNormLayer, timeMLP: LinearLayer, conv2: Conv2dLayer, bn2: BatchNormLayer
    let inChannels, outChannels, height, width: Int
    private let conv1Output, hidden, conv2Output: FloatBuffer   // [cout, N, H, W]
    private let timeProjection, timeProjectionGrad: FloatBuffer // [N, cout]

    init(_ table: inout ParameterTable, buffers: inout ParameterTable, name: String,
         inChannels: Int, outChannels: Int, height: Int, width: Int, batchCapacity: Int) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.height = height; self.width = width
        conv1 = Conv2dLayer(&table, "\(name).conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3)
        bn1 = BatchNormLayer(&table, buffers: &buffers, "\(name).bn1", channels: outChannels)
        timeMLP = LinearLayer(&table, "\(name).time_mlp", inFeatures: timeEmbeddingDimension, outFeatures: outChannels)
        conv2 = Conv2dLayer(&table, "\(name).conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3)
        bn2 = BatchNormLayer(&table, buffers: &buffers, "\(name).bn2", channels: outChannels)
        let activations = outChannels * batchCapacity * height * width
        conv1Output = FloatBuffer(count: activations); hidden = FloatBuffer(count: activations)
        conv2Output = FloatBuffer(count: activations)
        timeProjection = FloatBuffer(count: batchCapacity * outChannels)
        timeProjectionGrad = FloatBuffer(count: batchCapacity * outChannels)
    }

    /// Largest column scratch either convolution needs.
    func columnsCount(batch: Int) -> Int {
        max(conv1.shape(batch: batch, height: height, width: width).columnsCount,
            conv2.shape(batch: batch, height: height, width: width).columnsCount)
    }

    /// Size of one [cout, N, H, W] activation.
    func outputCount(batch: Int) -> Int { outChannels * batch * height * width }

    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                 embedding: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>, batch: Int, training: Bool) {
        let plane = height * width, perChannel = batch * plane
        conv1.forward(m, output: conv1Output.pointer, input: input, columns: columns, batch: batch, height: height, width: width)
        bn1.forward(m, output: hidden.pointer, input: conv1Output.pointer, valuesPerChannel: perChannel, training: training)
        timeMLP.forward(m, output: timeProjection.pointer, input: embedding, batch: batch)
        addPerChannel(hidden.pointer, timeProjection.pointer, channels: outChannels, batch: batch, plane: plane)
        conv2.forward(m, output: conv2Output.pointer, input: hidden.pointer, columns: columns, batch: batch, height: height, width: width)
        bn2.forward(m, output: output, input: conv2Output.pointer, valuesPerChannel: perChannel, training: training)
    }

    /// The forward pass read in reverse. `scratchA`, `scratchB` hold one [cout, N, H, W] activation each.
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, embedding: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>,
                  scratchA: UnsafeMutablePointer<Float>, scratchB: UnsafeMutablePointer<Float>, batch: Int, accumulate: Bool) {
        let plane = height * width, perChannel = batch * plane
        bn2.backward(m, inputGrad: scratchA, outputGrad: outputGrad, input: conv2Output.pointer,
                     valuesPerChannel: perChannel, accumulate: accumulate)
        conv2.backward(m, inputGrad: scratchB, outputGrad: scratchA, input: hidden.pointer, columns: columns,
                       batch: batch, height: height, width: width, accumulate: accumulate)
        // scratchB is now d(hidden): it flows unchanged to the time projection and to BN1's ReLU output.
        addPerChannelBackward(addGrad: timeProjectionGrad.pointer, xGrad: scratchB, channels: outChannels, batch: batch, plane: plane)
        timeMLP.backward(m, inputGrad: nil, outputGrad: timeProjectionGrad.pointer, input: embedding, batch: batch, accumulate: accumulate)
        bn1.backward(m, inputGrad: scratchA, outputGrad: scratchB, input: conv1Output.pointer,
                     valuesPerChannel: perChannel, accumulate: accumulate)
        conv1.backward(m, inputGrad: inputGrad, outputGrad: scratchA, input: input, columns: columns,
                       batch: batch, height: height, width: width, accumulate: accumulate)
    }

    var multiplyAccumulatesPerImage: Int {
        conv1.shape(batch: 1, height: height, width: width).multiplyAccumulates
            + conv2.shape(batch: 1, height: height, width: width).multiplyAccumulates
            + timeEmbeddingDimension * outChannels
    }
}
