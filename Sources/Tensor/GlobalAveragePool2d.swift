/// Global average pooling of a CNHW activation [C, N, H, W] to features [N, C] (row-major, as Linear
/// takes them): output[n, c] = mean over the plane of input[c, n, :, :]. `plane` = H·W.
public func globalAveragePoolForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                     channels: Int, batch: Int, plane: Int) {
    let scale = 1 / Float(plane)
    for c in 0..<channels {
        for n in 0..<batch {
            output[n * channels + c] = sumOf(input + (c * batch + n) * plane, count: plane) * scale
        }
    }
}

/// Adds inputGrad[c, n, :, :] += outputGrad[n, c] / plane.
public func globalAveragePoolBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                      channels: Int, batch: Int, plane: Int) {
    let scale = 1 / Float(plane)
    for c in 0..<channels {
        for n in 0..<batch {
            let g = outputGrad[n * channels + c] * scale, dx = inputGrad + (c * batch + n) * plane
            for i in 0..<plane { dx[i] += g }
        }
    }
}
