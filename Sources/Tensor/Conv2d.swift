// Conv2d with stride 1 on CNHW activations: kernel 3 (padding 1) or kernel 1 (no padding).
// Forward:  columns[Cin·k·k, P] = im2col(input), output[Cout, P] = weight[Cout, Cin·k·k] · columns + bias,
//           with P = N·H·W. For k = 1 the input itself is the column matrix.
// Backward: weightGrad = outputGrad · columnsᵀ, biasGrad = Σ_P outputGrad,
//           inputGrad = col2im(weightᵀ · outputGrad).

/// Shape of one convolution: `batch` images of `height`×`width`, `kernel` 1 or 3.
public struct ConvShape: Sendable, Equatable {
    public let batch, inChannels, outChannels, height, width, kernel: Int
    public init(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int) {
        precondition(kernel == 1 || kernel == 3, "Conv2d supports kernel 1 and 3, got \(kernel)")
        self.batch = batch; self.inChannels = inChannels; self.outChannels = outChannels
        self.height = height; self.width = width; self.kernel = kernel
    }
    /// N·H·W: columns of the product.
    public var positions: Int { batch * height * width }
    /// Cin·k·k: the reduction length of the forward product.
    public var patchSize: Int { inChannels * kernel * kernel }
    /// Floats needed in the shared column scratch buffer (0 for a 1×1 convolution).
    public var columnsCount: Int { kernel == 1 ? 0 : patchSize * positions }
    /// Forward multiply-accumulates for the whole batch.
    public var multiplyAccumulates: Int { outChannels * patchSize * positions }
}

/// output[Cout, N, H, W] = conv(input[Cin, N, H, W]) + bias.
public func conv2dForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                          columns: UnsafeMutablePointer<Float>, shape s: ConvShape) {
    let p = s.positions
    for co in 0..<s.outChannels { (output + co * p).update(repeating: bias[co], count: p) }
    let b: UnsafePointer<Float>
    if s.kernel == 3 {
        im2col3x3(columns: columns, input: input, shape: s)
        b = UnsafePointer(columns)
    } else {
        b = input
    }
    BLAS.gemm(m: s.outChannels, n: p, k: s.patchSize, a: weight, lda: s.patchSize, b: b, ldb: p,
              beta: 1, c: output, ldc: p)
}

/// Gradients of `conv2dForward`. `weightGrad` and `biasGrad` are overwritten, or added to when
/// `accumulate` is set; `inputGrad` (nil when the input needs no gradient) is overwritten.
/// `columns` is scratch: the input's columns are rebuilt here rather than kept from the forward pass.
public func conv2dBackward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                           biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                           input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           columns: UnsafeMutablePointer<Float>, shape s: ConvShape, accumulate: Bool = false) {
    let p = s.positions
    for co in 0..<s.outChannels {
        let sum = sumOf(outputGrad + co * p, count: p)
        biasGrad[co] = accumulate ? biasGrad[co] + sum : sum
    }
    let cols: UnsafePointer<Float>
    if s.kernel == 3 {
        im2col3x3(columns: columns, input: input, shape: s)
        cols = UnsafePointer(columns)
    } else {
        cols = input
    }
    BLAS.gemm(transposeB: true, m: s.outChannels, n: s.patchSize, k: p, a: outputGrad, lda: p,
              b: cols, ldb: p, beta: accumulate ? 1 : 0, c: weightGrad, ldc: s.patchSize)
    guard let inputGrad else { return }
    if s.kernel == 3 {
        BLAS.gemm(transposeA: true, m: s.patchSize, n: p, k: s.outChannels, a: weight, lda: s.patchSize,
                  b: outputGrad, ldb: p, beta: 0, c: columns, ldc: p)
        col2im3x3(inputGrad: inputGrad, columns: columns, shape: s)
    } else {
        BLAS.gemm(transposeA: true, m: s.inChannels, n: p, k: s.outChannels, a: weight, lda: s.inChannels,
                  b: outputGrad, ldb: p, beta: 0, c: inputGrad, ldc: p)
    }
}

/// columns[(ci·3 + ky)·3 + kx, n, y, x] = input[ci, n, y + ky − 1, x + kx − 1], zero outside the image.
public func im2col3x3(columns: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, shape s: ConvShape) {
    let h = s.height, w = s.width, p = s.positions, planes = s.batch
    parallelFor(s.inChannels) { ci in
        let channel = input + ci * p
        for ky in 0..<3 {
            for kx in 0..<3 {
                let row = columns + ((ci * 3 + ky) * 3 + kx) * p
                let dx = kx - 1
                for n in 0..<planes {
                    for y in 0..<h {
                        let dst = row + (n * h + y) * w
                        let sy = y + ky - 1
                        if sy < 0 || sy >= h { dst.update(repeating: 0, count: w); continue }
                        let src = channel + (n * h + sy) * w
                        // Shift the row by dx, with one zero at the edge it leaves.
                        if dx == 0 {
                            dst.update(from: src, count: w)
                        } else if dx < 0 {
                            dst[0] = 0
                            (dst + 1).update(from: src, count: w - 1)
                        } else {
                            dst.update(from: src + 1, count: w - 1)
                            dst[w - 1] = 0
                        }
                    }
                }
            }
        }
    }
}

/// inputGrad[ci, n, y, x] = Σ_{ky,kx} columns[(ci·3+ky)·3+kx, n, y − ky + 1, x − kx + 1] (overwrites).
public func col2im3x3(inputGrad: UnsafeMutablePointer<Float>, columns: UnsafePointer<Float>, shape s: ConvShape) {
    let h = s.height, w = s.width, p = s.positions, planes = s.batch
    parallelFor(s.inChannels) { ci in
        let channel = inputGrad + ci * p
        channel.update(repeating: 0, count: p)
        for ky in 0..<3 {
            for kx in 0..<3 {
                let row = columns + ((ci * 3 + ky) * 3 + kx) * p
                let dx = kx - 1
                // Output column ox feeds input column ox + dx; keep both inside the image.
                let oxStart = max(0, -dx), oxEnd = min(w, w - dx)
                let count = oxEnd - oxStart
                for n in 0..<planes {
                    for y in 0..<h {
                        let iy = y + ky - 1
                        if iy < 0 || iy >= h { continue }
                        let src = row + (n * h + y) * w + oxStart
                        let dst = channel + (n * h + iy) * w + oxStart + dx
                        addInPlace(dst, src, count: count)
                    }
                }
            }
        }
    }
}
