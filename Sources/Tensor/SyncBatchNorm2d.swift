// BatchNorm2d in train mode with statistics over every rank's batch (SyncBatchNorm): the per-channel
// sums are combined by `reduce` (an allreduce sum over the ranks) so that N ranks × batch b compute
// what one rank with batch N·b would. Forward: one reduction of (Σx, Σx²) when the convolution before
// gave them, else two (Σx, then Σ(x − mean)², for the accuracy of a two-pass kernel); backward one
// (Σg, Σg·x̂). Weight and bias gradients stay
// local sums: the gradient allreduce that follows combines them.

/// `scratch` holds at least 2·channels + 1 Doubles. With `moments` (the local Σx, Σx², see
/// `batchNormTrainForward`) one reduction of those; without, two.
public func batchNormSyncTrainForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                      weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                      runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
                                      savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                                      shape s: BatchNormShape, activation: Activation, scratch: UnsafeMutablePointer<Double>,
                                      reduce: (UnsafeMutablePointer<Double>, Int) -> Void,
                                      moments: UnsafePointer<Double>? = nil, shift: ChannelShift? = nil) {
    let m = s.valuesPerChannel, channels = s.channels
    let variance: (Int) -> Double   // of channel c, over every rank's values
    let total: Double
    if let moments {
        scratch.update(from: moments, count: 2 * channels)
        scratch[2 * channels] = Double(m)
        reduce(scratch, 2 * channels + 1)
        total = scratch[2 * channels]
        for c in 0..<channels { savedMean[c] = Float(scratch[c] / total) }
        variance = { c in meanAndVariance(sum: scratch[c], squares: scratch[channels + c], count: total).variance }
    } else {
        for c in 0..<channels { scratch[c] = Double(sumOf(input + c * m, count: m)) }
        scratch[channels] = Double(m)
        reduce(scratch, channels + 1)
        total = scratch[channels]
        for c in 0..<channels { savedMean[c] = Float(scratch[c] / total) }
        for c in 0..<channels {
            let x = input + c * m, mean = savedMean[c]
            var sum = 0.0
            for i in 0..<m { let d = Double(x[i] - mean); sum += d * d }
            scratch[c] = sum
        }
        reduce(scratch, channels)
        variance = { c in scratch[c] / total }
    }
    for c in 0..<channels {
        let variance = variance(c)
        let invStd = Float(1 / (variance + Double(s.epsilon)).squareRoot())
        savedInvStd[c] = invStd
        let mean = savedMean[c]
        let unbiased = total > 1 ? variance * total / (total - 1) : variance
        runningMean[c] = (1 - s.momentum) * runningMean[c] + s.momentum * mean
        runningVar[c] = (1 - s.momentum) * runningVar[c] + s.momentum * Float(unbiased)
        let gamma = weight?[c] ?? 1, beta = bias?[c] ?? 0
        normalizeChannel(output + c * m, input + c * m, scale: gamma * invStd, shift: beta - mean * gamma * invStd,
                         count: m, activation: activation, then: shift, channel: c, channels: channels)
    }
}

/// Gradients of `batchNormSyncTrainForward`, added into the gradients; `scratch` holds at least
/// 2·channels + 1 Doubles.
public func batchNormSyncTrainBackward(inputGrad: UnsafeMutablePointer<Float>, weightGrad: UnsafeMutablePointer<Float>?,
                                       biasGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                                       input: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                       savedMean: UnsafePointer<Float>, savedInvStd: UnsafePointer<Float>,
                                       shape s: BatchNormShape, activation: Activation,
                                       scratch: UnsafeMutablePointer<Double>, reduce: (UnsafeMutablePointer<Double>, Int) -> Void) {
    let m = s.valuesPerChannel, channels = s.channels
    @inline(__always) func gradient(_ c: Int, _ i: Int) -> (g: Float, xhat: Float) {
        let xhat = (input[c * m + i] - savedMean[c]) * savedInvStd[c]
        let pre = xhat * (weight?[c] ?? 1) + (bias?[c] ?? 0), dy = outputGrad[c * m + i]
        let g = activation == .relu ? (pre <= 0 ? 0 : dy) : dy * activation.derivative(pre)
        return (g, xhat)
    }
    for c in 0..<channels {
        var sumG = 0.0, sumGX = 0.0
        for i in 0..<m { let (g, xhat) = gradient(c, i); sumG += Double(g); sumGX += Double(g * xhat) }
        scratch[2 * c] = sumG; scratch[2 * c + 1] = sumGX
        if let weightGrad { weightGrad[c] += Float(sumGX) }
        if let biasGrad { biasGrad[c] += Float(sumG) }
    }
    scratch[2 * channels] = Double(m)
    reduce(scratch, 2 * channels + 1)
    let total = scratch[2 * channels]
    for c in 0..<channels {
        let meanG = Float(scratch[2 * c] / total), meanGX = Float(scratch[2 * c + 1] / total)
        let k = (weight?[c] ?? 1) * savedInvStd[c]
        for i in 0..<m {
            let (g, xhat) = gradient(c, i)
            inputGrad[c * m + i] += k * (g - meanG - xhat * meanGX)
        }
    }
}
