// Conv2d on CNHW activations, any square kernel, stride and zero padding, by im2col + sgemm:
// Forward:  columns[Cin·k·k, P] = im2col(input), output[Cout, P] = weight[Cout, Cin·k·k] · columns + bias,
//           with P = N·Hout·Wout. A 1×1 stride-1 convolution needs no columns: the input is the matrix.
// Backward: weightGrad += outputGrad · columnsᵀ, biasGrad += Σ_P outputGrad,
//           inputGrad += col2im(weightᵀ · outputGrad).
// Like every backward kernel here, it adds into the gradients it is given (see Models/Layer.swift).
// The batch is worked through in chunks of images (`imagesPerChunk`) so that the column scratch stays
// bounded for large batches. (Chunks small enough to stay in the 32 MiB L3 were measured slower here,
// not faster: the smaller products lose more than the cache gains.)

/// Shape of one convolution over `batch` images of `height`×`width`: a square `kernel`, `stride`, and
/// `padding` zeros on every side (PyTorch's Conv2d; the output is ⌊(H + 2p − k)/s⌋ + 1 high).
public struct ConvShape: Sendable, Equatable {
    public let batch, inChannels, outChannels, height, width, kernel, stride, padding: Int

    /// `padding` defaults to k/2: "same" size for the odd kernels at stride 1.
    public init(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int,
                stride: Int = 1, padding: Int? = nil) {
        let padding = padding ?? kernel / 2
        precondition(kernel >= 1 && stride >= 1 && padding >= 0 && padding < kernel,
                     "Conv2d needs kernel ≥ 1, stride ≥ 1, 0 ≤ padding < kernel; got k\(kernel) s\(stride) p\(padding)")
        precondition(height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                     "Conv2d kernel \(kernel) with padding \(padding) does not fit \(height)×\(width)")
        self.batch = batch; self.inChannels = inChannels; self.outChannels = outChannels
        self.height = height; self.width = width; self.kernel = kernel; self.stride = stride; self.padding = padding
    }

    public var outputHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outputWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// N·Hout·Wout: columns of the product.
    public var positions: Int { batch * outputHeight * outputWidth }
    /// N·H·W: values per input channel.
    public var inputPositions: Int { batch * height * width }
    /// Cin·k·k: the reduction length of the forward product.
    public var patchSize: Int { inChannels * kernel * kernel }
    /// 1×1, stride 1, no padding: the input is already the column matrix.
    public var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }
    /// 3×3, stride 1, padding 1: the U-Nets' convolution, with its own row-shifting im2col.
    var isSame3x3: Bool { kernel == 3 && stride == 1 && padding == 1 }
    /// Images whose columns are built and multiplied together: as many as fit the budget, at least one.
    public var imagesPerChunk: Int {
        let perImage = patchSize * outputHeight * outputWidth * MemoryLayout<Float>.size
        return max(1, min(batch, convolutionColumnsBudgetBytes / max(perImage, 1)))
    }
    /// Floats of column scratch the convolution needs (0 for a pointwise one).
    public var columnsCount: Int { isPointwise ? 0 : patchSize * imagesPerChunk * outputHeight * outputWidth }
    /// Forward multiply-accumulates for the whole batch.
    public var multiplyAccumulates: Int { outChannels * patchSize * positions }
    /// The same convolution over another number of images.
    public func with(batch: Int) -> ConvShape {
        ConvShape(batch: batch, inChannels: inChannels, outChannels: outChannels, height: height, width: width,
                  kernel: kernel, stride: stride, padding: padding)
    }
}

/// Bytes of column matrix built per chunk: the whole batch of 8 for every layer of both U-Nets.
nonisolated(unsafe) public var convolutionColumnsBudgetBytes = 256 << 20

/// output[Cout, N, Hout, Wout] = conv(input[Cin, N, H, W]) + bias.
public func conv2dForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                          columns: UnsafeMutablePointer<Float>, shape s: ConvShape) {
    let p = s.positions
    for co in 0..<s.outChannels { (output + co * p).update(repeating: bias[co], count: p) }
    if s.isPointwise {
        BLAS.gemm(m: s.outChannels, n: p, k: s.patchSize, a: weight, lda: s.patchSize, b: input, ldb: p,
                  beta: 1, c: output, ldc: p)
        return
    }
    let inPlane = s.height * s.width, outPlane = s.outputHeight * s.outputWidth
    forEachChunk(s) { first, images in
        let chunk = images * outPlane
        im2col(columns: columns, input: input + first * inPlane, channelStride: s.inputPositions, images: images, shape: s)
        BLAS.gemm(m: s.outChannels, n: chunk, k: s.patchSize, a: weight, lda: s.patchSize, b: columns, ldb: chunk,
                  beta: 1, c: output + first * outPlane, ldc: p)
    }
}

/// Gradients of `conv2dForward`, added into `weightGrad`, `biasGrad` and `inputGrad` (nil when the
/// input needs no gradient). `columns` is scratch: the input's columns are rebuilt here rather than
/// kept from the forward pass.
public func conv2dBackward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                           biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                           input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           columns: UnsafeMutablePointer<Float>, shape s: ConvShape) {
    let p = s.positions
    addChannelSums(biasGrad, outputGrad, channels: s.outChannels, count: p)
    if s.isPointwise {
        BLAS.gemm(transposeB: true, m: s.outChannels, n: s.patchSize, k: p, a: outputGrad, lda: p,
                  b: input, ldb: p, beta: 1, c: weightGrad, ldc: s.patchSize)
        if let inputGrad {
            BLAS.gemm(transposeA: true, m: s.inChannels, n: p, k: s.outChannels, a: weight, lda: s.inChannels,
                      b: outputGrad, ldb: p, beta: 1, c: inputGrad, ldc: p)
        }
        return
    }
    let inPlane = s.height * s.width, outPlane = s.outputHeight * s.outputWidth
    forEachChunk(s) { first, images in
        let chunk = images * outPlane
        let dy = outputGrad + first * outPlane
        im2col(columns: columns, input: input + first * inPlane, channelStride: s.inputPositions, images: images, shape: s)
        BLAS.gemm(transposeB: true, m: s.outChannels, n: s.patchSize, k: chunk, a: dy, lda: p,
                  b: columns, ldb: chunk, beta: 1, c: weightGrad, ldc: s.patchSize)
        guard let inputGrad else { return }
        BLAS.gemm(transposeA: true, m: s.patchSize, n: chunk, k: s.outChannels, a: weight, lda: s.patchSize,
                  b: dy, ldb: p, beta: 0, c: columns, ldc: chunk)
        col2im(inputGrad: inputGrad + first * inPlane, columns: columns, channelStride: s.inputPositions, images: images, shape: s)
    }
}

@inline(__always)
func forEachChunk(_ s: ConvShape, _ body: (_ firstImage: Int, _ images: Int) -> Void) {
    let step = s.imagesPerChunk
    var first = 0
    while first < s.batch {
        body(first, min(step, s.batch - first))
        first += step
    }
}
