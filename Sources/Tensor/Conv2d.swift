// Conv2d with stride 1 on CNHW activations: kernel 3 (padding 1) or kernel 1 (no padding).
// Forward:  columns[Cin·k·k, P] = im2col(input), output[Cout, P] = weight[Cout, Cin·k·k] · columns + bias,
//           with P = N·H·W. For k = 1 the input itself is the column matrix.
// Backward: weightGrad = outputGrad · columnsᵀ, biasGrad = Σ_P outputGrad,
//           inputGrad = col2im(weightᵀ · outputGrad).
// A 3×3 convolution works through the batch in chunks of images (`imagesPerChunk`) so that the column
// scratch stays bounded for large batches. (Chunks small enough to stay in the 32 MiB L3 were measured
// slower here, not faster: the smaller products lose more than the cache gains.)

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
    /// Images whose columns are built and multiplied together: as many as fit the budget, at least one.
    public var imagesPerChunk: Int {
        let perImage = patchSize * height * width * MemoryLayout<Float>.size
        return max(1, min(batch, convolutionColumnsBudgetBytes / max(perImage, 1)))
    }
    /// Floats needed in the shared column scratch buffer (0 for a 1×1 convolution).
    public var columnsCount: Int { kernel == 1 ? 0 : patchSize * imagesPerChunk * height * width }
    /// Forward multiply-accumulates for the whole batch.
    public var multiplyAccumulates: Int { outChannels * patchSize * positions }
}

/// Bytes of column matrix built per chunk: the whole batch of 8 for every layer of both U-Nets.
nonisolated(unsafe) public var convolutionColumnsBudgetBytes = 256 << 20

/// output[Cout, N, H, W] = conv(input[Cin, N, H, W]) + bias.
public func conv2dForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                          columns: UnsafeMutablePointer<Float>, shape s: ConvShape) {
    let p = s.positions
    for co in 0..<s.outChannels { (output + co * p).update(repeating: bias[co], count: p) }
    if s.kernel == 1 {
        BLAS.gemm(m: s.outChannels, n: p, k: s.patchSize, a: weight, lda: s.patchSize, b: input, ldb: p,
                  beta: 1, c: output, ldc: p)
        return
    }
    let plane = s.height * s.width
    forEachChunk(s) { first, images in
        let chunk = images * plane
        im2col3x3(columns: columns, input: input + first * plane, inChannels: s.inChannels, channelStride: p,
                  images: images, height: s.height, width: s.width)
        BLAS.gemm(m: s.outChannels, n: chunk, k: s.patchSize, a: weight, lda: s.patchSize, b: columns, ldb: chunk,
                  beta: 1, c: output + first * plane, ldc: p)
    }
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
    if s.kernel == 1 {
        BLAS.gemm(transposeB: true, m: s.outChannels, n: s.patchSize, k: p, a: outputGrad, lda: p,
                  b: input, ldb: p, beta: accumulate ? 1 : 0, c: weightGrad, ldc: s.patchSize)
        if let inputGrad {
            BLAS.gemm(transposeA: true, m: s.inChannels, n: p, k: s.outChannels, a: weight, lda: s.inChannels,
                      b: outputGrad, ldb: p, beta: 0, c: inputGrad, ldc: p)
        }
        return
    }
    let plane = s.height * s.width
    forEachChunk(s) { first, images in
        let chunk = images * plane
        let dy = outputGrad + first * plane
        im2col3x3(columns: columns, input: input + first * plane, inChannels: s.inChannels, channelStride: p,
                  images: images, height: s.height, width: s.width)
        BLAS.gemm(transposeB: true, m: s.outChannels, n: s.patchSize, k: chunk, a: dy, lda: p,
                  b: columns, ldb: chunk, beta: (accumulate || first > 0) ? 1 : 0, c: weightGrad, ldc: s.patchSize)
        guard let inputGrad else { return }
        BLAS.gemm(transposeA: true, m: s.patchSize, n: chunk, k: s.outChannels, a: weight, lda: s.patchSize,
                  b: dy, ldb: p, beta: 0, c: columns, ldc: chunk)
        col2im3x3(inputGrad: inputGrad + first * plane, columns: columns, inChannels: s.inChannels, channelStride: p,
                  images: images, height: s.height, width: s.width)
    }
}

@inline(__always)
private func forEachChunk(_ s: ConvShape, _ body: (_ firstImage: Int, _ images: Int) -> Void) {
    let step = s.imagesPerChunk
    var first = 0
    while first < s.batch {
        body(first, min(step, s.batch - first))
        first += step
    }
}

/// columns[(ci·3 + ky)·3 + kx, n, y, x] = input[ci, n, y + ky − 1, x + kx − 1], zero outside the image,
/// for `images` images whose channel ci starts at input + ci·channelStride.
public func im2col3x3(columns: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, inChannels: Int,
                      channelStride: Int, images: Int, height h: Int, width w: Int) {
    let rowLength = images * h * w
    parallelFor(inChannels) { ci in
        let channel = input + ci * channelStride
        for ky in 0..<3 {
            for kx in 0..<3 {
                let row = columns + ((ci * 3 + ky) * 3 + kx) * rowLength
                let dx = kx - 1
                for n in 0..<images {
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

/// inputGrad[ci, n, y, x] = Σ_{ky,kx} columns[(ci·3+ky)·3+kx, n, y − ky + 1, x − kx + 1] (overwrites),
/// the adjoint of `im2col3x3` with the same arguments.
public func col2im3x3(inputGrad: UnsafeMutablePointer<Float>, columns: UnsafePointer<Float>, inChannels: Int,
                      channelStride: Int, images: Int, height h: Int, width w: Int) {
    let rowLength = images * h * w
    parallelFor(inChannels) { ci in
        let channel = inputGrad + ci * channelStride
        channel.update(repeating: 0, count: rowLength)
        for ky in 0..<3 {
            for kx in 0..<3 {
                let row = columns + ((ci * 3 + ky) * 3 + kx) * rowLength
                let dx = kx - 1
                // Output column ox feeds input column ox + dx; keep both inside the image.
                let oxStart = max(0, -dx), oxEnd = min(w, w - dx)
                let count = oxEnd - oxStart
                for n in 0..<images {
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
