import Testing
import TestSupport
@testable import Tensor

/// How disttrain threads its matrix products (BLAS.swift) and picks OpenBLAS' kernels (BLASCore.swift).
@Suite struct BLASThreadingTests {
    /// A product split into column or row blocks is the product: each block is its own serial sgemm.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func aSplitProductEqualsTheSerialOne(_ transposes: (Bool, Bool)) {
        let (ta, tb) = transposes
        // Wide (split by columns) and tall-narrow (split by rows: n < 16 per part), both above the threshold.
        for (m, n, k) in [(64, 300, 130), (700, 20, 160)] {
            let a = normals(m * k, seed: 1), b = normals(k * n, seed: 2), start = normals(m * n, seed: 3)
            let lda = ta ? m : k, ldb = tb ? k : n
            var serial = start, split2 = start, split3 = start
            BLAS.serialGemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                            beta: 1, c: &serial, ldc: n)
            BLAS.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 1, c: &split2, ldc: n, parts: 2)
            BLAS.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 1, c: &split3, ldc: n, parts: 3)
            #expect(m * n * k >= BLAS.splitThreshold)
            // The same sums, perhaps in another order (OpenBLAS' kernels for narrow blocks block k differently):
            // equal to a few roundings of the largest entry, while a wrong offset or stride is off by O(1).
            let bound = 1e-6 * serial.map(abs).max()!
            #expect(maxAbsoluteError(split2, serial) <= bound && maxAbsoluteError(split3, serial) <= bound,
                    "\(m)×\(n)×\(k) transposes \(ta) \(tb): \(maxAbsoluteError(split2, serial)), \(maxAbsoluteError(split3, serial)) of \(bound)")
        }
    }

    @Test func theBestCoreFollowsTheCPUFlags() {
        #expect(BLAS.bestCore(flags: ["sse2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl"]) == "SkylakeX")
        #expect(BLAS.bestCore(flags: ["sse2", "avx", "avx2", "fma", "avx512f"]) == "Haswell")   // AVX-512 without BW/VL/DQ
        #expect(BLAS.bestCore(flags: ["sse2", "avx"]) == nil)
    }

    @Test func onlyAWeakerKernelSetIsReplaced() {
        #expect(BLAS.isWeaker("Prescott", than: "SkylakeX"))
        #expect(BLAS.isWeaker("Sandybridge", than: "Haswell"))
        #expect(BLAS.isWeaker("Haswell", than: "SkylakeX"))
        #expect(!BLAS.isWeaker("SkylakeX", than: "SkylakeX"))
        #expect(!BLAS.isWeaker("Cooperlake", than: "SkylakeX"))
        #expect(!BLAS.isWeaker("Zen", than: "Haswell"))
    }
}
