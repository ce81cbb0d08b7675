// Bilinear upsampling ×2 with align_corners=True over `planes` independent height×width planes.
// Output pixel (oy, ox) samples the input at (oy·(H−1)/(2H−1), ox·(W−1)/(2W−1)); weights are computed in
// Float in the same order as PyTorch's CPU kernel so results agree to the last bits.

@inline(__always)
private func sourceIndex(_ o: Int, inputSize: Int, scale: Float) -> (Int, Int, Float, Float) {
    let real = scale * Float(o)
    let i0 = Int(real)
    let i1 = i0 + (i0 < inputSize - 1 ? 1 : 0)
    let lambda1 = real - Float(i0)
    return (i0, i1, 1 - lambda1, lambda1)
}

@inline(__always)
private func alignCornersScale(_ inputSize: Int) -> Float {
    let outputSize = 2 * inputSize
    return outputSize > 1 ? Float(inputSize - 1) / Float(outputSize - 1) : 0
}

public func upsampleBilinear2xForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                      planes: Int, height: Int, width: Int) {
    let oh = 2 * height, ow = 2 * width
    let sy = alignCornersScale(height), sx = alignCornersScale(width)
    parallelFor(planes) { p in
        let x = input + p * height * width, y = output + p * oh * ow
        for oy in 0..<oh {
            let (y0, y1, wy0, wy1) = sourceIndex(oy, inputSize: height, scale: sy)
            let r0 = x + y0 * width, r1 = x + y1 * width
            for ox in 0..<ow {
                let (x0, x1, wx0, wx1) = sourceIndex(ox, inputSize: width, scale: sx)
                y[oy * ow + ox] = wy0 * (wx0 * r0[x0] + wx1 * r0[x1]) + wy1 * (wx0 * r1[x0] + wx1 * r1[x1])
            }
        }
    }
}

/// Adds the adjoint of the forward pass into `inputGrad`.
public func upsampleBilinear2xBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                       planes: Int, height: Int, width: Int) {
    let oh = 2 * height, ow = 2 * width
    let sy = alignCornersScale(height), sx = alignCornersScale(width)
    parallelFor(planes) { p in
        let dx = inputGrad + p * height * width, dy = outputGrad + p * oh * ow
        for oy in 0..<oh {
            let (y0, y1, wy0, wy1) = sourceIndex(oy, inputSize: height, scale: sy)
            for ox in 0..<ow {
                let (x0, x1, wx0, wx1) = sourceIndex(ox, inputSize: width, scale: sx)
                let g = dy[oy * ow + ox]
                dx[y0 * width + x0] += wy0 * wx0 * g
                dx[y0 * width + x1] += wy0 * wx1 * g
                dx[y1 * width + x0] += wy1 * wx0 * g
                dx[y1 * width + x1] += wy1 * wx1 * g
            }
        }
    }
}
