import COpenBLAS
import Dispatch

/// Row-major single-precision matrix products on OpenBLAS.
///
/// Threads: OpenBLAS itself always runs single-threaded; `gemm` splits a large product into `threads`
/// column (or row) blocks, each one single-threaded OpenBLAS call on its own thread. why: OpenBLAS'
/// worker threads spin and yield between products and fight the other kernels' threads (Winograd
/// transforms, BatchNorm) for the cores: on 2 cores a 2-thread step of cnn was no faster than 1 thread,
/// 12 % of its time in the scheduler. Kernels that already run products in parallel (Winograd's α²
/// independent products) call `serialGemm` inside their own `parallelRanges`.
public enum BLAS {
    /// Products below this many multiply-accumulates are not worth a thread hand-off.
    static let splitThreshold = 1 << 21

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major; split into up to `parts`
    /// blocks (one thread each, `threads` by default) when large enough.
    public static func gemm(transposeA: Bool = false, transposeB: Bool = false,
                            m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                            parts: Int = min(kernelThreads, maxKernelThreads)) {
        guard parts > 1, m * n * k >= splitThreshold, n >= 16 * parts || m >= 8 * parts else {
            serialGemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                       a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let task = GemmTask(a: a, b: b, c: c)
        DispatchQueue.concurrentPerform(iterations: parts) { t in
            if n >= 16 * parts {   // column blocks, multiples of 16 wide
                let blocks = (n + 15) / 16, first = blocks * t / parts * 16, last = min(n, blocks * (t + 1) / parts * 16)
                guard last > first else { return }
                serialGemm(transposeA: transposeA, transposeB: transposeB, m: m, n: last - first, k: k, alpha: alpha,
                           a: task.a, lda: lda, b: task.b + (transposeB ? first * ldb : first), ldb: ldb,
                           beta: beta, c: task.c + first, ldc: ldc)
            } else {               // row blocks
                let first = m * t / parts, last = m * (t + 1) / parts
                guard last > first else { return }
                serialGemm(transposeA: transposeA, transposeB: transposeB, m: last - first, n: n, k: k, alpha: alpha,
                           a: task.a + (transposeA ? first : first * lda), lda: lda, b: task.b, ldb: ldb,
                           beta: beta, c: task.c + first * ldc, ldc: ldc)
            }
        }
    }

    /// The pointers of one split product, shared by its threads (each writes its own block of C).
    private struct GemmTask: @unchecked Sendable {
        let a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
    }

    /// One single-threaded OpenBLAS product, on the calling thread.
    @inline(__always)
    public static func serialGemm(transposeA: Bool = false, transposeB: Bool = false,
                            m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                    beta, c, blasint(ldc))
    }

    /// Threads for each product (and for the other kernels: `kernelThreads`); OpenBLAS itself stays at one.
    public static var threads: Int {
        get { kernelThreads }
        set { openblas_set_num_threads(1); kernelThreads = newValue }
    }

    /// OpenBLAS' build description (version, kernel, thread limit).
    public static var configuration: String { String(cString: openblas_get_config()) }
}
