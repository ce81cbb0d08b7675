import Testing
import TestSupport
import Tensor

/// The OpenBLAS bridge, row-major, on products small enough to check by hand.
@Suite struct BLASTests {
    let a: [Float] = [1, 2,
                      3, 4]
    let b: [Float] = [5, 6,
                      7, 8]

    func product(transposeA: Bool = false, transposeB: Bool = false, alpha: Float = 1, beta: Float = 0,
                 c initial: [Float] = [0, 0, 0, 0]) -> [Float] {
        var c = initial
        BLAS.gemm(transposeA: transposeA, transposeB: transposeB, m: 2, n: 2, k: 2, alpha: alpha, a: a, lda: 2,
                  b: b, ldb: 2, beta: beta, c: &c, ldc: 2)
        return c
    }

    @Test func twoByTwoProductIsExact() {
        #expect(product() == [19, 22, 43, 50])
    }

    @Test func transposedVariantsAreExact() {
        #expect(product(transposeA: true) == [26, 30, 38, 44])                   // Aᵀ·B
        #expect(product(transposeB: true) == [17, 23, 39, 53])                   // A·Bᵀ
        #expect(product(transposeA: true, transposeB: true) == [23, 31, 34, 46]) // Aᵀ·Bᵀ
    }

    @Test func alphaAndBetaScaleAndAccumulate() {
        #expect(product(alpha: 2, beta: 1, c: [1, 1, 1, 1]) == [39, 45, 87, 101])
        #expect(product(alpha: 1, beta: 0, c: [.nan, .nan, .nan, .nan]) == [19, 22, 43, 50], "beta 0 ignores C, even NaN")
    }

    @Test func leadingDimensionsSelectSubmatrices() {
        // A is the left 2×3 block of a 2×4 array (lda 4), B is 3×2 inside a 3×3 array (ldb 3),
        // C is 2×2 inside a 2×3 array (ldc 3) whose last column must stay untouched.
        let a: [Float] = [1, 2, 3, 99,
                          4, 5, 6, 99]
        let b: [Float] = [1, 0, 99,
                          0, 1, 99,
                          1, 1, 99]
        var c: [Float] = [0, 0, -7,
                          0, 0, -7]
        BLAS.gemm(m: 2, n: 2, k: 3, a: a, lda: 4, b: b, ldb: 3, beta: 0, c: &c, ldc: 3)
        #expect(c == [4, 5, -7,
                      10, 11, -7])
    }

    @Test func openBLASIsTheLibraryBehindTheBridge() {
        #expect(BLAS.configuration.contains("OpenBLAS"), "\(BLAS.configuration)")
        #expect(BLAS.threads >= 1)
    }
}
