import Foundation
import Testing
import TestSupport
import Tensor
@testable import Models

/// Seed 001's continuous-time recipe in the Models layer (ZOO.md §5): the continuous-cosine schedule, the
/// MAE loss, AdamW, the EMA of the running statistics, its DDIM sampler and the data normalisation.
@Suite struct ContinuousRecipeTests {
    static let schedule = NoiseSchedule(.continuousCosine)

    @Test func continuousCosineMatchesItsClosedForm() {
        let s = Self.schedule
        #expect(s.isContinuous && s.betas.isEmpty && s.alphaBars.isEmpty)
        #expect(!NoiseSchedule.discreteKinds.contains(.continuousCosine) && NoiseSchedule.discreteKinds.count == NoiseSchedule.Kind.allCases.count - 1)
        let start = s.signalAndNoise(at: 0), end = s.signalAndNoise(at: 1), middle = s.signalAndNoise(at: 0.5)
        #expect(abs(start.signal - 0.95) < 1e-15 && abs(start.noise - (1 - 0.95 * 0.95).squareRoot()) < 1e-15, "\(start)")
        #expect(abs(end.signal - 0.02) < 1e-15 && abs(end.noise - (1 - 0.02 * 0.02).squareRoot()) < 1e-15, "\(end)")
        let angle = (acos(0.95) + acos(0.02)) / 2
        #expect(abs(middle.signal - cos(angle)) < 1e-15 && abs(middle.noise - sin(angle)) < 1e-15, "\(middle)")
        for k in 0...20 {
            let (g, n) = s.signalAndNoise(at: Double(k) / 20)
            #expect(abs(g * g + n * n - 1) < 1e-15, "t = \(Double(k) / 20)")
        }
        // Noise grows and signal falls monotonically in t.
        let rates = (0...20).map { s.signalAndNoise(at: Double($0) / 20) }
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $1.noise > $0.noise && $1.signal < $0.signal })
        #expect(s.ddimTimesteps(steps: 4) == [3, 2, 1, 0])
    }

    /// The loss draws t ~ U(0, 1) per image, forms x_t = signal·x0 + noise·ε and gives the model ν = noise².
    @Test func lossDrawsContinuousTimesAndGivesTheNoiseVariance() {
        let model = MLPDenoiser(dimension: 2, batchCapacity: 64)
        model.initialize(seed: 1)
        let loss = DiffusionLoss(model: model, schedule: Self.schedule, seed: 4, batch: 64)
        let points = normals(128, seed: 9)
        _ = loss.computeGradients(images: points)
        let times = (0..<64).map { Double(loss.times[$0]) }
        #expect(times.allSatisfy { $0 >= 0 && $0 < 1 } && Set(times).count == 64)
        #expect(times.min()! < 0.2 && times.max()! > 0.8, "spread over [0, 1): \(times.min()!) … \(times.max()!)")
        for n in 0..<64 {
            let (g, s) = Self.schedule.signalAndNoise(at: times[n])
            #expect(loss.conditioning.continuous[n] == Float(s * s))
            #expect(loss.conditioning.timesteps[n] == Int32((1000 * times[n]).rounded(.down)))
            for i in 0..<2 {
                #expect(loss.noisy[2 * n + i] == Float(g) * points[2 * n + i] + Float(s) * loss.noise[2 * n + i])
            }
        }
    }

    @Test func maeLossAndItsGradientAgainstFiniteDifferences() {
        let count = 40
        let prediction = normals(count, seed: 2), target = normals(count, seed: 3)
        var grad = [Float](repeating: 7, count: count)
        let loss = maeLoss(predictionGrad: &grad, prediction: prediction, target: target, count: count)
        let direct = zip(prediction, target).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(count)
        #expect(abs(Double(loss) - direct) < 1e-6)
        // Central differences in Double: exact for a piecewise-linear loss away from its kinks.
        func value(_ p: [Double]) -> Double { zip(p, target).map { abs($0 - Double($1)) }.reduce(0, +) / Double(count) }
        let h = 1e-4
        for i in 0..<count where abs(prediction[i] - target[i]) > 1e-3 {
            var up = prediction.map(Double.init), down = up
            up[i] += h; down[i] -= h
            let numeric = (value(up) - value(down)) / (2 * h)
            #expect(abs(numeric - Double(grad[i])) < 1e-6, "element \(i): \(numeric) vs \(grad[i])")
        }
        // A tie has the subgradient 0.
        var tie: [Float] = [1]
        _ = maeLoss(predictionGrad: &tie, prediction: [0.5], target: [0.5], count: 1)
        #expect(tie == [0])
    }

    /// Through a model: the MAE loss's parameter gradients against finite differences of the loss itself.
    @Test func maeDiffusionLossGradientMatchesFiniteDifferences() {
        let model = MLPDenoiser(dimension: 2, batchCapacity: 8)
        model.initialize(seed: 6)
        let loss = DiffusionLoss(model: model, schedule: Self.schedule, seed: 8, batch: 8)
        loss.lossFunction = .mae
        let points = normals(16, seed: 12)
        loss.drawTimestepsAndNoise()
        model.zeroGradients()
        let base = loss.forwardBackward(images: points)
        #expect(base > 0.2 && base < 3, "MAE of an untrained model: \(base)")
        let analytic = model.gradients.toArray()
        let h: Float = 1e-3
        var checked = 0
        for i in stride(from: 0, to: model.parameters.count, by: 97) where abs(analytic[i]) > 1e-3 {
            let saved = model.parameters[i]
            model.parameters[i] = saved + h; let up = Double(loss.forwardBackward(images: points))
            model.parameters[i] = saved - h; let down = Double(loss.forwardBackward(images: points))
            model.parameters[i] = saved
            let numeric = (up - down) / (2 * Double(h))
            #expect(abs(numeric - Double(analytic[i])) < 2e-2 * abs(Double(analytic[i])) + 2e-3, "parameter \(i): \(numeric) vs \(analytic[i])")
            checked += 1
        }
        #expect(checked >= 10, "\(checked) parameters checked")
    }

    /// AdamW's first step by hand (Double): p·(1 − lr·W) − lr·m̂/(√v̂ + ε) with m̂ = g, v̂ = g² after one step.
    @Test func adamwFirstStepMatchesAHandComputation() {
        let count = 11   // one SIMD group of 8 and a scalar tail of 3
        let p0 = normals(count, seed: 40), g = normals(count, seed: 41, scale: 0.3)
        let lr: Float = 0.01, decay: Float = 0.1, eps: Float = 1e-7
        let adamw = Adam(parameterCount: count, epsilon: eps)
        adamw.weightDecay = decay
        let parameters = FloatBuffer(p0), gradients = FloatBuffer(g)
        adamw.update(parameters: parameters, gradients: gradients, learningRate: lr)
        for i in 0..<count {
            let gi = Double(g[i])
            let m = 0.1 * gi, v = 0.001 * gi * gi
            let mHat = m / (1 - 0.9), vHat = v / (1 - 0.999)
            let expected = Double(p0[i]) * (1 - Double(lr) * Double(decay)) - Double(lr) * mHat / (vHat.squareRoot() + Double(eps))
            #expect(abs(Double(parameters[i]) - expected) < 2e-6 * max(1, abs(expected)), "p[\(i)] \(parameters[i]) vs \(expected)")
        }
        #expect(abs(Double(adamw.firstMoment[0]) - 0.1 * Double(g[0])) < 1e-7)
        // Without decay it is Adam, bit for bit.
        let plain = Adam(parameterCount: count), zeroDecay = Adam(parameterCount: count)
        zeroDecay.weightDecay = 0
        let a = FloatBuffer(p0), b = FloatBuffer(p0)
        plain.update(parameters: a, gradients: FloatBuffer(g), learningRate: lr)
        zeroDecay.update(parameters: b, gradients: FloatBuffer(g), learningRate: lr)
        #expect(a.toArray().map(\.bitPattern) == b.toArray().map(\.bitPattern))
        // The decay acts on a weight with no gradient: p·(1 − lr·W) exactly.
        let still = Adam(parameterCount: 1)
        still.weightDecay = decay
        let lone = FloatBuffer([2]), zero = FloatBuffer([0])
        still.update(parameters: lone, gradients: zero, learningRate: lr)
        #expect(lone[0] == 2 * (1 - lr * decay))
    }

    /// ema_buffers ← d·ema_buffers + (1 − d)·buffers after the update; a skipped step leaves it alone.
    @Test func emaAveragesTheRunningStatisticsWithTheWeights() {
        let model = ModelArchitecture.cnnTiny.build([1, 16, 16], 2)
        model.initialize(seed: 21)
        #expect(model.buffers.count > 0)
        let step = TrainingStep(model: model, schedule: NoiseSchedule(.linear), seed: 5, rank: 0, batch: 2, ranks: SingleRank(),
                                options: .init(emaRate: 0.75, emaBuffers: true, weightDecay: 0.01, adamEpsilon: 1e-7))
        #expect(abs(Double(step.optimizer.epsilon) - 1e-7) < 1e-13 && abs(Double(step.optimizer.weightDecay) - 0.01) < 1e-9)
        let images = normals(2 * 256, seed: 31)
        let before = step.emaBuffers!.toArray()
        #expect(before == model.buffers.toArray(), "starts as a copy")
        let result = step.run(learningRate: 1e-3, loadBatch: { _ in _ = step.images.buffer.update(fromContentsOf: images) })
        #expect(result.applied)
        let live = model.buffers.toArray(), averaged = step.emaBuffers!.toArray()
        let expected = zip(before, live).map { 0.75 * $0 + 0.25 * $1 }
        #expect(maxAbsoluteError(averaged, expected) < 1e-6)
        #expect(live != before, "the statistics moved")
        let kept = step.emaBuffers!.toArray()
        let skipped = step.run(learningRate: 1e-3, loadBatch: { _ in _ = step.images.buffer.update(fromContentsOf: images); step.images[0] = .nan })
        #expect(!skipped.applied && step.emaBuffers!.toArray() == kept)
        // Without --ema-buffers there is none.
        let plain = TrainingStep(model: model, schedule: NoiseSchedule(.linear), seed: 5, rank: 0, batch: 2, ranks: SingleRank(), options: .init(emaRate: 0.75))
        #expect(plain.emaBuffers == nil)
    }

    /// With ε̂ = c (an MLP whose only non-zero parameter is the output bias) the sampler's steps can be
    /// followed by hand: x̂0 = (x − n·c)/g, x ← g'·x̂0 + n'·c, the result the last x̂0; the model sees ν = n².
    @Test func continuousDDIMFollowsTheKerasStepsAndReturnsTheLastPrediction() {
        let model = MLPDenoiser(dimension: 2, batchCapacity: 3)
        model.parameters.zero()
        let bias = model.parameterTable.entry(named: "net.4.bias")!
        model.parameters[bias.offset] = 0.3; model.parameters[bias.offset + 1] = -0.2
        let sampler = DiffusionSampler(model: model, schedule: Self.schedule)
        let x = FloatBuffer(count: 6)
        var rng = Philox(seed: 17), draws = Philox(seed: 17)
        let steps = 5
        var seen: [(Int, Float)] = []
        sampler.sample(into: x.pointer, batch: 3, method: .ddim(steps: steps, eta: 0), rng: &rng) { k, _ in
            seen.append((k, sampler.conditioning.continuous[0]))
        }
        let start = FloatBuffer(count: 6)
        draws.fillNormal(start.pointer, count: 6)
        var expected = start.toArray().map(Double.init)
        let c = [0.3, -0.2]
        for s in 0..<steps {
            let t = 1 - Double(s) / Double(steps)
            let (g, n) = Self.schedule.signalAndNoise(at: t), (g1, n1) = Self.schedule.signalAndNoise(at: t - 1 / Double(steps))
            #expect(seen[s].0 == steps - 1 - s && seen[s].1 == Float(n * n), "step \(s): \(seen[s])")
            for i in 0..<6 {
                let x0 = (expected[i] - n * c[i % 2]) / g
                expected[i] = s == steps - 1 ? x0 : g1 * x0 + n1 * c[i % 2]
            }
        }
        for i in 0..<6 { #expect(abs(Double(x[i]) - expected[i]) < 1e-4 * max(1, abs(expected[i])), "x[\(i)] \(x[i]) vs \(expected[i])") }
    }

    @Test func normalisationRoundTripsAndSamplesComeBackInTheDataRange() {
        let statistics = DataNormalization(mean: [0.2, 0.5, 0.7], variance: [0.01, 0.04, 0.09])
        let images = normals(2 * 3 * 16, seed: 5).map { min(max($0 / 2, -1), 1) }
        let x = FloatBuffer(images)
        statistics.normalize(x.pointer, count: 2, channels: 3, pixels: 16)
        // Channel 1 of image 0: ((x + 1)/2 − 0.5)/0.2.
        #expect(abs(x[16] - ((images[16] + 1) / 2 - 0.5) / 0.2) < 1e-5)
        statistics.denormalize(x.pointer, count: 2, channels: 3, pixels: 16)
        #expect(maxAbsoluteError(x.toArray(), images) < 1e-5)
        let wild = FloatBuffer([-50, 50, 0, 3])
        DataNormalization(mean: [0.5], variance: [0.25]).denormalize(wild.pointer, count: 1, channels: 1, pixels: 4)
        #expect(wild.toArray() == [-1, 1, 0, 1], "clip(μ + σ·x̂, 0, 1) written on the [−1, 1] scale")
        #expect(DataNormalization(mean: [0.3], variance: [0]).standardDeviation == [1e-7])
    }

    /// The sums behind the statistics are exact: any split of the images gives the same figures, which
    /// equal the direct computation.
    @Test func channelSumsDoNotDependOnHowTheImagesAreSplit() {
        let bytes: [UInt8] = (0..<(7 * 2 * 9)).map { (i: Int) -> UInt8 in UInt8((i * 37 + i / 5) % 256) }
        let images = bytes.map { Float($0) / 127.5 - 1 }
        var whole = ChannelSums(channels: 2, levels: 255)
        whole.add(images, count: 7, pixels: 9)
        var combined = [Double](repeating: 0, count: whole.packed.count)
        for part in [0..<2, 2..<3, 3..<7] {
            var sums = ChannelSums(channels: 2, levels: 255)
            Array(images[(part.lowerBound * 18)..<(part.upperBound * 18)]).withUnsafeBufferPointer {
                sums.add($0.baseAddress!, count: part.count, pixels: 9)
            }
            for (i, v) in sums.packed.enumerated() { combined[i] += v }
        }
        let split = ChannelSums(packed: combined, channels: 2, levels: 255)
        #expect(split == whole)
        #expect(split.normalization == whole.normalization)
        for c in 0..<2 {
            var values: [Double] = []
            for n in 0..<7 { for i in 0..<9 { values.append(Double(bytes[(n * 2 + c) * 9 + i]) / 255) } }
            let mean: Double = values.reduce(0, +) / 63
            let variance: Double = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 63
            #expect(abs(whole.normalization.mean[c] - mean) < 1e-14 && abs(whole.normalization.variance[c] - variance) < 1e-14)
        }
    }
}
