import Foundation
import Testing
import TestSupport
import Tensor
@testable import Models

/// ContextUnet's new layer kinds against central differences (its residual block, EmbedFC), and the
/// two halves of class conditioning: label dropout while training, classifier-free guidance while sampling.
@Suite struct ConditioningTests {
    /// Parameters, gradients and buffers of the layers a builder made, initialised as PyTorch would.
    struct Harness {
        let parameters, gradients, buffers: FloatBuffer
        let gradientsOfActivations: ActivationGradients
        init(_ b: ModelBuilder, seed: UInt64) {
            parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
            buffers = FloatBuffer(count: b.buffers.totalCount)
            var rng = Philox(seed: seed, stream: 0)
            b.parameters.initialize(parameters.pointer, rng: &rng)
            b.buffers.initialize(buffers.pointer, rng: &rng)
            // Norm weights and biases away from 1 and 0, so that a gradient that ignored them shows.
            for e in b.parameters.entries where e.name.hasSuffix(".1.weight") || e.name.hasSuffix(".1.bias") {
                for i in 0..<e.count { parameters[e.offset + i] += 0.3 * Float(i % 3) - 0.2 }
            }
            gradientsOfActivations = ActivationGradients(b)
        }
        var pointers: ModelPointers {
            ModelPointers(parameters: parameters.pointer, gradients: gradients.pointer, buffers: buffers.pointer,
                          gradientsReady: nil, reduceStatistics: nil)
        }
    }

    /// Worst |fd − analytic| / (|analytic| + 1% of the tensor's RMS) over each tensor's largest and one random
    /// coordinate, differencing `loss` (Double) in place at `values` with the five-point stencil: its error is
    /// O(h⁴), so h can be large enough that the Float rounding of the forward, divided by h, stays small.
    static func worstError(_ values: UnsafeMutablePointer<Float>, analytic: [Float], tensors: [(offset: Int, count: Int)],
                           h: Float, loss: () -> Double) -> Double {
        var rng = SplitMix64(seed: 7), worst = 0.0
        for t in tensors {
            let slice = analytic[t.offset..<(t.offset + t.count)]
            let rms = (slice.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(t.count)).squareRoot()
            for i in largestAndOneRandom(slice, rng: &rng) {
                let old = values[i]
                func at(_ step: Float) -> Double { values[i] = old + step; return loss() }
                let near = at(h) - at(-h), far = at(2 * h) - at(-2 * h)
                values[i] = old
                let fd = (8 * near - far) / Double(12 * h)
                worst = max(worst, abs(fd - Double(analytic[i])) / (abs(Double(analytic[i])) + 1e-2 * rms + 1e-9))
            }
        }
        return worst
    }

