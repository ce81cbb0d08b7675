import Testing
import TestSupport
import Tensor

/// The general convolutions the model zoo needs (any kernel, stride, padding; ConvTranspose2d) against
/// their definitions written as plain loops in Double, and their gradients against central differences.
/// Activations are CNHW: value (c, n, y, x) at ((c·N + n)·H + y)·W + x.
@Suite struct ConvolutionShapesTests {
    /// PyTorch's Conv2d: y[co, n, oy, ox] = b[co] + Σ w[co, ci, ky, kx]·x[ci, n, oy·s − p + ky, ox·s − p + kx].
    static func naiveConv(_ x: [Float], _ w: [Float], _ b: [Float], _ s: ConvShape) -> [Double] {
        let (oh, ow, k) = (s.outputHeight, s.outputWidth, s.kernel)
        var y = [Double](repeating: 0, count: s.outChannels * s.positions)
        for co in 0..<s.outChannels { for n in 0..<s.batch { for oy in 0..<oh { for ox in 0..<ow {
            var sum = Double(b[co])
            for ci in 0..<s.inChannels { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * s.stride - s.padding + ky, ix = ox * s.stride - s.padding + kx
                guard iy >= 0, iy < s.height, ix >= 0, ix < s.width else { continue }
                sum += Double(w[((co * s.inChannels + ci) * k + ky) * k + kx]) * Double(x[((ci * s.batch + n) * s.height + iy) * s.width + ix])
            } } }
            y[((co * s.batch + n) * oh + oy) * ow + ox] = sum
        } } } }
        return y
    }

    /// PyTorch's ConvTranspose2d: y[co, n, i·s − p + a, j·s − p + b] += x[ci, n, i, j]·w[ci, co, a, b], plus bias.
    static func naiveConvTranspose(_ x: [Float], _ w: [Float], _ b: [Float], _ s: ConvTransposeShape) -> [Double] {
        let (oh, ow, k) = (s.outputHeight, s.outputWidth, s.kernel)
        var y = [Double](repeating: 0, count: s.outChannels * s.positions)
        for co in 0..<s.outChannels { for n in 0..<s.batch { for p in 0..<(oh * ow) { y[(co * s.batch + n) * oh * ow + p] = Double(b[co]) } } }
        for ci in 0..<s.inChannels { for n in 0..<s.batch { for i in 0..<s.height { for j in 0..<s.width {
            let v = Double(x[((ci * s.batch + n) * s.height + i) * s.width + j])
            for co in 0..<s.outChannels { for a in 0..<k { for bb in 0..<k {
                let oy = i * s.stride - s.padding + a, ox = j * s.stride - s.padding + bb
                guard oy >= 0, oy < oh, ox >= 0, ox < ow else { continue }
                y[((co * s.batch + n) * oh + oy) * ow + ox] += v * Double(w[((ci * s.outChannels + co) * k + a) * k + bb])
            } } }
        } } } }
        return y
    }

    /// Largest difference relative to the largest value: Float sums of a few dozen terms of order 1 round
    /// at ~1e-7 of that scale, whatever a single (possibly near-cancelling) output comes to.
    static func maxError(_ a: [Float], _ b: [Double]) -> Double {
        let scale = b.map(abs).max() ?? 1
        return (zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0) / scale
    }

    func expectGradient(_ what: String, _ check: GradientCheck, sourceLocation: SourceLocation = #_sourceLocation) {
        report("fd \(what): \(check.description)")
        #expect(check.checked > 0)
        #expect(check.maxError < 1e-4, "\(what): \(check.description)", sourceLocation: sourceLocation)
    }

    /// The zoo's cases: 4×4 stride 2 padding 1 (28→14, 7→3), 2×2 stride 1 (7→6), 1×1, 3×3 (the U-Nets'
    /// row-shifting path), 3×3 stride 2, and a kernel as large as the image.
    static let convolutions: [ConvShape] = [
        ConvShape(batch: 2, inChannels: 3, outChannels: 2, height: 6, width: 6, kernel: 4, stride: 2, padding: 1),
        ConvShape(batch: 2, inChannels: 2, outChannels: 3, height: 7, width: 7, kernel: 4, stride: 2, padding: 1),
        ConvShape(batch: 2, inChannels: 2, outChannels: 3, height: 7, width: 5, kernel: 2, stride: 1, padding: 0),
        ConvShape(batch: 2, inChannels: 3, outChannels: 2, height: 4, width: 3, kernel: 1),
        ConvShape(batch: 2, inChannels: 2, outChannels: 2, height: 5, width: 6, kernel: 3),
        ConvShape(batch: 1, inChannels: 2, outChannels: 2, height: 5, width: 5, kernel: 3, stride: 2, padding: 1),
        ConvShape(batch: 2, inChannels: 2, outChannels: 3, height: 4, width: 4, kernel: 4, stride: 4, padding: 0),
    ]

    @Test(arguments: convolutions)
    func convolutionMatchesItsDefinitionAndFiniteDifferences(_ s: ConvShape) {
        let name = "conv k\(s.kernel) s\(s.stride) p\(s.padding) \(s.height)×\(s.width)"
        let x = normals(s.inChannels * s.inputPositions, seed: 1), w = normals(s.outChannels * s.patchSize, seed: 2, scale: 0.5)
        let b = normals(s.outChannels, seed: 3), r = normals(s.outChannels * s.positions, seed: 4)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count), columns = [Float](repeating: .nan, count: max(1, s.columnsCount))
            conv2dForward(output: &y, input: x, weight: w, bias: b, columns: &columns, shape: s)
            return y
        }
        let error = Self.maxError(forward(x, w, b), Self.naiveConv(x, w, b, s))
        report("\(name) forward vs definition: \(error)")
        #expect(error < 1e-5, "\(name) forward differs from the definition by \(error)")
        var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: w.count), gb = [Float](repeating: 0, count: b.count)
        var columns = [Float](repeating: .nan, count: max(1, s.columnsCount))
        conv2dBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: r, input: x, weight: w, columns: &columns, shape: s)
        expectGradient("\(name) input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0, w, b), r) })
        expectGradient("\(name) weight", finiteDifferenceCheck(point: w, analytic: gw, h: 0.5) { dot(forward(x, $0, b), r) })
        expectGradient("\(name) bias", finiteDifferenceCheck(point: b, analytic: gb, h: 0.5) { dot(forward(x, w, $0), r) })
    }

    /// The zoo's transposed convolutions: k2 s2 (×2, no overlap), k4 s2 p1 (×2, overlapping), k = s on a
    /// 1×1 map (ContextUnet's up0), k2 s1 (H → H+1).
    static let transposed: [ConvTransposeShape] = [
        ConvTransposeShape(batch: 2, inChannels: 3, outChannels: 2, height: 3, width: 3, kernel: 2, stride: 2),
        ConvTransposeShape(batch: 2, inChannels: 2, outChannels: 3, height: 3, width: 4, kernel: 4, stride: 2, padding: 1),
        ConvTransposeShape(batch: 2, inChannels: 3, outChannels: 2, height: 1, width: 1, kernel: 4, stride: 4),
        ConvTransposeShape(batch: 2, inChannels: 2, outChannels: 2, height: 3, width: 3, kernel: 2, stride: 1),
    ]

    @Test(arguments: transposed)
    func transposedConvolutionMatchesItsDefinitionAndFiniteDifferences(_ s: ConvTransposeShape) {
        let name = "convT k\(s.kernel) s\(s.stride) p\(s.padding) \(s.height)×\(s.width)→\(s.outputHeight)×\(s.outputWidth)"
        let k2 = s.kernel * s.kernel
        let x = normals(s.inChannels * s.inputPositions, seed: 5), w = normals(s.inChannels * s.outChannels * k2, seed: 6, scale: 0.5)
        let b = normals(s.outChannels, seed: 7), r = normals(s.outChannels * s.positions, seed: 8)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count), columns = [Float](repeating: .nan, count: s.columnsCount)
            convTranspose2dForward(output: &y, input: x, weight: w, bias: b, columns: &columns, shape: s)
            return y
        }
        let error = Self.maxError(forward(x, w, b), Self.naiveConvTranspose(x, w, b, s))
        report("\(name) forward vs definition: \(error)")
        #expect(error < 1e-5, "\(name) forward differs from the definition by \(error)")
        var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: w.count), gb = [Float](repeating: 0, count: b.count)
        var columns = [Float](repeating: .nan, count: s.columnsCount)
        convTranspose2dBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: r, input: x, weight: w, columns: &columns, shape: s)
        expectGradient("\(name) input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0, w, b), r) })
        expectGradient("\(name) weight", finiteDifferenceCheck(point: w, analytic: gw, h: 0.5) { dot(forward(x, $0, b), r) })
        expectGradient("\(name) bias", finiteDifferenceCheck(point: b, analytic: gb, h: 0.5) { dot(forward(x, w, $0), r) })
    }

    @Test func outputSizesFollowPyTorch() {
        #expect(ConvShape(batch: 1, inChannels: 1, outChannels: 1, height: 28, width: 28, kernel: 4, stride: 2, padding: 1).outputHeight == 14)
        #expect(ConvShape(batch: 1, inChannels: 1, outChannels: 1, height: 7, width: 7, kernel: 4, stride: 2, padding: 1).outputHeight == 3)
        #expect(ConvShape(batch: 1, inChannels: 1, outChannels: 1, height: 7, width: 7, kernel: 2, stride: 1, padding: 0).outputHeight == 6)
        #expect(ConvTransposeShape(batch: 1, inChannels: 1, outChannels: 1, height: 3, width: 3, kernel: 4, stride: 2, padding: 1).outputHeight == 6)
        #expect(ConvTransposeShape(batch: 1, inChannels: 1, outChannels: 1, height: 6, width: 6, kernel: 2, stride: 1).outputHeight == 7)
        #expect(ConvTransposeShape(batch: 1, inChannels: 1, outChannels: 1, height: 1, width: 1, kernel: 7, stride: 7).outputHeight == 7)
    }

    /// GELU (exact, erf) and SiLU are smooth: central differences with a small step match to 1e-3.
    @Test(arguments: [Activation.gelu, .silu, .relu])
    func activationGradientsMatchFiniteDifferences(_ activation: Activation) {
        // Inputs away from 0, where ReLU has its kink.
        let x = normals(64, seed: 9, scale: 2).map { abs($0) < 0.05 ? $0 + 0.1 : $0 }, r = normals(64, seed: 10)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: x.count)
            activationForward(activation, output: &y, input: x, count: x.count)
            return y
        }
        var gx = [Float](repeating: 0, count: x.count)
        activationBackward(activation, inputGrad: &gx, outputGrad: r, input: x, count: x.count)
        let check = finiteDifferenceCheck(point: x, analytic: gx, h: 0.003) { dot(forward($0), r) }
        report("fd \(activation): \(check.description)")
        #expect(check.maxError < 1e-3, "\(activation): \(check.description)")
        // Known values: GELU(1) = 0.8413447, SiLU(1) = 0.7310586.
        if activation == .gelu { #expect(abs(activation.apply(1) - 0.8413447) < 1e-6) }
        if activation == .silu { #expect(abs(activation.apply(1) - 0.7310586) < 1e-6) }
    }
}

extension ConvShape: CustomTestStringConvertible {
    public var testDescription: String { "k\(kernel) s\(stride) p\(padding) \(height)×\(width)" }
}

extension ConvTransposeShape: CustomTestStringConvertible {
    public var testDescription: String { "k\(kernel) s\(stride) p\(padding) \(height)×\(width)" }
}
