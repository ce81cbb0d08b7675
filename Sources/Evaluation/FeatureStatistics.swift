import COpenBLAS

/// Mean and unbiased covariance of a set of feature vectors: what FID compares.
///
/// With fewer samples than dimensions (count < dimension) the covariance has rank at most count − 1
/// and is singular; it is still computed, and `frechetDistance` handles it (its square roots clamp the
/// zero eigenvalues), but the FID of such statistics is strongly biased: use count ≫ dimension.
public struct FeatureStatistics: Sendable, Equatable {
    /// Number of feature vectors the statistics came from.
    public let count: Int
    public let dimension: Int
    /// [dimension].
    public let mean: [Double]
    /// [dimension, dimension], row-major, symmetric; Σ (x − mean)(x − mean)ᵀ / (count − 1).
    public let covariance: [Double]

    /// Statistics given directly (known parameters, or ones read from a file).
    public init(mean: [Double], covariance: [Double], count: Int) throws {
        guard !mean.isEmpty, covariance.count == mean.count * mean.count else {
            throw EvaluationError("a covariance for a mean of dimension \(mean.count) needs \(mean.count * mean.count) values, got \(covariance.count)")
        }
        self.count = count; self.dimension = mean.count; self.mean = mean; self.covariance = covariance
    }

    /// Statistics of the rows of `features`, accumulated in Double.
    public init(features: FeatureMatrix) throws {
        let n = features.count, d = features.dimension
        guard n >= 2 else {
            throw EvaluationError("FID needs at least 2 feature vectors for a covariance, got \(n)")
        }
        var mean = [Double](repeating: 0, count: d)
        var covariance = [Double](repeating: 0, count: d * d)
        // why two passes: centring before the product avoids E[xxᵀ] − μμᵀ's cancellation, which
        // loses everything when the features have a large mean (Inception's are all positive).
        // The centred copy is made `chunk` rows at a time so that 50 000 × 2048 features need no
        // 800 MB Double twin; dsyrk accumulates each chunk's XᵀX into the upper triangle.
        let chunk = min(256, n)
        let centred = UnsafeMutablePointer<Double>.allocate(capacity: chunk * d)
        defer { centred.deallocate() }
        features.values.withUnsafeBufferPointer { x in
            mean.withUnsafeMutableBufferPointer { mu in
                for row in 0..<n { for i in 0..<d { mu[i] += Double(x[row * d + i]) } }
                for i in 0..<d { mu[i] /= Double(n) }
            }
            mean.withUnsafeBufferPointer { mu in
                covariance.withUnsafeMutableBufferPointer { c in
                    var first = 0
                    while first < n {
                        let rows = min(chunk, n - first)
                        for r in 0..<rows { for i in 0..<d { centred[r * d + i] = Double(x[(first + r) * d + i]) - mu[i] } }
                        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(d), blasint(rows),
                                    1, centred, blasint(d), 1, c.baseAddress, blasint(d))
                        first += rows
                    }
                }
            }
        }
        mirrorUpperTriangle(&covariance, dimension: d)
        let unbiased = 1 / Double(n - 1)
        for i in covariance.indices { covariance[i] *= unbiased }
        self.count = n; self.dimension = d; self.mean = mean; self.covariance = covariance
    }

    /// tr(covariance).
    public var trace: Double { (0..<dimension).reduce(0) { $0 + covariance[$1 * dimension + $1] } }
}
