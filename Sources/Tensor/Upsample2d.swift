// Bilinear upsampling ×2 with align_corners=True (the CNN denoiser's; align_corners=False is further down)
// over `planes` independent height×width planes.
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

// Bilinear upsampling ×2 with align_corners=False (half-pixel centres: PyTorch's default, Keras/TF's
// UpSampling2D(interpolation="bilinear")), over `planes` independent height×width planes. Separable; per
// axis, output 2i sits a quarter pixel before input i and 2i + 1 a quarter after it:
//   out[2i] = 0.25·x[max(i−1, 0)] + 0.75·x[i],   out[2i+1] = 0.75·x[i] + 0.25·x[min(i+1, n−1)]
// (at the borders both taps are the same pixel). The weights are exact in Float.

/// The two input taps of output `o` along an axis of `inputSize` pixels, lower index first, and their weights.
@inline(__always)
private func halfPixelTaps(_ o: Int, inputSize: Int) -> (Int, Int, Float, Float) {
    let i = o >> 1
    return o & 1 == 0 ? (max(i - 1, 0), i, 0.25, 0.75) : (i, min(i + 1, inputSize - 1), 0.75, 0.25)
}

/// output[p, 2H, 2W] = bilinear ×2 (align_corners=False) of input[p, H, W] for each of `planes` planes.
public func upsampleBilinearHalfPixel2xForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                               planes: Int, height: Int, width: Int) {
    let oh = 2 * height, ow = 2 * width
    parallelFor(planes) { p in
        let x = input + p * height * width, y = output + p * oh * ow
        for oy in 0..<oh {
            let (y0, y1, wy0, wy1) = halfPixelTaps(oy, inputSize: height)
            let r0 = x + y0 * width, r1 = x + y1 * width, row = y + oy * ow
            for ox in 0..<ow {
                let (x0, x1, wx0, wx1) = halfPixelTaps(ox, inputSize: width)
                row[ox] = wy0 * (wx0 * r0[x0] + wx1 * r0[x1]) + wy1 * (wx0 * r1[x0] + wx1 * r1[x1])
            }
        }
    }
}

/// Adds the adjoint of `upsampleBilinearHalfPixel2xForward` into `inputGrad` (a border pixel that is both
/// taps of an output gets both weights).
public func upsampleBilinearHalfPixel2xBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                                planes: Int, height: Int, width: Int) {
    let oh = 2 * height, ow = 2 * width
    parallelFor(planes) { p in   // each thread its own planes: no two write the same input gradient
        let dx = inputGrad + p * height * width, dy = outputGrad + p * oh * ow
        for oy in 0..<oh {
            let (y0, y1, wy0, wy1) = halfPixelTaps(oy, inputSize: height)
            let r0 = dx + y0 * width, r1 = dx + y1 * width, row = dy + oy * ow
            for ox in 0..<ow {
                let (x0, x1, wx0, wx1) = halfPixelTaps(ox, inputSize: width)
                let g = row[ox], g0 = wy0 * g, g1 = wy1 * g
                r0[x0] += wx0 * g0; r0[x1] += wx1 * g0
                r1[x0] += wx0 * g1; r1[x1] += wx1 * g1
            }
        }
    }
}
