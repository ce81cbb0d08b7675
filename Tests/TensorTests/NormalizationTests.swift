import Testing
import TestSupport
import Tensor

/// GroupNorm and LayerNorm: forward against their definitions, every gradient coordinate against
/// central differences of the forward kernel (L = Σ y·r, as FiniteDifferenceTests), over 2 images.
/// Both are nonlinear in every input (the statistics), so the step is BatchNorm's h = 0.03 and the
/// bound its 5e-3 (truncation ∝ h², Float rounding of the loss ∝ 1/h; see FiniteDifferenceTests).
@Suite struct NormalizationTests {
    static let step: Float = 0.03
    static let tolerance = 5e-3

    func expectGradient(_ what: String, _ check: GradientCheck, sourceLocation: SourceLocation = #_sourceLocation) {
        report("fd \(what): \(check.description)")
        #expect(check.checked > 0)
        #expect(check.maxError < Self.tolerance, "\(what): \(check.description)", sourceLocation: sourceLocation)
    }

    // MARK: GroupNorm

    /// Runs groupNormForward on CNHW `x`, returning y and the saved statistics.
    func groupNorm(_ x: [Float], _ weight: [Float]?, _ bias: [Float]?, shape s: GroupNormShape,
                   activation: Activation) -> (y: [Float], mean: [Float], invStd: [Float]) {
        var y = [Float](repeating: .nan, count: x.count)
        var mean = [Float](repeating: .nan, count: s.statisticsCount), invStd = mean
        if let weight, let bias {
            groupNormForward(output: &y, input: x, weight: weight, bias: bias, savedMean: &mean, savedInvStd: &invStd,
                             shape: s, activation: activation)
        } else {
            groupNormForward(output: &y, input: x, weight: nil, bias: nil, savedMean: &mean, savedInvStd: &invStd,
                             shape: s, activation: activation)
        }
        return (y, mean, invStd)
    }

