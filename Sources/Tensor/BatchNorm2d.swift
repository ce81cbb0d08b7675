import Foundation

// BatchNorm2d on CNHW activations: channel c is the contiguous run x[c, 0..<M], M = N·H·W.
// Train mode normalises with the batch statistics and updates the running ones (momentum, unbiased
// variance, as PyTorch); eval mode uses the running statistics. `activation` fuses the nonlinearity
// that follows (the U-Net's ReLU), so the normalised values never make a trip through memory of their
// own; `.identity` is a plain BatchNorm. `weight` and `bias` are nil for BatchNorm2d(affine=False).

public struct BatchNormShape: Sendable, Equatable {
    public let channels: Int
    /// N·H·W values per channel.
    public let valuesPerChannel: Int
    public let epsilon: Float
    public let momentum: Float
    public init(channels: Int, valuesPerChannel: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        self.channels = channels; self.valuesPerChannel = valuesPerChannel
        self.epsilon = epsilon; self.momentum = momentum
    }
}

/// A value added after the activation, one per image and channel: y[c, n, :] += values[n·channels + c]
/// over the `plane` (H·W) values of image n (the U-Net block adds its time projection there). Fused so
/// that the block's hidden tensor is written once. Its gradient is `addPerChannelBackward`'s.
public struct ChannelShift {
    public let values: UnsafePointer<Float>
    public let plane: Int
    public init(values: UnsafePointer<Float>, plane: Int) { self.values = values; self.plane = plane }
}

/// Train mode: y = act(γ·(x − mean)/√(var + ε) + β) (+ `shift`) with the batch's mean and biased
/// variance. Saves mean and 1/√(var + ε) per channel for the backward pass and updates the running
/// statistics. `moments`, when given, are the input's per-channel Σx and Σx² in Double
/// (`channelMoments`), computed by the layer that wrote it while the values were in cache; otherwise
/// two passes here (mean, then squared deviations).
public func batchNormTrainForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                  weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                  runningMean: UnsafeMutablePointer<Float>, runningVar: UnsafeMutablePointer<Float>,
                                  savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                                  shape s: BatchNormShape, activation: Activation,
                                  moments: UnsafePointer<Double>? = nil, shift: ChannelShift? = nil) {
    let m = s.valuesPerChannel
    parallelFor(s.channels) { c in
        let x = input + c * m, y = output + c * m
        let meanF: Float, variance: Double
        if let moments {
            let (mean, v) = meanAndVariance(sum: moments[c], squares: moments[s.channels + c], count: Double(m))
            meanF = Float(mean); variance = v
        } else {
            meanF = Float(sumInDouble(x, count: m) / Double(m))
            variance = squaredDeviationSum(x, mean: meanF, count: m) / Double(m)
        }
        let invStd = Float(1 / (variance + Double(s.epsilon)).squareRoot())
        savedMean[c] = meanF; savedInvStd[c] = invStd
        let unbiased = m > 1 ? variance * Double(m) / Double(m - 1) : variance
        runningMean[c] = (1 - s.momentum) * runningMean[c] + s.momentum * meanF
        runningVar[c] = (1 - s.momentum) * runningVar[c] + s.momentum * Float(unbiased)
        let gamma = weight?[c] ?? 1, beta = bias?[c] ?? 0
        normalizeChannel(y, x, scale: gamma * invStd, shift: beta - meanF * gamma * invStd, count: m, activation: activation,
                         then: shift, channel: c, channels: s.channels)
    }
}

/// Σx (first `channels` values) and Σx² (the next `channels`) of each channel's `count` values, in Double.
public func channelMoments(_ moments: UnsafeMutablePointer<Double>, _ x: UnsafePointer<Float>, channels: Int, count: Int) {
    parallelFor(channels) { c in
        (moments[c], moments[channels + c]) = sumAndSquares(x + c * count, count: count)
    }
}

/// Mean and biased variance from Σx and Σx² of `count` values (clamped at 0 against rounding).
@inline(__always)
func meanAndVariance(sum: Double, squares: Double, count: Double) -> (mean: Double, variance: Double) {
    let mean = sum / count
    return (mean, max(squares / count - mean * mean, 0))
}

/// Σx and Σx² of `count` values in Double, eight lanes at a time.
@inline(__always)
func sumAndSquares(_ x: UnsafePointer<Float>, count: Int) -> (Double, Double) {
    var sum = SIMD8<Double>(), squares = SIMD8<Double>(); var i = 0
    while i + 8 <= count { let v = SIMD8<Double>(load8(x + i)); sum += v; squares += v * v; i += 8 }
    var total = sum.sum(), totalSquares = squares.sum()
    while i < count { let v = Double(x[i]); total += v; totalSquares += v * v; i += 1 }
    return (total, totalSquares)
}

/// Eval mode: y = act(γ·(x − running_mean)/√(running_var + ε) + β).
public func batchNormEvalForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                 weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                 runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>,
                                 shape s: BatchNormShape, activation: Activation, shift: ChannelShift? = nil) {
    let m = s.valuesPerChannel
    parallelFor(s.channels) { c in
        let invStd = 1 / (runningVar[c] + s.epsilon).squareRoot()
        let gamma = weight?[c] ?? 1, beta = bias?[c] ?? 0
        normalizeChannel(output + c * m, input + c * m, scale: gamma * invStd, shift: beta - runningMean[c] * gamma * invStd,
                         count: m, activation: activation, then: shift, channel: c, channels: s.channels)
    }
}

