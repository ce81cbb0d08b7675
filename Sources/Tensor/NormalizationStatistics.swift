// Mean and 1/√(var + ε) over a set of equally long planes a fixed stride apart: in CNHW the values of one
// image's group of channels (GroupNorm) or of all its channels (LayerNorm) are such a set.

/// Mean and 1/√(biased variance + ε) of `planes` runs of `plane` floats, the first at `first`, each
/// `planeStride` floats after the previous. Two passes, both summed in Double (the sums span thousands
/// of values), like BatchNorm's.
@inline(__always)
func stridedPlaneStatistics(_ first: UnsafePointer<Float>, planes: Int, planeStride: Int, plane: Int,
                            epsilon: Float) -> (mean: Float, invStd: Float) {
    let count = planes * plane
    var sum = 0.0
    for p in 0..<planes { sum += sumInDouble(first + p * planeStride, count: plane) }
    let mean = Float(sum / Double(count))
    var squares = 0.0
    for p in 0..<planes { squares += squaredDeviationSum(first + p * planeStride, mean: mean, count: plane) }
    let variance = squares / Double(count)
    return (mean, Float(1 / (variance + Double(epsilon)).squareRoot()))
}

/// Σ x[i] in Double, eight lanes at a time.
@inline(__always)
func sumInDouble(_ x: UnsafePointer<Float>, count: Int) -> Double {
    var partial = SIMD8<Double>(); var i = 0
    while i + 8 <= count { partial += SIMD8<Double>(load8(x + i)); i += 8 }
    var total = partial.sum()
    while i < count { total += Double(x[i]); i += 1 }
    return total
}

/// Σ (x[i] − mean)² in Double: the differences in Float (exact enough: they are of the order of the
/// spread), widened before squaring.
@inline(__always)
func squaredDeviationSum(_ x: UnsafePointer<Float>, mean: Float, count: Int) -> Double {
    var partial = SIMD8<Double>(); var i = 0
    while i + 8 <= count {
        let d = SIMD8<Double>(load8(x + i) - mean)
        partial += d * d
        i += 8
    }
    var total = partial.sum()
    while i < count { let d = Double(x[i] - mean); total += d * d; i += 1 }
    return total
}

/// Σ g and Σ g·x̂ over one plane, g = dy·act′(x̂·γ + β) the gradient at the pre-activation. ReLU and
/// identity run on vectors; Float partial sums over short chunks, gathered in Double: fast, and accurate
/// for any plane length. Shared by BatchNorm and GroupNorm.
@inline(__always)
func preActivationGradientSums(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, count: Int, mean: Float,
                               invStd: Float, gamma: Float, beta: Float,
                               activation: Activation) -> (sumG: Double, sumGXhat: Double) {
    let vectorised = activation == .relu || activation == .identity, relu = activation == .relu
    var sumG = 0.0, sumGXhat = 0.0
    var i = 0
    while i < count {
        let end = min(count, i + 1024)
        var accG = SIMD8<Float>(), accGX = SIMD8<Float>()
        while vectorised && i + 8 <= end {
            let xhat = (load8(x + i) - mean) * invStd
            var g = load8(dy + i)
            if relu { g.replace(with: 0, where: xhat * gamma + beta .<= 0) }
            accG += g; accGX += g * xhat
            i += 8
        }
        while i < end {
            let xhat = (x[i] - mean) * invStd, pre = xhat * gamma + beta
            // why the mask for ReLU and not dy·0: the same values as the vector lanes (a NaN gradient stays put).
            let g = vectorised ? ((relu && pre <= 0) ? 0 : dy[i]) : dy[i] * activation.derivative(pre)
            sumG += Double(g); sumGXhat += Double(g * xhat)
            i += 1
        }
        sumG += Double(accG.sum()); sumGXhat += Double(accGX.sum())
    }
    return (sumG, sumGXhat)
}
