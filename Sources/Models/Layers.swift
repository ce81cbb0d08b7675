import Tensor

/// Raw pointers to a model's three flat buffers, handed to each layer.
public struct ModelPointers {
    public let parameters: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    public let buffers: UnsafeMutablePointer<Float>
    /// Called after each layer's backward with that layer's lowest parameter offset: from there to the
    /// end of the buffer every gradient is final (backward visits layers in reverse table order).
    public let gradientsReady: ((Int) -> Void)?
    /// When set, BatchNorm in train mode sums its statistics over the ranks with it (SyncBatchNorm).
    public let reduceStatistics: ((UnsafeMutablePointer<Double>, Int) -> Void)?
}

/// Conv2d(k = 3 with padding 1, or k = 1) with bias: `name.weight` [Cout, Cin, k, k], `name.bias` [Cout].
public struct Conv2dLayer: Sendable {
    public let inChannels, outChannels, kernel: Int
    let weight, bias: Int

    public init(_ table: inout ParameterTable, _ name: String, inChannels: Int, outChannels: Int, kernel: Int) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.kernel = kernel
        let bound = 1 / Float(inChannels * kernel * kernel).squareRoot()
        weight = table.add("\(name).weight", shape: [outChannels, inChannels, kernel, kernel], initialization: .uniform(bound: bound))
        bias = table.add("\(name).bias", shape: [outChannels], initialization: .uniform(bound: bound))
    }

    public func shape(batch: Int, height: Int, width: Int) -> ConvShape {
        ConvShape(batch: batch, inChannels: inChannels, outChannels: outChannels, height: height, width: width, kernel: kernel)
    }

    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                 columns: UnsafeMutablePointer<Float>, batch: Int, height: Int, width: Int) {
        conv2dForward(output: output, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                      columns: columns, shape: shape(batch: batch, height: height, width: width))
    }

    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>, batch: Int, height: Int, width: Int,
                  accumulate: Bool) {
        conv2dBackward(inputGrad: inputGrad, weightGrad: m.gradients + weight, biasGrad: m.gradients + bias,
                       outputGrad: outputGrad, input: input, weight: m.parameters + weight, columns: columns,
                       shape: shape(batch: batch, height: height, width: width), accumulate: accumulate)
        m.gradientsReady?(weight)
    }
}

/// Linear with bias: `name.weight` [out, in], `name.bias` [out].
public struct LinearLayer: Sendable {
    public let inFeatures, outFeatures: Int
    let weight, bias: Int

    public init(_ table: inout ParameterTable, _ name: String, inFeatures: Int, outFeatures: Int) {
        self.inFeatures = inFeatures; self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = table.add("\(name).weight", shape: [outFeatures, inFeatures], initialization: .uniform(bound: bound))
        bias = table.add("\(name).bias", shape: [outFeatures], initialization: .uniform(bound: bound))
    }

    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int) {
        linearForward(output: output, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                      batch: batch, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, batch: Int, accumulate: Bool) {
        linearBackward(inputGrad: inputGrad, weightGrad: m.gradients + weight, biasGrad: m.gradients + bias,
                       outputGrad: outputGrad, input: input, weight: m.parameters + weight,
                       batch: batch, inFeatures: inFeatures, outFeatures: outFeatures, accumulate: accumulate)
        m.gradientsReady?(weight)
    }
}

/// BatchNorm2d (affine, eps 1e-5, momentum 0.1) fused with the ReLU that follows it: `name.weight`,
/// `name.bias` are parameters, `name.running_mean`, `name.running_var` are buffers.
public struct BatchNormLayer: @unchecked Sendable {
    public let channels: Int
    let weight, bias, runningMean, runningVar: Int
    /// Batch mean and 1/√(var + ε) of the last train-mode forward pass, for its backward pass.
    let saved: FloatBuffer
    /// Per-channel sums exchanged by SyncBatchNorm.
    let syncScratch: DoubleBuffer

    public init(_ table: inout ParameterTable, buffers: inout ParameterTable, _ name: String, channels: Int) {
        self.channels = channels
        weight = table.add("\(name).weight", shape: [channels], initialization: .constant(1))
        bias = table.add("\(name).bias", shape: [channels], initialization: .constant(0))
        runningMean = buffers.add("\(name).running_mean", shape: [channels], initialization: .constant(0))
        runningVar = buffers.add("\(name).running_var", shape: [channels], initialization: .constant(1))
        saved = FloatBuffer(count: 2 * channels)
        syncScratch = DoubleBuffer(count: 2 * channels + 1)
    }

    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                 valuesPerChannel: Int, training: Bool) {
        let s = BatchNormShape(channels: channels, valuesPerChannel: valuesPerChannel)
        if training, let reduce = m.reduceStatistics {
            batchNormSyncTrainForward(output: output, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                                      runningMean: m.buffers + runningMean, runningVar: m.buffers + runningVar,
                                      savedMean: saved.pointer, savedInvStd: saved.pointer + channels, shape: s, relu: true,
                                      scratch: syncScratch.pointer, reduce: reduce)
        } else if training {
            batchNormTrainForward(output: output, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                                  runningMean: m.buffers + runningMean, runningVar: m.buffers + runningVar,
                                  savedMean: saved.pointer, savedInvStd: saved.pointer + channels, shape: s, relu: true)
        } else {
            batchNormEvalForward(output: output, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                                 runningMean: m.buffers + runningMean, runningVar: m.buffers + runningVar, shape: s, relu: true)
        }
    }

    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, valuesPerChannel: Int, accumulate: Bool) {
        if let reduce = m.reduceStatistics {
            batchNormSyncTrainBackward(inputGrad: inputGrad, weightGrad: m.gradients + weight, biasGrad: m.gradients + bias,
                                       outputGrad: outputGrad, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                                       savedMean: saved.pointer, savedInvStd: saved.pointer + channels,
                                       shape: BatchNormShape(channels: channels, valuesPerChannel: valuesPerChannel),
                                       relu: true, accumulate: accumulate, scratch: syncScratch.pointer, reduce: reduce)
            m.gradientsReady?(weight)
            return
        }
        batchNormTrainBackward(inputGrad: inputGrad, weightGrad: m.gradients + weight, biasGrad: m.gradients + bias,
                               outputGrad: outputGrad, input: input, weight: m.parameters + weight, bias: m.parameters + bias,
                               savedMean: saved.pointer, savedInvStd: saved.pointer + channels,
                               shape: BatchNormShape(channels: channels, valuesPerChannel: valuesPerChannel),
                               relu: true, accumulate: accumulate)
        m.gradientsReady?(weight)
    }
}
