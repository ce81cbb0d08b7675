import Testing
import TestSupport
import Tensor

/// Winograd F(2×2, 3×3) and F(4×4, 3×3) behind the convolution seam: the same function as im2col +
/// sgemm up to rounding, and its three passes the exact adjoints of its forward.
@Suite struct WinogradConvolutionTests {
    /// Even and odd sizes (odd ones leave half-empty tiles at the border), one and two images.
    static let shapes: [ConvShape] = [
        ConvShape(batch: 2, inChannels: 3, outChannels: 4, height: 6, width: 8, kernel: 3),
        ConvShape(batch: 1, inChannels: 2, outChannels: 3, height: 5, width: 7, kernel: 3),
        ConvShape(batch: 2, inChannels: 4, outChannels: 2, height: 1, width: 3, kernel: 3),
        // More than 8 tiles and 8 filters: full lane groups and a partial last one.
        ConvShape(batch: 2, inChannels: 5, outChannels: 3, height: 16, width: 13, kernel: 3),
    ]
    static let kinds: [ConvolutionAlgorithmKind] = [.winogradF2, .winogradF4]

    struct Run {
        let y: [Float], gx: [Float], gw: [Float], gb: [Float]
    }

    static func run(_ kind: ConvolutionAlgorithmKind, _ s: ConvShape, x: [Float], w: [Float], b: [Float], gy: [Float],
                    startingGradient: Float = 0) -> Run {
        let workspace = Workspace(), algorithm = kind.make(s, workspace: workspace)
        var y = [Float](repeating: .nan, count: s.outChannels * s.positions)
        algorithm.forward(output: &y, input: x, weight: w, bias: b, batch: s.batch)
        var gx = [Float](repeating: startingGradient, count: x.count), gw = [Float](repeating: startingGradient, count: w.count)
        var gb = [Float](repeating: startingGradient, count: b.count)
        algorithm.backward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: gy, input: x, weight: w, batch: s.batch)
        return Run(y: y, gx: gx, gw: gw, gb: gb)
    }

    static func relative(_ a: [Float], _ b: [Float]) -> Float {
        maxAbsoluteError(a, b) / max(b.map(abs).max() ?? 1, 1e-30)
    }

    @Test(arguments: kinds, shapes)
    func winogradEqualsIm2colInEveryPass(_ kind: ConvolutionAlgorithmKind, _ s: ConvShape) {
        let x = normals(s.inChannels * s.inputPositions, seed: 1), w = normals(s.outChannels * s.patchSize, seed: 2, scale: 0.5)
        let b = normals(s.outChannels, seed: 3), gy = normals(s.outChannels * s.positions, seed: 4)
        let winograd = Self.run(kind, s, x: x, w: w, b: b, gy: gy), direct = Self.run(.im2col, s, x: x, w: w, b: b, gy: gy)
        for (what, ours, reference) in [("y", winograd.y, direct.y), ("grad_x", winograd.gx, direct.gx),
                                        ("grad_weight", winograd.gw, direct.gw), ("grad_bias", winograd.gb, direct.gb)] {
            let error = Self.relative(ours, reference)
            report("\(kind) \(s.height)×\(s.width) \(what) vs im2col: \(error)")
            #expect(error < 1e-5, "\(what) differs from im2col by \(error) of its largest value")
        }
        // The gradient rule: backward adds into what it is given.
        let fromOne = Self.run(kind, s, x: x, w: w, b: b, gy: gy, startingGradient: 1)
        #expect(maxAbsoluteError(fromOne.gx, winograd.gx.map { $0 + 1 }) < 1e-5)
        #expect(maxAbsoluteError(fromOne.gw, winograd.gw.map { $0 + 1 }) < 1e-5)
    }

    @Test(arguments: kinds)
    func winogradGradientsMatchFiniteDifferencesOfItsOwnForward(_ kind: ConvolutionAlgorithmKind) {
        let s = Self.shapes[1]
        let x = normals(s.inChannels * s.inputPositions, seed: 5), w = normals(s.outChannels * s.patchSize, seed: 6, scale: 0.5)
        let b = normals(s.outChannels, seed: 7), r = normals(s.outChannels * s.positions, seed: 8)
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double { dot(Self.run(kind, s, x: x, w: w, b: b, gy: r).y, r) }
        // The loss is linear in each of x, w and b, so a large step has no truncation error and
        // shrinks the Float rounding of the loss relative to the difference (F(4×4) rounds more).
        let g = Self.run(kind, s, x: x, w: w, b: b, gy: r)
        for (what, check) in [("input", finiteDifferenceCheck(point: x, analytic: g.gx, h: 2) { loss($0, w, b) }),
                              ("weight", finiteDifferenceCheck(point: w, analytic: g.gw, h: 2) { loss(x, $0, b) }),
                              ("bias", finiteDifferenceCheck(point: b, analytic: g.gb, h: 2) { loss(x, w, $0) })] {
            report("fd \(kind) \(what): \(check.description)")
            #expect(check.checked > 0 && check.maxError < 1e-4, "\(kind) \(what): \(check.description)")
        }
    }
}
