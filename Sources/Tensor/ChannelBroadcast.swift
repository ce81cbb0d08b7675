/// output[c, n, :] = values[n, c] over the `plane` values of each (c, n): a per-image vector [N, C] as a
/// C-channel CNHW map, each channel constant over H×W (nearest upsampling of a 1×1 map). Writes, as a
/// forward pass does; `output` may be the second part of a concatenation.
public func broadcastPerChannelForward(output: UnsafeMutablePointer<Float>, values: UnsafePointer<Float>,
                                       channels: Int, batch: Int, plane: Int) {
    for c in 0..<channels {
        for n in 0..<batch { (output + (c * batch + n) * plane).update(repeating: values[n * channels + c], count: plane) }
    }
}

/// valuesGrad[n, c] += Σ over the plane of outputGrad[c, n, :], the adjoint of `broadcastPerChannelForward`.
public func broadcastPerChannelBackward(valuesGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                        channels: Int, batch: Int, plane: Int) {
    for c in 0..<channels {
        for n in 0..<batch { valuesGrad[n * channels + c] += sumOf(outputGrad + (c * batch + n) * plane, count: plane) }
    }
}
