import Tensor

/// BatchNorm2d over CNHW activations with the activation that follows it fused in (the U-Net's ReLU;
/// `.identity` for a plain BatchNorm): `name.weight`, `name.bias` are parameters when `affine`,
/// `name.running_mean`, `name.running_var` are buffers. PyTorch's defaults: eps 1e-5, momentum 0.1.
public struct BatchNormLayer: @unchecked Sendable {
    public let channels: Int
    public let activation: Activation
    public let affine: Bool
    let epsilon, momentum: Float
    let weight, bias, runningMean, runningVar: Int
    /// Batch mean and 1/√(var + ε) of the last train-mode forward pass, for its backward pass.
    let saved: FloatBuffer
    /// Per-channel sums exchanged by SyncBatchNorm.
    let syncScratch: DoubleBuffer

    public init(_ b: ModelBuilder, _ name: String, channels: Int, activation: Activation, affine: Bool = true,
                epsilon: Float = 1e-5, momentum: Float = 0.1) {
        self.channels = channels; self.activation = activation; self.affine = affine
        self.epsilon = epsilon; self.momentum = momentum
        weight = affine ? b.parameters.add("\(name).weight", shape: [channels], initialization: .constant(1)) : -1
        bias = affine ? b.parameters.add("\(name).bias", shape: [channels], initialization: .constant(0)) : -1
        runningMean = b.buffers.add("\(name).running_mean", shape: [channels], initialization: .constant(0))
        runningVar = b.buffers.add("\(name).running_var", shape: [channels], initialization: .constant(1))
        saved = FloatBuffer(count: 2 * channels)
        syncScratch = DoubleBuffer(count: 2 * channels + 1)
    }

    private func shape(_ valuesPerChannel: Int) -> BatchNormShape {
        BatchNormShape(channels: channels, valuesPerChannel: valuesPerChannel, epsilon: epsilon, momentum: momentum)
    }
    private func gamma(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float>? { affine ? p + weight : nil }
    private func beta(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float>? { affine ? p + bias : nil }

    /// `moments`: the input's per-channel Σx, Σx² when the layer before computed them (Conv2d does);
    /// `shift`: a per-image, per-channel value added after the activation (UNetBlock's time projection).
    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                 valuesPerChannel: Int, training: Bool, moments: UnsafePointer<Double>? = nil, shift: ChannelShift? = nil) {
        let s = shape(valuesPerChannel), p = m.parameters
        if training, let reduce = m.reduceStatistics {
            batchNormSyncTrainForward(output: output, input: input, weight: gamma(p), bias: beta(p),
                                      runningMean: m.buffers + runningMean, runningVar: m.buffers + runningVar,
                                      savedMean: saved.pointer, savedInvStd: saved.pointer + channels, shape: s,
                                      activation: activation, scratch: syncScratch.pointer, reduce: reduce,
                                      moments: moments, shift: shift)
        } else if training {
            batchNormTrainForward(output: output, input: input, weight: gamma(p), bias: beta(p),
                                  runningMean: m.buffers + runningMean, runningVar: m.buffers + runningVar,
                                  savedMean: saved.pointer, savedInvStd: saved.pointer + channels, shape: s, activation: activation,
                                  moments: moments, shift: shift)
        } else {
            batchNormEvalForward(output: output, input: input, weight: gamma(p), bias: beta(p),
                                 runningMean: m.buffers + runningMean, runningVar: m.buffers + runningVar, shape: s,
                                 activation: activation, shift: shift)
        }
    }

    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, valuesPerChannel: Int) {
        let s = shape(valuesPerChannel), p = m.parameters, g = m.gradients
        if let reduce = m.reduceStatistics {
            batchNormSyncTrainBackward(inputGrad: inputGrad, weightGrad: gamma(g), biasGrad: beta(g), outputGrad: outputGrad,
                                       input: input, weight: gamma(p), bias: beta(p),
                                       savedMean: saved.pointer, savedInvStd: saved.pointer + channels, shape: s,
                                       activation: activation, scratch: syncScratch.pointer, reduce: reduce)
        } else {
            batchNormTrainBackward(inputGrad: inputGrad, weightGrad: gamma(g), biasGrad: beta(g), outputGrad: outputGrad,
                                   input: input, weight: gamma(p), bias: beta(p),
                                   savedMean: saved.pointer, savedInvStd: saved.pointer + channels, shape: s, activation: activation)
        }
        if affine { m.gradientsReady?(weight) }
    }
}
