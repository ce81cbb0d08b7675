/// y[N, out] = x[N, in] · weight[out, in]ᵀ + bias (PyTorch's nn.Linear, row-major).
public func linearForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                          batch: Int, inFeatures: Int, outFeatures: Int) {
    for n in 0..<batch { (output + n * outFeatures).update(from: bias, count: outFeatures) }
    BLAS.gemm(transposeB: true, m: batch, n: outFeatures, k: inFeatures, a: input, lda: inFeatures,
              b: weight, ldb: inFeatures, beta: 1, c: output, ldc: outFeatures)
}

/// Adds weightGrad += dyᵀ·x, biasGrad += Σ_n dy and inputGrad += dy·weight (nil when not needed).
public func linearBackward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                           biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                           input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           batch: Int, inFeatures: Int, outFeatures: Int) {
    BLAS.gemm(transposeA: true, m: outFeatures, n: inFeatures, k: batch, a: outputGrad, lda: outFeatures,
              b: input, ldb: inFeatures, beta: 1, c: weightGrad, ldc: inFeatures)
    for o in 0..<outFeatures {
        var sum: Float = 0
        for n in 0..<batch { sum += outputGrad[n * outFeatures + o] }
        biasGrad[o] += sum
    }
    if let inputGrad {
        BLAS.gemm(m: batch, n: inFeatures, k: outFeatures, a: outputGrad, lda: outFeatures,
                  b: weight, ldb: inFeatures, beta: 1, c: inputGrad, ldc: inFeatures)
    }
}
