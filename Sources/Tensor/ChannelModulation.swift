/// y[c, n, :] = scale[n, c]·x[c, n, :] + shift[n, c] over the `plane` values of each (c, n): ContextUnet's
/// conditioning of a decoder activation by its context and time embeddings ([N, C] row-major, as Linear
/// writes them). May not run in place (backward needs x).
public func modulateChannelsForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                    scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                                    channels: Int, batch: Int, plane: Int) {
    parallelFor(channels) { c in
        for n in 0..<batch {
            let a = scale[n * channels + c], b = shift[n * channels + c], o = (c * batch + n) * plane
            let x = input + o, y = output + o
            for i in 0..<plane { y[i] = a * x[i] + b }
        }
    }
}

/// Adds inputGrad += outputGrad·scale, scaleGrad[n, c] += Σ outputGrad·x, shiftGrad[n, c] += Σ outputGrad.
public func modulateChannelsBackward(inputGrad: UnsafeMutablePointer<Float>, scaleGrad: UnsafeMutablePointer<Float>,
                                     shiftGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                                     input: UnsafePointer<Float>, scale: UnsafePointer<Float>,
                                     channels: Int, batch: Int, plane: Int) {
    parallelFor(channels) { c in
        for n in 0..<batch {
            let a = scale[n * channels + c], o = (c * batch + n) * plane
            let x = input + o, dy = outputGrad + o, dx = inputGrad + o
            var sumGX: Double = 0, sumG: Double = 0
            for i in 0..<plane {
                dx[i] += a * dy[i]
                sumGX += Double(dy[i]) * Double(x[i]); sumG += Double(dy[i])
            }
            scaleGrad[n * channels + c] += Float(sumGX)
            shiftGrad[n * channels + c] += Float(sumG)
        }
    }
}
