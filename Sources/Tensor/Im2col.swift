// The column matrix of a convolution and its adjoint. Row (ci·k + ky)·k + kx, column (n, oy, ox) of
// the columns holds input[ci, n, oy·s − p + ky, ox·s − p + kx], zero outside the image. `images`
// images are processed, each input channel ci starting at input + ci·channelStride (the images of one
// channel are contiguous in CNHW). The 3×3 stride-1 case has its own row-shifting loops: it is every
// convolution of the U-Nets, and whole-row copies are what makes it cheap.

/// Builds the columns of `images` images for the convolution `s` (its batch is ignored).
public func im2col(columns: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, channelStride: Int,
                   images: Int, shape s: ConvShape) {
    if s.isSame3x3 {
        im2col3x3(columns: columns, input: input, inChannels: s.inChannels, channelStride: channelStride,
                  images: images, height: s.height, width: s.width)
        return
    }
    let (h, w, k, stride, pad) = (s.height, s.width, s.kernel, s.stride, s.padding)
    let oh = s.outputHeight, ow = s.outputWidth, rowLength = images * oh * ow
    parallelFor(s.inChannels) { ci in
        let channel = input + ci * channelStride
        for ky in 0..<k {
            for kx in 0..<k {
                let row = columns + ((ci * k + ky) * k + kx) * rowLength
                for n in 0..<images {
                    for oy in 0..<oh {
                        let dst = row + (n * oh + oy) * ow
                        let iy = oy * stride - pad + ky
                        guard iy >= 0 && iy < h else { dst.update(repeating: 0, count: ow); continue }
                        let src = channel + (n * h + iy) * w
                        for ox in 0..<ow {
                            let ix = ox * stride - pad + kx
                            dst[ox] = ix >= 0 && ix < w ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }
}

/// Adds the adjoint of `im2col` with the same arguments into `inputGrad`:
/// inputGrad[ci, n, iy, ix] += Σ of the column entries that read input[ci, n, iy, ix].
public func col2im(inputGrad: UnsafeMutablePointer<Float>, columns: UnsafePointer<Float>, channelStride: Int,
                   images: Int, shape s: ConvShape) {
    if s.isSame3x3 {
        col2im3x3(inputGrad: inputGrad, columns: columns, inChannels: s.inChannels, channelStride: channelStride,
                  images: images, height: s.height, width: s.width)
        return
    }
    let (h, w, k, stride, pad) = (s.height, s.width, s.kernel, s.stride, s.padding)
    let oh = s.outputHeight, ow = s.outputWidth, rowLength = images * oh * ow
    parallelFor(s.inChannels) { ci in
        let channel = inputGrad + ci * channelStride
        for ky in 0..<k {
            for kx in 0..<k {
                let row = columns + ((ci * k + ky) * k + kx) * rowLength
                for n in 0..<images {
                    for oy in 0..<oh {
                        let iy = oy * stride - pad + ky
                        guard iy >= 0 && iy < h else { continue }
                        let src = row + (n * oh + oy) * ow, dst = channel + (n * h + iy) * w
                        for ox in 0..<ow {
                            let ix = ox * stride - pad + kx
                            if ix >= 0 && ix < w { dst[ix] += src[ox] }
                        }
                    }
                }
            }
        }
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

/// inputGrad[ci, n, y, x] += Σ_{ky,kx} columns[(ci·3+ky)·3+kx, n, y − ky + 1, x − kx + 1],
/// the adjoint of `im2col3x3` with the same arguments.
public func col2im3x3(inputGrad: UnsafeMutablePointer<Float>, columns: UnsafePointer<Float>, inChannels: Int,
                      channelStride: Int, images: Int, height h: Int, width w: Int) {
    let rowLength = images * h * w
    parallelFor(inChannels) { ci in
        let channel = inputGrad + ci * channelStride
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
