// Activations inside the models are stored channel-major, [C, N, H, W] ("CNHW"), not PyTorch's NCHW.
// why: a convolution over the whole batch is then one matrix product, weight[Cout, Cin·k·k] ×
// columns[Cin·k·k, N·H·W], whose result is already the next layer's input, with no transposes; and
// BatchNorm's per-channel statistics run over one contiguous stretch of N·H·W values.
// Models convert at their boundary only (input x_t and the predicted noise), with these two functions.

/// dst[c, n, :] = src[n, c, :] for `plane` = H·W contiguous values per (n, c).
public func nchwToCNHW(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>,
                       batch: Int, channels: Int, plane: Int) {
    for n in 0..<batch {
        for c in 0..<channels {
            (dst + (c * batch + n) * plane).update(from: src + (n * channels + c) * plane, count: plane)
        }
    }
}

/// dst[n, c, :] = src[c, n, :], the inverse of `nchwToCNHW`.
public func cnhwToNCHW(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>,
                       batch: Int, channels: Int, plane: Int) {
    for n in 0..<batch {
        for c in 0..<channels {
            (dst + (n * channels + c) * plane).update(from: src + (c * batch + n) * plane, count: plane)
        }
    }
}