    @Test(arguments: [(3, 6, true), (6, 6, true), (4, 6, false)])
    func residualConvBlockGradientsMatchFiniteDifferences(inChannels: Int, outChannels: Int, residual: Bool) {
        let batch = 2, side = 4
        let b = ModelBuilder(batchCapacity: batch)
        let block = ResidualConvBlock(b, "block", inChannels: inChannels, outChannels: outChannels, height: side, width: side, residual: residual)
        #expect((block.shortcut != nil) == (residual && inChannels != outChannels))
        let h = Harness(b, seed: 3), m = h.pointers
        // Buffers, not arrays: the differencing writes into x while the loss reads it.
        let x = FloatBuffer(count: inChannels * batch * side * side), y = FloatBuffer(count: outChannels * batch * side * side)
        x.pointer.update(from: normals(x.count, seed: 4), count: x.count)
        let r = normals(y.count, seed: 5)
        func loss() -> Double {
            block.forward(m, output: y.pointer, input: x.pointer, batch: batch, training: true)
            return (0..<r.count).reduce(0.0) { $0 + Double(y[$1]) * Double(r[$1]) }
        }
        _ = loss()
        h.gradientsOfActivations.zero(batch: batch)
        var gx = [Float](repeating: 0, count: x.count)
        block.backward(m, inputGrad: &gx, outputGrad: r, input: x.pointer, batch: batch)
        // A convolution bias right before BatchNorm has a true gradient of 0 (BN removes the mean): it must be
        // 0 to rounding, and its differences are pure Float noise (1e-4 here), so it is not differenced.
        let beforeNorm = b.parameters.entries.filter { $0.name.hasSuffix(".0.bias") }
        #expect(beforeNorm.count == 2)
        for e in beforeNorm { #expect((0..<e.count).allSatisfy { abs(h.gradients[e.offset + $0]) < 1e-5 }, "\(e.name)") }
        let tensors = b.parameters.entries.filter { !$0.name.hasSuffix(".0.bias") }.map { (offset: $0.offset, count: $0.count) }
        // why h = 1e-2: train-mode BatchNorm over 32 values and GELU are smooth but curved; the five-point
        // stencil's O(h⁴) error is below the Float noise there (measured worst 1.6e-3 on parameters, 3.3e-3 on
        // the input; with two points at h = 3e-3, up to 1.5e-2 from noise and curvature together).
        let parameterError = Self.worstError(h.parameters.pointer, analytic: h.gradients.toArray(), tensors: tensors, h: 1e-2, loss: loss)
        #expect(parameterError < 5e-3, "parameters: \(parameterError)")
        let inputError = Self.worstError(x.pointer, analytic: gx, tensors: [(0, gx.count)], h: 1e-2, loss: loss)
        // why 1e-2 for the input: each input coordinate moves every BatchNorm statistic of its channel, so its
        // differences carry more curvature; a lost residual scale is off by 0.3.
        #expect(inputError < 1e-2, "input: \(inputError)")
    }

    @Test func embedFCGradientsMatchFiniteDifferences() {
        let batch = 3
        let b = ModelBuilder(batchCapacity: batch)
        let embed = EmbedFC(b, "embed", inFeatures: 4, outFeatures: 6)
        let h = Harness(b, seed: 8), m = h.pointers
        let x = normals(batch * 4, seed: 9), r = normals(batch * 6, seed: 10)
        func loss() -> Double {
            embed.forward(m, input: x, batch: batch)
            return (0..<r.count).reduce(0.0) { $0 + Double(embed.output[$1]) * Double(r[$1]) }
        }
        _ = loss()
        h.gradientsOfActivations.zero(batch: batch)
        embed.outputGrad.pointer.update(from: r, count: r.count)
        embed.backward(m, input: x, batch: batch)
        let tensors = b.parameters.entries.map { (offset: $0.offset, count: $0.count) }
        let err = Self.worstError(h.parameters.pointer, analytic: h.gradients.toArray(), tensors: tensors, h: 1e-2, loss: loss)
        #expect(err < 5e-3, "EmbedFC parameters: \(err)")
    }

    static func tinyContextUnet(batchCapacity: Int) -> ContextUnet {
        let model = ContextUnet(ContextUnetConfiguration(inChannels: 1, size: 8, features: 8, contextFeatures: 3), batchCapacity: batchCapacity)
        model.initialize(seed: 11)
        return model
    }

    @Test func labelDropoutDropsEachLabelWithItsProbabilityAndDeterministically() {
        let model = Self.tinyContextUnet(batchCapacity: 64)
        func dropped(_ p: Double, seed: UInt64) -> [Int32] {
            let loss = DiffusionLoss(model: model, schedule: NoiseSchedule(.linear), seed: seed, batch: 64)
            loss.labelDropout = p
            for n in 0..<64 { loss.conditioning.labels[n] = Int32(n % 3) }
            loss.drawTimestepsAndNoise()
            return Array(UnsafeBufferPointer(start: loss.conditioning.labels, count: 64))
        }
        #expect(dropped(0, seed: 1) == (0..<64).map { Int32($0 % 3) })
        #expect(dropped(1, seed: 1).allSatisfy { $0 == Conditioning.noLabel })
        let half = dropped(0.5, seed: 1).filter { $0 == Conditioning.noLabel }.count
        #expect(half > 16 && half < 48, "\(half) of 64 dropped at p = 0.5")
        #expect(dropped(0.5, seed: 1) == dropped(0.5, seed: 1))
        #expect(dropped(0.5, seed: 1) != dropped(0.5, seed: 2))
    }

    /// Samples of a tiny ContextUnet: 3 images of classes `labels` (nil: no guidance).
    static func samples(guidance: Double?, labels: [Int32]) -> [Float] {
        let model = tinyContextUnet(batchCapacity: guidance == nil ? 3 : 6)
        let sampler = DiffusionSampler(model: model, schedule: NoiseSchedule(.linear), guidance: guidance)
        for n in 0..<3 { sampler.conditioning.labels[n] = labels[n] }
        var x = [Float](repeating: .nan, count: 3 * 64)
        var rng = Philox(seed: 5, stream: 1)
        sampler.sample(into: &x, batch: 3, method: .ddim(steps: 4, eta: 0), rng: &rng)
        return x
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }

    @Test func guidanceOneIsTheConditionalModelGuidanceZeroTheUnconditionalOne() {
        let labels: [Int32] = [0, 1, 2], none = [Int32](repeating: Conditioning.noLabel, count: 3)
        let conditional = Self.samples(guidance: nil, labels: labels)
        let unconditional = Self.samples(guidance: nil, labels: none)
        // At initialisation the context moves the samples little (1e-4): every comparison is relative to that.
        let labelEffect = Self.maxDifference(conditional, unconditional)
        #expect(labelEffect > 1e-5, "the labels must matter")
        // Equal to rounding: ε̂_u + 1·(ε̂_c − ε̂_u) is ε̂_c only up to float error.
        #expect(Self.maxDifference(Self.samples(guidance: 1, labels: labels), conditional) < 0.01 * labelEffect)
        #expect(Self.maxDifference(Self.samples(guidance: 0, labels: labels), unconditional) < 0.01 * labelEffect)
        // W = 3 goes twice as far again from the unconditional samples as the conditional ones are.
        let strong = Self.samples(guidance: 3, labels: labels)
        #expect(Self.maxDifference(strong, conditional) > labelEffect)
        #expect(DiffusionSampler(model: Self.tinyContextUnet(batchCapacity: 6), schedule: NoiseSchedule(.linear), guidance: 3).batchCapacity == 3)
    }

    @Test func sampleClassesSplitRowsEquallyAndBalanceEvaluations() {
        let rows = SampleClasses.rows([4, 1])
        #expect(rows.sampleCount(requested: 7) == 6)
        #expect(rows.gridColumns(count: 6) == 3)
        #expect((0..<6).map { rows.label(of: $0, count: 6) } == [4, 4, 4, 1, 1, 1])
        #expect(SampleClasses.everyClass(of: 3).sampleCount(requested: 2) == 3)
        #expect((0..<5).map { SampleClasses.balanced(3).label(of: $0, count: 5) } == [0, 1, 2, 0, 1])
        #expect(SampleClasses.everyClass(of: 0) == .unconditional)
    }
}
