import COpenBLAS
import Tensor

/// The kernel inception distance (Bińkowski et al. 2018) between the rows of `a` and `b`: the unbiased
/// estimate of MMD² under the polynomial kernel k(x, y) = (xᵀy / dimension + 1)³, on `subsets` pairs of
/// random subsets of `subsetSize` rows drawn without replacement (one from each set), as torch-fidelity
/// and clean-fid compute it. Returns the mean over the subsets and their standard deviation
/// (population, ÷ subsets, like torch-fidelity's np.std); the mean is 0 in expectation when both sets
/// come from one distribution and can then be slightly negative.
///
/// `subsetSize` larger than either set is clamped to the smaller set's size (torch-fidelity refuses
/// instead); fewer than 2 rows per subset is an error. The draws are a pure function of `seed`.
public func kernelInceptionDistance(_ a: FeatureMatrix, _ b: FeatureMatrix, subsets: Int = 100,
                                    subsetSize: Int = 1000, seed: UInt64 = 0) throws -> (mean: Double, standardDeviation: Double) {
    guard a.dimension == b.dimension else {
        throw EvaluationError("KID of features of different dimensions: \(a.dimension) and \(b.dimension)")
    }
    guard subsets >= 1 else { throw EvaluationError("KID needs at least 1 subset, got \(subsets)") }
    let m = min(subsetSize, a.count, b.count), d = a.dimension
    guard m >= 2 else {
        throw EvaluationError("KID needs subsets of at least 2 feature vectors, got \(m) (subset size \(subsetSize), sets of \(a.count) and \(b.count))")
    }
    var rng = Philox(seed: seed, stream: 0)
    var orderA = Array(0..<a.count), orderB = Array(0..<b.count)
    var x = [Double](repeating: 0, count: m * d), y = x
    var gram = [Double](repeating: 0, count: m * m)
    var estimates = [Double]()
    for _ in 0..<subsets {
        drawSubset(a, order: &orderA, size: m, rng: &rng, into: &x)
        drawSubset(b, order: &orderB, size: m, rng: &rng, into: &y)
        let withinX = offDiagonalKernelSum(x, rows: m, dimension: d, gram: &gram)
        let withinY = offDiagonalKernelSum(y, rows: m, dimension: d, gram: &gram)
        // Cross term: every pair (xi, yj), diagonal included.
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(m), blasint(d),
                    1 / Double(d), x, blasint(d), y, blasint(d), 0, &gram, blasint(m))
        var across = 0.0
        for v in gram { let k = v + 1; across += k * k * k }
        let mm = Double(m)
        estimates.append((withinX + withinY) / (mm * (mm - 1)) - 2 * across / (mm * mm))
    }
    let mean = estimates.reduce(0, +) / Double(subsets)
    let variance = estimates.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(subsets)
    return (mean, variance.squareRoot())
}

/// Copies `size` distinct rows of `features`, chosen uniformly at random, into `rows` as Double:
/// a partial Fisher–Yates shuffle of `order` (any permutation of the row indices going in).
private func drawSubset(_ features: FeatureMatrix, order: inout [Int], size: Int, rng: inout Philox,
                        into rows: inout [Double]) {
    let n = features.count, d = features.dimension
    var pick: Int32 = 0
    for i in 0..<size {
        rng.fillIntegers(&pick, count: 1, below: n - i)
        order.swapAt(i, i + Int(pick))
    }
    features.values.withUnsafeBufferPointer { f in
        rows.withUnsafeMutableBufferPointer { r in
            for i in 0..<size {
                let source = order[i] * d
                for j in 0..<d { r[i * d + j] = Double(f[source + j]) }
            }
        }
    }
}

/// Σ over i ≠ j of k(xi, xj) for the `rows` rows of x: twice the strict upper triangle of the kernel
/// matrix, whose Gram part xxᵀ/d one dsyrk computes into `gram`.
private func offDiagonalKernelSum(_ x: [Double], rows m: Int, dimension d: Int, gram: inout [Double]) -> Double {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, blasint(m), blasint(d), 1 / Double(d),
                x, blasint(d), 0, &gram, blasint(m))
    var sum = 0.0
    gram.withUnsafeBufferPointer { g in
        for i in 0..<m { for j in (i + 1)..<m { let k = g[i * m + j] + 1; sum += k * k * k } }
    }
    return 2 * sum
}
