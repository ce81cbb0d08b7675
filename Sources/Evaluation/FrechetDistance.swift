import COpenBLAS

/// The Fréchet distance between the Gaussians N(μa, Σa) and N(μb, Σb) (FID, on Inception features):
///
///     ‖μa − μb‖² + tr Σa + tr Σb − 2 tr (Σa^½ Σb Σa^½)^½
///
/// in squared feature units. The square roots go through LAPACK's symmetric eigensolver: Σa^½ from
/// Σa's eigenvectors, and tr(M^½) = Σ √λi(M) for the symmetric PSD M = Σa^½ Σb Σa^½ (eigenvalues only).
/// Eigenvalues within rounding of 0 (either sign) count as 0, so singular covariances are fine;
/// identical statistics give 0 to rounding (a rounding-sized negative value is returned as is).
public func frechetDistance(_ a: FeatureStatistics, _ b: FeatureStatistics) throws -> Double {
    guard a.dimension == b.dimension else {
        throw EvaluationError("FID of statistics of different dimensions: \(a.dimension) and \(b.dimension)")
    }
    let d = a.dimension
    var meanTerm = 0.0
    for i in 0..<d { let delta = a.mean[i] - b.mean[i]; meanTerm += delta * delta }

    let rootA = try symmetricSquareRoot(a.covariance, dimension: d)
    var product = [Double](repeating: 0, count: d * d), sandwich = product
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(d), blasint(d), blasint(d),
                1, rootA, blasint(d), b.covariance, blasint(d), 0, &product, blasint(d))
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(d), blasint(d), blasint(d),
                1, product, blasint(d), rootA, blasint(d), 0, &sandwich, blasint(d))
    let eigenvalues = clampedToRounding(try symmetricEigenvalues(&sandwich, dimension: d, vectors: false))
    let traceOfRoot = eigenvalues.reduce(0) { $0 + $1.squareRoot() }

    return meanTerm + a.trace + b.trace - 2 * traceOfRoot
}
