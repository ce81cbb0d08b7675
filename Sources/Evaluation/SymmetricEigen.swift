import COpenBLAS

/// Eigenvalues (ascending) of the symmetric `dimension × dimension` matrix `matrix`, by LAPACK's
/// `dsyevd` from OpenBLAS. With `vectors`, `matrix` is overwritten by the eigenvectors, row j (row-major)
/// being the unit eigenvector of eigenvalue j; without, its contents are destroyed. Only the upper
/// triangle (row-major) is read, so rounding asymmetry in a computed product does not matter.
///
/// why row j: LAPACK is column-major and returns eigenvector j as column j; a symmetric input reads the
/// same in either order, and the column-major output read row-major is Vᵀ.
func symmetricEigenvalues(_ matrix: inout [Double], dimension n: Int, vectors: Bool) throws -> [Double] {
    precondition(matrix.count == n * n, "symmetricEigenvalues: \(matrix.count) values for \(n) × \(n)")
    guard n > 0 else { return [] }
    guard n <= Int(Int32.max) else { throw EvaluationError("a \(n) × \(n) matrix is too large for 32-bit LAPACK") }
    var order = Int32(n), leading = Int32(n), info: Int32 = 0
    var values = [Double](repeating: 0, count: n)
    // why "L": column-major lower is row-major upper.
    let job = vectors ? "V" : "N", triangle = "L"

    // Workspace query: lwork = liwork = -1 returns the optimal sizes in work[0] and iwork[0].
    var workSize = 0.0, iworkSize: Int32 = 0, queryWork: Int32 = -1, queryIwork: Int32 = -1
    matrix.withUnsafeMutableBufferPointer { a in
        dsyevd_(job, triangle, &order, a.baseAddress, &leading, &values, &workSize, &queryWork,
                &iworkSize, &queryIwork, &info, 1, 1)
    }
    guard info == 0 else { throw EvaluationError("dsyevd workspace query failed (info \(info)) for a \(n) × \(n) matrix") }

    var lwork = Int32(workSize.rounded(.up)), liwork = max(iworkSize, 1)
    var work = [Double](repeating: 0, count: Int(lwork)), iwork = [Int32](repeating: 0, count: Int(liwork))
    matrix.withUnsafeMutableBufferPointer { a in
        dsyevd_(job, triangle, &order, a.baseAddress, &leading, &values, &work, &lwork,
                &iwork, &liwork, &info, 1, 1)
    }
    if info < 0 { throw EvaluationError("dsyevd rejected argument \(-info) for a \(n) × \(n) matrix") }
    if info > 0 { throw EvaluationError("dsyevd did not converge on a \(n) × \(n) matrix (info \(info)); does it hold NaN or infinity?") }
    return values
}

/// The eigenvalues of a matrix known to be positive semi-definite, with those within rounding of 0
/// set to 0. why: dsyevd's eigenvalues are accurate to about n·ε·max|λ| in absolute terms, so a
/// singular covariance's zero eigenvalues come out as ±1e-16-sized noise, and their square roots
/// (1e-8-sized) would add up to a visible error in a trace of square roots.
func clampedToRounding(_ values: [Double]) -> [Double] {
    let largest = values.reduce(0) { max($0, abs($1)) }
    let noise = Double(values.count) * Double.ulpOfOne * largest
    return values.map { $0 > noise ? $0 : 0 }
}

/// The symmetric positive semi-definite square root S (S·S = A) of the symmetric PSD
/// `dimension × dimension` matrix `a`, row-major. Eigenvalues within rounding of 0 (of either sign:
/// a singular covariance has such) count as 0.
func symmetricSquareRoot(_ a: [Double], dimension n: Int) throws -> [Double] {
    var vectors = a
    let values = clampedToRounding(try symmetricEigenvalues(&vectors, dimension: n, vectors: true))
    // S = V·diag(√λ)·Vᵀ = WᵀW with W = diag(λ^¼)·Vᵀ: scale row j of Vᵀ by λj^¼, then one dsyrk.
    for j in 0..<n {
        let scale = values[j].squareRoot().squareRoot()
        for i in 0..<n { vectors[j * n + i] *= scale }
    }
    var root = [Double](repeating: 0, count: n * n)
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(n), 1, vectors, blasint(n), 0, &root, blasint(n))
    mirrorUpperTriangle(&root, dimension: n)
    return root
}

/// Copies the upper triangle of a row-major square matrix onto its lower one (dsyrk fills only one).
func mirrorUpperTriangle(_ matrix: inout [Double], dimension n: Int) {
    matrix.withUnsafeMutableBufferPointer { m in
        for i in 0..<n { for j in 0..<i { m[i * n + j] = m[j * n + i] } }
    }
}
