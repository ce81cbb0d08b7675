import Evaluation
import Tensor

// Small Double matrix helpers for the evaluation tests (row-major, square unless said), and Gaussian
// sample sets drawn with Philox.

func multiply(_ a: [Double], _ b: [Double], _ n: Int) -> [Double] {
    var c = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for k in 0..<n { for j in 0..<n { c[i * n + j] += a[i * n + k] * b[k * n + j] } } }
    return c
}

func transpose(_ a: [Double], _ n: Int) -> [Double] {
    var t = a
    for i in 0..<n { for j in 0..<n { t[j * n + i] = a[i * n + j] } }
    return t
}

func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// The Householder reflection I − 2vvᵀ/‖v‖²: a dense orthogonal matrix.
func householder(_ v: [Double]) -> [Double] {
    let n = v.count, norm2 = v.reduce(0) { $0 + $1 * $1 }
    var q = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n { q[i * n + j] = (i == j ? 1 : 0) - 2 * v[i] * v[j] / norm2 } }
    return q
}

/// Block-diagonal matrix of 2 × 2 blocks [a b; c d], each given as (a, b, c, d).
func blockDiagonal(_ blocks: [(Double, Double, Double, Double)]) -> [Double] {
    let n = 2 * blocks.count
    var m = [Double](repeating: 0, count: n * n)
    for (k, block) in blocks.enumerated() {
        let i = 2 * k
        m[i * n + i] = block.0; m[i * n + i + 1] = block.1; m[(i + 1) * n + i] = block.2; m[(i + 1) * n + i + 1] = block.3
    }
    return m
}

/// Lower-triangular L with L·Lᵀ = a (a symmetric positive definite).
func cholesky(_ a: [Double], _ n: Int) -> [Double] {
    var l = [Double](repeating: 0, count: n * n)
    for j in 0..<n {
        var diagonal = a[j * n + j]
        for k in 0..<j { diagonal -= l[j * n + k] * l[j * n + k] }
        l[j * n + j] = diagonal.squareRoot()
        for i in (j + 1)..<n {
            var s = a[i * n + j]
            for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
            l[i * n + j] = s / l[j * n + j]
        }
    }
    return l
}

/// `count` samples of N(mean, L·Lᵀ) as Float features: mean + L·z, z standard normal from Philox.
func gaussianSamples(mean: [Double], choleskyFactor l: [Double], count: Int, seed: UInt64) throws -> FeatureMatrix {
    let d = mean.count
    var z = [Float](repeating: 0, count: count * d)
    var rng = Philox(seed: seed)
    rng.fillNormal(&z, count: z.count)
    var x = [Float](repeating: 0, count: count * d)
    for row in 0..<count {
        for i in 0..<d {
            var v = mean[i]
            for k in 0...i { v += l[i * d + k] * Double(z[row * d + k]) }
            x[row * d + i] = Float(v)
        }
    }
    return try FeatureMatrix(x, count: count, dimension: d)
}
