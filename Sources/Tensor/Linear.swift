/// y[N, out] = x[N, in] · weight[out, in]ᵀ + bias (PyTorch's nn.Linear, row-major).
public func linearForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                          batch: Int, inFeatures: Int, outFeatures: Int) {
    for n in 0..<batch { (output + n * outFeatures).update(from: bias, count: outFeatures) }
    BLAS.gemm(transposeB: true, m: batch, n: outFeatures, k: inFeatures, a: input, lda: inFeatures,
              b: weight, ldb: inFeatures, beta: 1, c: output, ldc: outFeatures)
}

/// weightGrad = dyᵀ·x, biasGrad = Σ_n dy (overwritten, or added to when `accumulate`);
/// inputGrad = dy·weight (overwritten; nil when not needed).
public func linearBackward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                           biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                           input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           batch: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false) {
    BLAS.gemm(transposeA: true, m: outFeatures, n: inFeatures, k: batch, a: outputGrad, lda: outFeatures,
              b: input, ldb: inFeatures, beta: accumulate ? 1 : 0, c: weightGrad, ldc: inFeatures)
    for o in 0..<outFeatures {
        var sum: Float = 0
        for n in 0..<batch { sum += outputGrad[n * outFeatures + o] }
        biasGrad[o] = accumulate ? biasGrad[o] + sum : sum
    }
    if let inputGrad {
        BLAS.gemm(m: batch, n: inFeatures, k: outFeatures, a: outputGrad, lda: outFeatures,
                  b: weight, ldb: inFeatures, beta: 0, c: inputGrad, ldc: inFeatures)
    }
}