/// One channel's y = act(x·scale + shift), then + the channel shift of each image (its plane is still in L1).
@inline(__always)
func normalizeChannel(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, scale: Float, shift: Float, count: Int,
                      activation: Activation, then added: ChannelShift?, channel c: Int, channels: Int) {
    guard let added else { applyAffine(y, x, scale: scale, shift: shift, count: count, activation: activation); return }
    let plane = added.plane
    for n in 0..<count / plane {
        let o = n * plane, v = added.values[n * channels + c]
        applyAffine(y + o, x + o, scale: scale, shift: shift, count: plane, activation: activation)
        for i in o..<o + plane { y[i] += v }
    }
}

@inline(__always)
func applyAffine(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, scale: Float, shift: Float,
                 count: Int, activation: Activation) {
    switch activation {
    case .relu: for i in 0..<count { y[i] = max(x[i] * scale + shift, 0) }
    case .identity: for i in 0..<count { y[i] = x[i] * scale + shift }
    default: for i in 0..<count { y[i] = activation.apply(x[i] * scale + shift) }
    }
}

/// Gradients of `batchNormTrainForward` (with its activation), from the pre-normalisation input and the
/// saved statistics. `outputGrad` is the gradient at the (activated) output. Adds into `inputGrad` and,
/// when affine, `weightGrad` and `biasGrad`.
public func batchNormTrainBackward(inputGrad: UnsafeMutablePointer<Float>, weightGrad: UnsafeMutablePointer<Float>?,
                                   biasGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                                   input: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                   savedMean: UnsafePointer<Float>, savedInvStd: UnsafePointer<Float>,
                                   shape s: BatchNormShape, activation: Activation) {
    let m = s.valuesPerChannel
    let vectorised = activation == .relu || activation == .identity, relu = activation == .relu
    parallelFor(s.channels) { c in
        let x = input + c * m, dy = outputGrad + c * m, dx = inputGrad + c * m
        let mean = savedMean[c], invStd = savedInvStd[c], gamma = weight?[c] ?? 1, beta = bias?[c] ?? 0
        /// The gradient at the BatchNorm output (before the activation) of value i.
        @inline(__always) func g(_ i: Int, _ xhat: Float) -> Float {
            vectorised ? ((relu && xhat * gamma + beta <= 0) ? 0 : dy[i]) : dy[i] * activation.derivative(xhat * gamma + beta)
        }
        // Pass 1: Σ g and Σ g·x̂ (g: the gradient before the activation).
        let (sumG, sumGXhat) = preActivationGradientSums(x, dy, count: m, mean: mean, invStd: invStd, gamma: gamma, beta: beta,
                                                         activation: activation)
        if let weightGrad { weightGrad[c] += Float(sumGXhat) }
        if let biasGrad { biasGrad[c] += Float(sumG) }
        // Pass 2: dx = γ·invStd·(g − mean(g) − x̂·mean(g·x̂)).
        let meanG = Float(sumG / Double(m)), meanGX = Float(sumGXhat / Double(m))
        let k = gamma * invStd
        var i = 0
        while vectorised && i + 8 <= m {
            let xhat = (load8(x + i) - mean) * invStd
            var g = load8(dy + i)
            if relu { g.replace(with: 0, where: xhat * gamma + beta .<= 0) }
            store8(load8(dx + i) + k * (g - meanG - xhat * meanGX), dx + i)
            i += 8
        }
        while i < m {
            let xhat = (x[i] - mean) * invStd
            dx[i] += k * (g(i, xhat) - meanG - xhat * meanGX)
            i += 1
        }
    }
}

/// Gradients of `batchNormEvalForward`: the statistics are constants here. Adds into the gradients.
public func batchNormEvalBackward(inputGrad: UnsafeMutablePointer<Float>, weightGrad: UnsafeMutablePointer<Float>?,
                                  biasGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                                  input: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                  runningMean: UnsafePointer<Float>, runningVar: UnsafePointer<Float>,
                                  shape s: BatchNormShape, activation: Activation) {
    let m = s.valuesPerChannel
    for c in 0..<s.channels {
        let x = input + c * m, dy = outputGrad + c * m, dx = inputGrad + c * m
        let invStd = 1 / (runningVar[c] + s.epsilon).squareRoot(), mean = runningMean[c]
        let gamma = weight?[c] ?? 1, beta = bias?[c] ?? 0
        var sumG = 0.0, sumGXhat = 0.0
        for i in 0..<m {
            let xhat = (x[i] - mean) * invStd
            let g = dy[i] * activation.derivative(xhat * gamma + beta)
            sumG += Double(g); sumGXhat += Double(g * xhat)
            dx[i] += g * gamma * invStd
        }
        if let weightGrad { weightGrad[c] += Float(sumGXhat) }
        if let biasGrad { biasGrad[c] += Float(sumG) }
    }
}