    /// GroupNorm over CNHW [C, 2, 3, 3] (a plane of 9: one vector of 8 and a scalar tail).
    func checkGroupNorm(channels c: Int, groups: Int, activation: Activation, affine: Bool = true) {
        let (n, plane) = (2, 9)
        let s = GroupNormShape(batch: n, channels: c, groups: groups, plane: plane)
        let weight = affine ? normals(c, seed: 101, scale: 0.4, shift: 1) : nil
        let bias = affine ? normals(c, seed: 102, scale: 0.3) : nil
        // With the ReLU, take the first input whose pre-activations all stay 0.1 away from 0 (as
        // checkBatchNormTrain): a step of 0.03 moves one by at most about |γ|·invStd·h (input), h·|x̂| (weight), h (bias).
        var seed: UInt64 = 111, x: [Float] = []
        repeat {
            x = normals(c * n * plane, seed: seed, scale: 1.5, shift: 0.3)
            seed += 1
        } while activation == .relu && groupNorm(x, weight, bias, shape: s, activation: .identity).y.contains { abs($0) < 0.1 }
        let r = normals(x.count, seed: 103)
        let (y, mean, invStd) = groupNorm(x, weight, bias, shape: s, activation: activation)
        if activation == .relu { #expect(y.contains(0) && y.contains { $0 > 0 }, "the ReLU must clamp some values and pass others") }
        var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: c), gb = gw
        if let weight, let bias {
            groupNormBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: r, input: x, weight: weight, bias: bias,
                              savedMean: mean, savedInvStd: invStd, shape: s, activation: activation)
        } else {
            groupNormBackward(inputGrad: &gx, weightGrad: nil, biasGrad: nil, outputGrad: r, input: x, weight: nil, bias: nil,
                              savedMean: mean, savedInvStd: invStd, shape: s, activation: activation)
        }
        let name = "groupnorm G\(groups) C\(c)+\(activation)\(affine ? "" : " (no affine)")", h = Self.step
        expectGradient("\(name) input", finiteDifferenceCheck(point: x, analytic: gx, h: h) {
            dot(groupNorm($0, weight, bias, shape: s, activation: activation).y, r)
        })
        guard let weight, let bias else { return }
        expectGradient("\(name) weight", finiteDifferenceCheck(point: weight, analytic: gw, h: h) {
            dot(groupNorm(x, $0, bias, shape: s, activation: activation).y, r)
        })
        expectGradient("\(name) bias", finiteDifferenceCheck(point: bias, analytic: gb, h: h) {
            dot(groupNorm(x, weight, $0, shape: s, activation: activation).y, r)
        })
    }

    @Test func groupNormGradientsMatchFiniteDifferences() { checkGroupNorm(channels: 4, groups: 2, activation: .identity) }

    @Test func groupNormWithFusedReluGradientsMatchFiniteDifferences() { checkGroupNorm(channels: 4, groups: 2, activation: .relu) }

    /// G = 1 normalises each image as a whole (LayerNorm's statistics, per-channel affine).
    @Test func groupNormWithOneGroupGradientsMatchFiniteDifferences() { checkGroupNorm(channels: 4, groups: 1, activation: .identity) }

    /// G = C normalises each plane on its own (InstanceNorm).
    @Test func groupNormWithAGroupPerChannelGradientsMatchFiniteDifferences() {
        checkGroupNorm(channels: 4, groups: 4, activation: .identity)
    }

    @Test func groupNormWithoutAffineGradientsMatchFiniteDifferences() {
        checkGroupNorm(channels: 4, groups: 2, activation: .identity, affine: false)
    }

    @Test func groupNormForwardMatchesItsDefinition() {
        let (n, c, groups, plane) = (2, 6, 3, 5)
        let s = GroupNormShape(batch: n, channels: c, groups: groups, plane: plane)
        let x = normals(c * n * plane, seed: 121, scale: 2, shift: 1)
        let weight = normals(c, seed: 122), bias = normals(c, seed: 123)
        let ours = groupNorm(x, weight, bias, shape: s, activation: .identity)
        var expected = [Float](repeating: 0, count: x.count)
        for image in 0..<n { for g in 0..<groups {
            // the group's values, straight from CNHW indices: (channel, image, position)
            let indices = (g * s.channelsPerGroup..<(g + 1) * s.channelsPerGroup).flatMap { ch in (0..<plane).map { (ch, (ch * n + image) * plane + $0) } }
            let mean = indices.reduce(0.0) { $0 + Double(x[$1.1]) } / Double(indices.count)
            let variance = indices.reduce(0.0) { $0 + (Double(x[$1.1]) - mean) * (Double(x[$1.1]) - mean) } / Double(indices.count)
            #expect(abs(Double(ours.mean[image * groups + g]) - mean) < 1e-6)
            for (ch, i) in indices {
                expected[i] = Float((Double(x[i]) - mean) / (variance + 1e-5).squareRoot() * Double(weight[ch]) + Double(bias[ch]))
            }
        } }
        #expect(maxAbsoluteError(ours.y, expected) < 1e-5)
    }

    // MARK: LayerNorm

    func layerNorm(_ x: [Float], _ weight: [Float], _ bias: [Float], shape s: LayerNormShape)
        -> (y: [Float], mean: [Float], invStd: [Float]) {
        var y = [Float](repeating: .nan, count: x.count)
        var mean = [Float](repeating: .nan, count: s.batch), invStd = mean
        layerNormForward(output: &y, input: x, weight: weight, bias: bias, savedMean: &mean, savedInvStd: &invStd, shape: s)
        return (y, mean, invStd)
    }

    /// LayerNorm((3, 3, 3)) over CNHW [3, 2, 3, 3], elementwise γ and β.
    @Test func layerNormGradientsMatchFiniteDifferences() {
        let s = LayerNormShape(batch: 2, channels: 3, plane: 9)
        let x = normals(s.valuesPerImage * s.batch, seed: 131, scale: 1.5, shift: 0.3)
        let weight = normals(s.valuesPerImage, seed: 132, scale: 0.4, shift: 1), bias = normals(s.valuesPerImage, seed: 133, scale: 0.3)
        let r = normals(x.count, seed: 134)
        let (_, mean, invStd) = layerNorm(x, weight, bias, shape: s)
        var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: weight.count), gb = gw
        layerNormBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: r, input: x, weight: weight,
                          savedMean: mean, savedInvStd: invStd, shape: s)
        let h = Self.step
        expectGradient("layernorm input", finiteDifferenceCheck(point: x, analytic: gx, h: h) { dot(layerNorm($0, weight, bias, shape: s).y, r) })
        expectGradient("layernorm weight", finiteDifferenceCheck(point: weight, analytic: gw, h: h) { dot(layerNorm(x, $0, bias, shape: s).y, r) })
        expectGradient("layernorm bias", finiteDifferenceCheck(point: bias, analytic: gb, h: h) { dot(layerNorm(x, weight, $0, shape: s).y, r) })
    }

    /// With γ = 1 and β = 0, LayerNorm's statistics are GroupNorm's with one group.
    @Test func layerNormWithoutAffineEqualsGroupNormWithOneGroup() {
        let s = LayerNormShape(batch: 2, channels: 3, plane: 10)
        let x = normals(60, seed: 141, scale: 3, shift: -1)
        let ones = [Float](repeating: 1, count: s.valuesPerImage), zeros = [Float](repeating: 0, count: s.valuesPerImage)
        let layer = layerNorm(x, ones, zeros, shape: s)
        let group = groupNorm(x, nil, nil, shape: GroupNormShape(batch: 2, channels: 3, groups: 1, plane: 10), activation: .identity)
        #expect(maxAbsoluteError(layer.y, group.y) < 1e-6)
        #expect(layer.mean == group.mean && layer.invStd == group.invStd)
        #expect(abs(layer.y.reduce(0, +)) < 1e-4, "normalised values sum to 0 per image")
    }
}
