// GroupNorm(G, C) on CNHW activations: for each image n and group g of C/G consecutive channels, the
// mean and biased variance over those channels' planes (C/G·H·W values), then
// y = act((x − μ)·invStd·γ_c + β_c). Channel c of image n is the plane at (c·N + n)·H·W, so a group is
// C/G planes N·H·W apart. No running statistics: train and eval are the same. `activation` fuses the
// nonlinearity that follows (ContextUnet's ReLU); `weight` and `bias` are nil for affine=False.

public struct GroupNormShape: Sendable, Equatable {
    public let batch, channels, groups: Int
    /// H·W values per plane.
    public let plane: Int
    public let epsilon: Float
    public init(batch: Int, channels: Int, groups: Int, plane: Int, epsilon: Float = 1e-5) {
        precondition(groups >= 1 && channels % groups == 0, "GroupNorm needs C divisible by G; got C \(channels), G \(groups)")
        self.batch = batch; self.channels = channels; self.groups = groups; self.plane = plane; self.epsilon = epsilon
    }
    public var channelsPerGroup: Int { channels / groups }
    /// Values behind one (image, group) statistic.
    public var valuesPerGroup: Int { channelsPerGroup * plane }
    /// Floats of each of savedMean and savedInvStd: one per (image, group), at n·G + g.
    public var statisticsCount: Int { batch * groups }
}

/// y = act((x − μ)·invStd·γ + β) with each (image, group)'s mean and biased variance; saves μ and invStd
/// at n·G + g for the backward pass.
public func groupNormForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                             savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                             shape s: GroupNormShape, activation: Activation) {
    let planeStride = s.batch * s.plane
    parallelFor(s.statisticsCount) { k in
        let n = k / s.groups, g = k % s.groups, c0 = g * s.channelsPerGroup
        let (mean, invStd) = stridedPlaneStatistics(input + (c0 * s.batch + n) * s.plane, planes: s.channelsPerGroup,
                                                    planeStride: planeStride, plane: s.plane, epsilon: s.epsilon)
        savedMean[k] = mean; savedInvStd[k] = invStd
        for c in c0..<(c0 + s.channelsPerGroup) {
            let offset = (c * s.batch + n) * s.plane
            let gamma = weight?[c] ?? 1, beta = bias?[c] ?? 0
            applyAffine(output + offset, input + offset, scale: gamma * invStd, shift: beta - mean * gamma * invStd,
                        count: s.plane, activation: activation)
        }
    }
}

/// Gradients of `groupNormForward` (with its activation), from the input and the saved statistics;
/// `outputGrad` is the gradient at the activated output. With g the gradient at the pre-activation and
/// M = C/G·H·W: dβ_c += Σ g, dγ_c += Σ g·x̂, dx += invStd·(γ_c·g − mean(γ·g) − x̂·mean(γ·g·x̂)), the means
/// over the (image, group). Adds into `inputGrad` and, when affine, `weightGrad` and `biasGrad`.
public func groupNormBackward(inputGrad: UnsafeMutablePointer<Float>, weightGrad: UnsafeMutablePointer<Float>?,
                              biasGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                              input: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                              savedMean: UnsafePointer<Float>, savedInvStd: UnsafePointer<Float>,
                              shape s: GroupNormShape, activation: Activation) {
    let m = Double(s.valuesPerGroup)
    // why over groups, with the images inside: a group's channels are its own, so the weight and bias
    // gradients of different groups are disjoint memory, whatever the thread count.
    parallelFor(s.groups) { g in
        let c0 = g * s.channelsPerGroup, channels = c0..<(c0 + s.channelsPerGroup)
        for n in 0..<s.batch {
            let k = n * s.groups + g, mean = savedMean[k], invStd = savedInvStd[k]
            var sumGammaG = 0.0, sumGammaGXhat = 0.0
            for c in channels {
                let offset = (c * s.batch + n) * s.plane, gamma = weight?[c] ?? 1, beta = bias?[c] ?? 0
                let (sumG, sumGXhat) = preActivationGradientSums(input + offset, outputGrad + offset, count: s.plane,
                                                                  mean: mean, invStd: invStd, gamma: gamma, beta: beta,
                                                                  activation: activation)
                if let weightGrad { weightGrad[c] += Float(sumGXhat) }
                if let biasGrad { biasGrad[c] += Float(sumG) }
                sumGammaG += Double(gamma) * sumG; sumGammaGXhat += Double(gamma) * sumGXhat
            }
            let offsetTerm = -invStd * Float(sumGammaG / m), xhatTerm = -invStd * Float(sumGammaGXhat / m)
            for c in channels {
                let offset = (c * s.batch + n) * s.plane, gamma = weight?[c] ?? 1, beta = bias?[c] ?? 0
                addNormalizedInputGradient(inputGrad + offset, input + offset, outputGrad + offset, count: s.plane,
                                           mean: mean, invStd: invStd, gamma: gamma, beta: beta, activation: activation,
                                           gradScale: invStd * gamma, xhatScale: xhatTerm, offset: offsetTerm)
            }
        }
    }
}

/// dx[i] += gradScale·g_i + xhatScale·x̂_i + offset over one plane, g as in `preActivationGradientSums`.
@inline(__always)
func addNormalizedInputGradient(_ dx: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                count: Int, mean: Float, invStd: Float, gamma: Float, beta: Float, activation: Activation,
                                gradScale: Float, xhatScale: Float, offset: Float) {
    let vectorised = activation == .relu || activation == .identity, relu = activation == .relu
    var i = 0
    while vectorised && i + 8 <= count {
        let xhat = (load8(x + i) - mean) * invStd
        var g = load8(dy + i)
        if relu { g.replace(with: 0, where: xhat * gamma + beta .<= 0) }
        store8(load8(dx + i) + gradScale * g + xhatScale * xhat + offset, dx + i)
        i += 8
    }
    while i < count {
        let xhat = (x[i] - mean) * invStd
        let g = dy[i] * activation.derivative(xhat * gamma + beta)
        dx[i] += gradScale * g + xhatScale * xhat + offset
        i += 1
    }
}
