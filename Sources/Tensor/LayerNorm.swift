// LayerNorm((C, H, W)) on CNHW activations: for each image, the mean and biased variance over all its
// C·H·W values, then y = (x − μ)·invStd·γ + β with an elementwise affine γ, β of shape [C, H, W]
// (PyTorch's order: element (c, y, x) at c·H·W + y·W + x). Image n's channel c is the plane at
// (c·N + n)·H·W, so an image is C planes N·H·W apart, and plane c of every image meets γ's plane c.
// MyUNet's LayerNorm is followed by a convolution, so no activation is fused.

public struct LayerNormShape: Sendable, Equatable {
    public let batch, channels: Int
    /// H·W values per plane.
    public let plane: Int
    public let epsilon: Float
    public init(batch: Int, channels: Int, plane: Int, epsilon: Float = 1e-5) {
        self.batch = batch; self.channels = channels; self.plane = plane; self.epsilon = epsilon
    }
    /// C·H·W: the normalised values of one image, and the size of the weight and of the bias.
    public var valuesPerImage: Int { channels * plane }
}

/// y = (x − μ)·invStd·γ + β per image; saves μ and invStd at n for the backward pass.
public func layerNormForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             savedMean: UnsafeMutablePointer<Float>, savedInvStd: UnsafeMutablePointer<Float>,
                             shape s: LayerNormShape) {
    let planeStride = s.batch * s.plane
    parallelFor(s.batch) { n in
        let (mean, invStd) = stridedPlaneStatistics(input + n * s.plane, planes: s.channels, planeStride: planeStride,
                                                    plane: s.plane, epsilon: s.epsilon)
        savedMean[n] = mean; savedInvStd[n] = invStd
        for c in 0..<s.channels {
            let x = input + (c * s.batch + n) * s.plane, y = output + (c * s.batch + n) * s.plane
            let gamma = weight + c * s.plane, beta = bias + c * s.plane
            var i = 0
            while i + 8 <= s.plane {
                store8((load8(x + i) - mean) * invStd * load8(gamma + i) + load8(beta + i), y + i)
                i += 8
            }
            while i < s.plane { y[i] = (x[i] - mean) * invStd * gamma[i] + beta[i]; i += 1 }
        }
    }
}

/// Gradients of `layerNormForward`, from the input and the saved statistics. With M = C·H·W:
/// dγ += Σ_n dy·x̂, dβ += Σ_n dy (elementwise), dx += invStd·(γ·dy − mean(γ·dy) − x̂·mean(γ·dy·x̂)), the
/// means over the image. Adds into `inputGrad`, `weightGrad` and `biasGrad`.
public func layerNormBackward(inputGrad: UnsafeMutablePointer<Float>, weightGrad: UnsafeMutablePointer<Float>,
                              biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                              input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              savedMean: UnsafePointer<Float>, savedInvStd: UnsafePointer<Float>, shape s: LayerNormShape) {
    let m = Double(s.valuesPerImage)
    // The input gradient image by image (each needs its own two sums) ...
    parallelFor(s.batch) { n in
        let mean = savedMean[n], invStd = savedInvStd[n]
        var sumGammaG = 0.0, sumGammaGXhat = 0.0
        for c in 0..<s.channels {
            let x = input + (c * s.batch + n) * s.plane, dy = outputGrad + (c * s.batch + n) * s.plane
            let gamma = weight + c * s.plane
            var accG = SIMD8<Float>(), accGX = SIMD8<Float>(), i = 0
            while i + 8 <= s.plane {
                let g = load8(gamma + i) * load8(dy + i)
                accG += g; accGX += g * ((load8(x + i) - mean) * invStd)
                i += 8
            }
            while i < s.plane {
                let g = gamma[i] * dy[i]
                sumGammaG += Double(g); sumGammaGXhat += Double(g * ((x[i] - mean) * invStd))
                i += 1
            }
            // why per plane: Float partials over at most one plane (784 values here), gathered in Double.
            sumGammaG += Double(accG.sum()); sumGammaGXhat += Double(accGX.sum())
        }
        let offset = -invStd * Float(sumGammaG / m), xhatScale = -invStd * Float(sumGammaGXhat / m)
        for c in 0..<s.channels {
            let at = (c * s.batch + n) * s.plane
            let x = input + at, dy = outputGrad + at, dx = inputGrad + at, gamma = weight + c * s.plane
            var i = 0
            while i + 8 <= s.plane {
                let xhat = (load8(x + i) - mean) * invStd
                store8(load8(dx + i) + invStd * load8(gamma + i) * load8(dy + i) + xhatScale * xhat + offset, dx + i)
                i += 8
            }
            while i < s.plane {
                dx[i] += invStd * gamma[i] * dy[i] + xhatScale * ((x[i] - mean) * invStd) + offset
                i += 1
            }
        }
    }
    // ... and the parameter gradients plane by plane (disjoint slices of γ and β for each thread).
    parallelFor(s.channels) { c in
        let wg = weightGrad + c * s.plane, bg = biasGrad + c * s.plane
        for n in 0..<s.batch {
            let at = (c * s.batch + n) * s.plane, x = input + at, dy = outputGrad + at
            let mean = savedMean[n], invStd = savedInvStd[n]
            var i = 0
            while i + 8 <= s.plane {
                let g = load8(dy + i)
                store8(load8(wg + i) + g * ((load8(x + i) - mean) * invStd), wg + i)
                store8(load8(bg + i) + g, bg + i)
                i += 8
            }
            while i < s.plane { wg[i] += dy[i] * ((x[i] - mean) * invStd); bg[i] += dy[i]; i += 1 }
        }
    }
}
