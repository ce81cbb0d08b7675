// ConvTranspose2d on CNHW activations (PyTorch's, weight [Cin, Cout, k, k]): the adjoint of the
// convolution from Cout channels at the transposed output's size back to Cin channels at its input's
// size, with the same kernel, stride and padding. With that convolution's column layout:
// Forward:  columns[Cout·k·k, N·H·W] = weightᵀ · input, output = col2im(columns) + bias
//           (Hout = (H − 1)·s − 2p + k).
// Backward: columns = im2col(outputGrad); inputGrad += weight · columns;
//           weightGrad += input · columnsᵀ; biasGrad += Σ outputGrad.
// The weight [Cin, Cout·k·k] is exactly the matrix those products need, so nothing is transposed in memory.

/// Shape of one transposed convolution over `batch` images of `height`×`width` (its input).
public struct ConvTransposeShape: Sendable, Equatable {
    public let batch, inChannels, outChannels, height, width, kernel, stride, padding: Int

    public init(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int,
                stride: Int = 1, padding: Int = 0) {
        precondition(kernel >= 1 && stride >= 1 && padding >= 0 && padding < kernel,
                     "ConvTranspose2d needs kernel ≥ 1, stride ≥ 1, 0 ≤ padding < kernel; got k\(kernel) s\(stride) p\(padding)")
        precondition((height - 1) * stride + kernel > 2 * padding, "ConvTranspose2d k\(kernel) s\(stride) p\(padding) leaves no output of \(height)×\(width)")
        self.batch = batch; self.inChannels = inChannels; self.outChannels = outChannels
        self.height = height; self.width = width; self.kernel = kernel; self.stride = stride; self.padding = padding
    }

    public var outputHeight: Int { (height - 1) * stride - 2 * padding + kernel }
    public var outputWidth: Int { (width - 1) * stride - 2 * padding + kernel }
    /// N·H·W: values per input channel (columns of the products).
    public var inputPositions: Int { batch * height * width }
    /// N·Hout·Wout: values per output channel.
    public var positions: Int { batch * outputHeight * outputWidth }
    /// The convolution this one is the adjoint of: Cout channels at the output size → Cin at the input size.
    public var adjoint: ConvShape {
        ConvShape(batch: batch, inChannels: outChannels, outChannels: inChannels, height: outputHeight, width: outputWidth,
                  kernel: kernel, stride: stride, padding: padding)
    }
    public var columnsCount: Int { adjoint.patchSize * adjoint.imagesPerChunk * height * width }
    /// Multiply-accumulates for the whole batch: H·W·Cin·Cout·k² per image.
    public var multiplyAccumulates: Int { inputPositions * inChannels * outChannels * kernel * kernel }
    public func with(batch: Int) -> ConvTransposeShape {
        ConvTransposeShape(batch: batch, inChannels: inChannels, outChannels: outChannels, height: height, width: width,
                           kernel: kernel, stride: stride, padding: padding)
    }
}

/// output[Cout, N, Hout, Wout] = convTranspose(input[Cin, N, H, W]) + bias.
public func convTranspose2dForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                   columns: UnsafeMutablePointer<Float>, shape s: ConvTransposeShape) {
    let a = s.adjoint, p = s.positions, q = s.inputPositions
    for co in 0..<s.outChannels { (output + co * p).update(repeating: bias[co], count: p) }
    let inPlane = s.height * s.width, outPlane = s.outputHeight * s.outputWidth
    forEachChunk(a) { first, images in
        let chunk = images * inPlane
        BLAS.gemm(transposeA: true, m: a.patchSize, n: chunk, k: s.inChannels, a: weight, lda: a.patchSize,
                  b: input + first * inPlane, ldb: q, beta: 0, c: columns, ldc: chunk)
        col2im(inputGrad: output + first * outPlane, columns: columns, channelStride: p, images: images, shape: a)
    }
}

/// Gradients of `convTranspose2dForward`, added into `inputGrad` (nil when not needed), `weightGrad`, `biasGrad`.
public func convTranspose2dBackward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                                    biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                    input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    columns: UnsafeMutablePointer<Float>, shape s: ConvTransposeShape) {
    let a = s.adjoint, p = s.positions, q = s.inputPositions
    addChannelSums(biasGrad, outputGrad, channels: s.outChannels, count: p)
    let inPlane = s.height * s.width, outPlane = s.outputHeight * s.outputWidth
    forEachChunk(a) { first, images in
        let chunk = images * inPlane
        im2col(columns: columns, input: outputGrad + first * outPlane, channelStride: p, images: images, shape: a)
        BLAS.gemm(transposeB: true, m: s.inChannels, n: a.patchSize, k: chunk, a: input + first * inPlane, lda: q,
                  b: columns, ldb: chunk, beta: 1, c: weightGrad, ldc: a.patchSize)
        if let inputGrad {
            BLAS.gemm(m: s.inChannels, n: chunk, k: a.patchSize, a: weight, lda: a.patchSize, b: columns, ldb: chunk,
                      beta: 1, c: inputGrad + first * inPlane, ldc: q)
        }
    }
}
