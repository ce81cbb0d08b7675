import Foundation
import Tensor

/// This machine's sgemm throughput at the current OpenBLAS thread count, measured on the spot.
enum SgemmPeak {
    /// Best GFLOP/s of 12 products of 1024×1024 matrices (≈2.1 GFLOP each), after one warm-up.
    /// why the best and not the median: on a shared 2-core VM single samples run 60–92 GFLOP/s, and the
    /// peak is what the hardware can do, against which a training step is measured.
    static func measure(size n: Int = 1024, repeats: Int = 12) -> Double {
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        var rng = Philox(seed: 1)
        rng.fillUniform(a.pointer, count: a.count, low: -1, high: 1)
        rng.fillUniform(b.pointer, count: b.count, low: -1, high: 1)
        func product() { BLAS.gemm(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, beta: 0, c: c.pointer, ldc: n) }
        product()
        var rates: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            product()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            rates.append(2 * Double(n * n * n) / seconds / 1e9)
        }
        return rates.max()!
    }
}
