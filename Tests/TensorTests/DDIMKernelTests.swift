import Foundation
import Testing
import TestSupport
import Tensor

/// The kernels the DDIM U-Net adds (ZOO.md §1, §5): bilinear ×2 with align_corners=False, the broadcast of
/// a per-image vector over H×W, and the noise-variance embedding, by hand and against central differences
/// (their PyTorch values: ZooKernelGoldenTests' `upsample_bilinear`, and the whole model's golden group).
@Suite struct DDIMKernelTests {
    /// Far below a lost tap or a swapped index (O(1)); both kernels are linear, so central differences are
    /// exact up to the Float rounding of the loss (h = 0.5 keeps it small).
    static let tolerance = 3e-4

    @Test func halfPixelBilinearFollowsTheQuarterPixelRuleOnEachAxis() {
        // Per axis out[2i] = 0.25·x[max(i−1,0)] + 0.75·x[i], out[2i+1] = 0.75·x[i] + 0.25·x[min(i+1,n−1)]:
        // one row [0, 4, 8] gives [0, 1, 3, 5, 7, 8] (the borders repeat their pixel), every output row alike.
        var y = [Float](repeating: .nan, count: 2 * 6)
        upsampleBilinearHalfPixel2xForward(output: &y, input: [0, 4, 8], planes: 1, height: 1, width: 3)
        #expect(y == [0, 1, 3, 5, 7, 8, 0, 1, 3, 5, 7, 8])
        // Separable: x[i][j] = 10·i + j on 3×2 gives out[a][b] = u(a) + v(b), u and v the 1-D rule on [0, 10, 20] and [0, 1].
        let x: [Float] = [0, 1, 10, 11, 20, 21]
        var z = [Float](repeating: .nan, count: 6 * 4)
        upsampleBilinearHalfPixel2xForward(output: &z, input: x, planes: 1, height: 3, width: 2)
        let u: [Float] = [0, 2.5, 7.5, 12.5, 17.5, 20], v: [Float] = [0, 0.25, 0.75, 1]
        for a in 0..<6 { for b in 0..<4 { #expect(z[a * 4 + b] == u[a] + v[b], "out[\(a)][\(b)] = \(z[a * 4 + b])") } }
        // Its align_corners=True neighbour gives other values on the same input: the two modes are apart.
        var corners = [Float](repeating: .nan, count: 12)
        upsampleBilinear2xForward(output: &corners, input: [0, 4, 8], planes: 1, height: 1, width: 3)
        #expect(corners[1] != 1)
    }

    @Test func halfPixelBilinearBackwardAddsEachInputsWeightsSummingToFour() {
        // Each input pixel gets total weight 2 per axis (0.75 + 0.25 + 0.75 + 0.25, the borders' repeated
        // taps included), so an all-ones output gradient adds 4 to each input: onto the 1 already there.
        var gx = [Float](repeating: 1, count: 6)
        upsampleBilinearHalfPixel2xBackward(inputGrad: &gx, outputGrad: [Float](repeating: 1, count: 24), planes: 1, height: 2, width: 3)
        #expect(gx == [Float](repeating: 5, count: 6))
        // The corner output (0, 0) reads the corner input alone.
        var g = [Float](repeating: 0, count: 24); g[0] = 2
        var corner = [Float](repeating: 0, count: 6)
        upsampleBilinearHalfPixel2xBackward(inputGrad: &corner, outputGrad: g, planes: 1, height: 2, width: 3)
        #expect(corner == [2, 0, 0, 0, 0, 0])
    }

    @Test(arguments: [(3, 4), (2, 5), (1, 3), (1, 1)])
    func halfPixelBilinearGradientMatchesFiniteDifferences(height: Int, width: Int) {
        let planes = 3
        let x = normals(planes * height * width, seed: 171), r = normals(planes * 4 * height * width, seed: 172)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count)
            upsampleBilinearHalfPixel2xForward(output: &y, input: x, planes: planes, height: height, width: width)
            return y
        }
        var gx = [Float](repeating: 0, count: x.count)
        upsampleBilinearHalfPixel2xBackward(inputGrad: &gx, outputGrad: r, planes: planes, height: height, width: width)
        let check = finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0), r) }
        report("fd half-pixel bilinear \(height)x\(width): \(check.description)")
        #expect(check.checked == x.count && check.maxError < Self.tolerance, "\(check.description)")
    }

    @Test func broadcastFillsEachChannelAfterTheConcatenatedOnesAndSumsBack() {
        // A concatenation [a (2 channels), e (3 channels)] of 2 images of 2×2: the broadcast writes e[n, c]
        // over the plane of channel 2 + c, image n, and leaves a's channels alone.
        let (batch, plane, before, channels) = (2, 4, 2, 3)
        let values: [Float] = [1, 2, 3, 4, 5, 6]   // [N, C]
        var cat = [Float](repeating: -7, count: (before + channels) * batch * plane)
        cat.withUnsafeMutableBufferPointer {
            broadcastPerChannelForward(output: $0.baseAddress! + before * batch * plane, values: values, channels: channels,
                                       batch: batch, plane: plane)
        }
        #expect(cat[0..<(before * batch * plane)].allSatisfy { $0 == -7 })
        for c in 0..<channels {
            for n in 0..<batch {
                let start = ((before + c) * batch + n) * plane
                #expect(cat[start..<(start + plane)].allSatisfy { $0 == values[n * channels + c] }, "channel \(c), image \(n)")
            }
        }
        let x = normals(channels * batch, seed: 181), r = normals(channels * batch * plane, seed: 182)
        func forward(_ v: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count)
            broadcastPerChannelForward(output: &y, values: v, channels: channels, batch: batch, plane: plane)
            return y
        }
        var gx = [Float](repeating: 0.5, count: x.count)   // backward adds: start from 0.5, take it off after
        broadcastPerChannelBackward(valuesGrad: &gx, outputGrad: r, channels: channels, batch: batch, plane: plane)
        let check = finiteDifferenceCheck(point: x, analytic: gx.map { $0 - 0.5 }, h: 0.5) { dot(forward($0), r) }
        report("fd broadcast: \(check.description)")
        #expect(check.checked == x.count && check.maxError < Self.tolerance, "\(check.description)")
    }

    @Test func noiseVarianceEmbeddingIsSixteenSinesThenCosinesOfLogSpacedFrequencies() {
        let nu: [Float] = [0, 0.0975, 0.5, 0.9996]
        var e = [Float](repeating: .nan, count: nu.count * 32)
        noiseVarianceEmbedding(output: &e, noiseVariance: nu, batch: nu.count)
        #expect(noiseVarianceEmbeddingDimension == 32)
        // ν = 0: every sine 0, every cosine 1.
        #expect(e[0..<16].allSatisfy { $0 == 0 } && e[16..<32].allSatisfy { $0 == 1 })
        for n in 1..<nu.count {
            for k in 0..<16 {
                // The closed form in Double: f_k = 1000^{k/15}; ω_k·ν in Float, as the kernel rounds it.
                let omega = Float(2 * Double.pi * pow(1000, Double(k) / 15))
                let angle = Double(omega * nu[n])
                #expect(abs(e[n * 32 + k] - Float(sin(angle))) <= 1e-6, "sin, ν \(nu[n]), k \(k)")
                #expect(abs(e[n * 32 + 16 + k] - Float(cos(angle))) <= 1e-6, "cos, ν \(nu[n]), k \(k)")
                // And the angle itself within Float rounding of 2π·f·ν in Double (the frequencies are right).
                let exact = 2 * Double.pi * pow(1000, Double(k) / 15) * Double(nu[n])
                #expect(abs(angle - exact) <= 2e-7 * exact + 1e-12, "angle, ν \(nu[n]), k \(k)")
            }
        }
        // The end frequencies are 1 and 1000: at ν = 0.5 the first sine is sin(π) ≈ 0 and the first cosine −1.
        #expect(abs(e[2 * 32]) < 1e-6 && abs(e[2 * 32 + 16] + 1) < 1e-6)
    }
}
