import Foundation
import Testing
import TestSupport
import Tensor
@testable import Models

/// End-to-end gradient checks of both denoisers: loss = mean((model(x, t) − target)²), train mode,
/// gradients from `backward` against central differences.
///
/// The U-Net is differenced through `ReferenceUNet`, a naive Double implementation of the same
/// architecture, whose output the first test shows to equal the model's. why not difference the
/// Float model itself: measured on this configuration, its loss carries ~1e-8 of rounding noise and
/// max-pool switches and ReLU kinks sit every ~1e-3 along a parameter, so no step gives better than
/// ~1e-2 relative agreement per coordinate (at the best step, 3e-4: median 2e-3, 90th percentile 2e-2,
/// worst 0.2 over 132 coordinates). In Double with h = 1e-6 the same coordinates agree to ~1e-6.
/// The MLP is small enough to difference directly: between ReLU kinks its loss is exactly quadratic in
/// any one parameter, and the Double reference says how far each parameter can move before a ReLU flips.
@Suite struct ModelFiniteDifferenceTests {
    /// |fd − analytic| / (|analytic| + 1% of the tensor's gradient RMS).
    static let tolerance = 1e-3

    struct Setup<Model: Denoiser> {
        let model: Model
        let x: [Float], target: [Float], t: [Int32]
        let batch: Int
        let output: [Float]
        let gradient: [Float]
    }

    /// Builds the model, draws x, t and the target, runs one train-mode forward and backward.
    static func setup<Model: Denoiser>(_ model: Model, batch: Int, timesteps: [Int32], seed: UInt64) -> Setup<Model> {
        model.initialize(seed: seed)
        model.training = true
        let n = batch * model.sampleCount
        let x = normals(n, seed: seed &+ 1), target = normals(n, seed: seed &+ 2)
        var out = [Float](repeating: .nan, count: n), grad = [Float](repeating: .nan, count: n)
        model.forward(input: x, timesteps: timesteps, output: &out, batch: batch)
        _ = mseLoss(predictionGrad: &grad, prediction: out, target: target, count: n)
        model.gradients.buffer.update(repeating: .nan)
        model.freshBackward(outputGrad: grad)
        return Setup(model: model, x: x, target: target, t: timesteps, batch: batch, output: out, gradient: model.gradients.toArray())
    }

    static func rms(_ a: ArraySlice<Float>) -> Double {
        (a.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(a.count, 1))).squareRoot()
    }

    // MARK: U-Net

    static func tinyUNet() -> Setup<UNetDenoiser> {
        let model = ModelTests.tinyUNet(inChannels: 3, batchCapacity: 2)
        return setup(model, batch: 2, timesteps: [3, 700], seed: 1)
    }

    @Test func tinyUNetForwardEqualsIndependentDoubleReference() {
        // Three channels and two images, so the NCHW ↔ CNHW conversions at the model's boundary matter.
        let s = Self.tinyUNet()
        let reference = ReferenceUNet(model: s.model, input: s.x, timesteps: s.t, batch: s.batch)
        let expected = reference.output(s.model.parameters.toArray().map(Double.init))
        var worst = 0.0
        for i in expected.indices { worst = max(worst, abs(Double(s.output[i]) - expected[i]) / (abs(expected[i]) + 1e-2)) }
        report("tiny U-Net forward vs Double reference: max rel error (floor 1e-2) \(worst)")
        #expect(worst < 1e-4, "U-Net output differs from the reference by \(worst)")
        #expect(s.output.allSatisfy { $0.isFinite })
    }

    @Test func tinyUNetGradientsMatchFiniteDifferencesInEveryTensor() {
        let s = Self.tinyUNet()
        let g = s.gradient
        #expect(g.allSatisfy { $0.isFinite }, "backward must overwrite every gradient")
        let reference = ReferenceUNet(model: s.model, input: s.x, timesteps: s.t, batch: s.batch)
        var p = s.model.parameters.toArray().map(Double.init)
        func loss() -> Double { meanSquaredError(reference.output(p), s.target) }
        func difference(_ i: Int, _ h: Double) -> Double {
            let old = p[i]
            p[i] = old + h; let lp = loss()
            p[i] = old - h; let lm = loss()
            p[i] = old
            return (lp - lm) / (2 * h)
        }

        var rng = SplitMix64(seed: 99)
        var checked = 0, retried = 0, worst = 0.0, worstName = ""
        for e in s.model.parameterTable.entries {
            let slice = g[e.offset..<e.offset + e.count]
            // why: a convolution straight before a BatchNorm has a bias whose true gradient is 0 (the batch
            // mean absorbs it); all of its entries must be rounding-small next to its weight's gradient.
            if e.name.hasSuffix(".conv1.bias") || e.name.hasSuffix(".conv2.bias") {
                let weight = s.model.parameterTable.entry(named: e.name.replacingOccurrences(of: ".bias", with: ".weight"))!
                let scale = Self.rms(g[weight.offset..<weight.offset + weight.count])
                let largest = slice.map { Double(abs($0)) }.max()!
                let fd = abs(difference(e.offset + Int(rng.next() % UInt64(e.count)), 1e-6))
                report("U-Net \(e.name): max |analytic| \(largest), |fd| \(fd), weight-gradient RMS \(scale)")
                #expect(largest < 1e-4 * scale && fd < 1e-4 * scale, "\(e.name): gradient should vanish, max \(largest), fd \(fd)")
                continue
            }
            // The largest entry of every tensor (best signal) and one random entry.
            let picks = largestAndOneRandom(slice, rng: &rng)
            let floor = 1e-2 * Self.rms(slice)
            for i in picks {
                let an = Double(g[i])
                var err = abs(difference(i, 1e-6) - an) / (abs(an) + floor)
                if err >= Self.tolerance {
                    // A ReLU or max-pool kink within 1e-6 of the point spoils that difference (and only that one);
                    // a wrong gradient is wrong at every step.
                    retried += 1
                    err = abs(difference(i, 1e-7) - an) / (abs(an) + floor)
                }
                checked += 1
                if err > worst { worst = err; worstName = e.name }
                #expect(err < Self.tolerance, "\(e.name)[\(i - e.offset)]: analytic \(an), relative error \(err)")
            }
        }
        report("U-Net FD (Double reference, h 1e-6): \(checked) coordinates, max error \(worst) in \(worstName), \(retried) retried at 1e-7")
        #expect(checked >= 80)
    }

    // MARK: MLP

    static func mlp() -> Setup<MLPDenoiser> {
        setup(MLPDenoiser(dimension: 2, batchCapacity: 8), batch: 8, timesteps: [0, 1, 17, 250, 500, 640, 998, 999], seed: 5)
    }

    /// How far parameter `i` of the MLP can move before some ReLU changes state (first order, and exact
    /// here: a pre-activation is affine in any one parameter while the ReLUs before it keep their state).
    static func distanceToKink(_ i: Int, model: MLPDenoiser, reference: ReferenceMLP, p: [Double], z1: [Double], z2: [Double]) -> Double {
        let table = model.parameterTable, hidden = model.hidden, width = model.dimension + 1
        let w0 = table.entry(named: "net.0.weight")!, b0 = table.entry(named: "net.0.bias")!
        let w2 = table.entry(named: "net.2.weight")!, b2 = table.entry(named: "net.2.bias")!
        var d = Double.infinity
        func layer2(_ n: Int, v: Int, rate: Double) { if rate != 0 { d = min(d, abs(z2[n * hidden + v]) / abs(rate)) } }
        func fromLayer1(unit u: Int, input: (Int) -> Double) {
            for n in 0..<reference.batch {
                let rate = input(n)
                if rate != 0 { d = min(d, abs(z1[n * hidden + u]) / abs(rate)) }
                if z1[n * hidden + u] > 0 { for v in 0..<hidden { layer2(n, v: v, rate: rate * p[w2.offset + v * hidden + u]) } }
            }
        }
        switch i {
        case w0.offset..<w0.offset + w0.count:
            let (u, k) = ((i - w0.offset) / width, (i - w0.offset) % width)
            fromLayer1(unit: u) { reference.features[$0 * width + k] }
        case b0.offset..<b0.offset + b0.count:
            fromLayer1(unit: i - b0.offset) { _ in 1 }
        case w2.offset..<w2.offset + w2.count:
            let (v, u) = ((i - w2.offset) / hidden, (i - w2.offset) % hidden)
            for n in 0..<reference.batch { layer2(n, v: v, rate: max(z1[n * hidden + u], 0)) }
        case b2.offset..<b2.offset + b2.count:
            for n in 0..<reference.batch { layer2(n, v: i - b2.offset, rate: 1) }
        default: break   // net.4: no ReLU after it
        }
        return d
    }

    @Test func mlpForwardEqualsIndependentDoubleReference() {
        let s = Self.mlp()
        let reference = ReferenceMLP(model: s.model, input: s.x, timesteps: s.t, batch: s.batch)
        let expected = reference.forward(s.model.parameters.toArray().map(Double.init)).output
        var worst = 0.0
        for i in expected.indices { worst = max(worst, abs(Double(s.output[i]) - expected[i]) / (abs(expected[i]) + 1e-2)) }
        report("MLP forward vs Double reference: max rel error (floor 1e-2) \(worst)")
        #expect(worst < 1e-5)
    }

    /// Every one of the 17 282 parameters, differenced through the Float model itself. Between kinks the
    /// loss is exactly quadratic in one parameter, so the central difference over a kink-free interval has
    /// no truncation error; what remains is the Float rounding of the loss, measured at up to ~2e-8 on a
    /// difference of two losses, i.e. 1e-8/h on the slope. The check allows 3e-8/h on top of the relative
    /// tolerance (twice the measured noise); at the usual h = 0.01 that is 3e-6 against gradients of 1e-4…1e-2.
    @Test func mlpGradientMatchesFiniteDifferencesForEveryParameter() {
        let s = Self.mlp()
        let model = s.model, g = s.gradient, n = s.batch
        #expect(g.count == 17_282 && g.allSatisfy { $0.isFinite })
        let reference = ReferenceMLP(model: model, input: s.x, timesteps: s.t, batch: n)
        let p = model.parameters.toArray().map(Double.init)
        let (_, z1, z2) = reference.forward(p)
        func loss() -> Double {
            var out = [Float](repeating: .nan, count: s.target.count)
            model.forward(input: s.x, timesteps: s.t, output: &out, batch: n)
            return meanSquaredError(out, s.target)
        }
        let pointer = model.parameters.pointer
        var worst = 0.0, worstAt = -1, smallSteps = 0, noise = 0.0, withinToleranceAlone = 0
        for e in model.parameterTable.entries {
            let floor = 1e-2 * Self.rms(g[e.offset..<e.offset + e.count])
            var tensorWorst = 0.0, tensorRaw = 0.0
            for i in e.offset..<e.offset + e.count {
                // Half the way to the nearest kink, at most 0.01.
                let h = Float(min(1e-2, 0.5 * Self.distanceToKink(i, model: model, reference: reference, p: p, z1: z1, z2: z2)))
                if h < 1e-3 { smallSteps += 1 }
                let old = pointer[i]
                pointer[i] = old + h; let lp = loss()
                pointer[i] = old - h; let lm = loss()
                pointer[i] = old
                let step = Double((old + h) - (old - h))
                let fd = (lp - lm) / step
                let an = Double(g[i])
                let err = max(0, abs(fd - an) - 3e-8 / Double(h)) / (abs(an) + floor)
                noise = max(noise, abs(fd - an) * step / 2)
                if abs(fd - an) / (abs(an) + floor) < Self.tolerance { withinToleranceAlone += 1 }
                tensorRaw = max(tensorRaw, abs(fd - an) / (abs(an) + floor))
                tensorWorst = max(tensorWorst, err)
                if err > worst { worst = err; worstAt = i }
            }
            report("MLP \(e.name): \(e.count) coordinates, max error \(tensorWorst) (\(tensorRaw) before the noise allowance)")
            #expect(tensorWorst < Self.tolerance, "\(e.name): max relative error \(tensorWorst)")
        }
        report("MLP FD (Float model): all \(g.count) coordinates, max error \(worst) at \(worstAt), max |fd − analytic|·h \(noise), \(withinToleranceAlone) within 1e-3 without the noise allowance, \(smallSteps) steps below 1e-3")
        #expect(smallSteps < g.count / 20, "too many parameters sit next to a kink for the check to mean much")
    }

    /// The same gradient against differences of the Double reference, which has no rounding noise: the
    /// 3 largest and 40 random entries of every tensor, to 1e-4.
    @Test func mlpGradientMatchesFiniteDifferencesOfDoubleReference() {
        let s = Self.mlp()
        let model = s.model, g = s.gradient
        let reference = ReferenceMLP(model: model, input: s.x, timesteps: s.t, batch: s.batch)
        var p = model.parameters.toArray().map(Double.init)
        let (_, z1, z2) = reference.forward(p)
        var rng = SplitMix64(seed: 17)
        var worst = 0.0, checked = 0
        for e in model.parameterTable.entries {
            let slice = g[e.offset..<e.offset + e.count]
            let floor = 1e-2 * Self.rms(slice)
            var picks = Set(slice.indices.sorted { abs(slice[$0]) > abs(slice[$1]) }.prefix(3))
            for _ in 0..<min(40, e.count) { picks.insert(e.offset + Int(rng.next() % UInt64(e.count))) }
            for i in picks.sorted() {
                let h = min(1e-4, 0.5 * Self.distanceToKink(i, model: model, reference: reference, p: p, z1: z1, z2: z2))
                let old = p[i]
                p[i] = old + h; let lp = meanSquaredError(reference.forward(p).output, s.target)
                p[i] = old - h; let lm = meanSquaredError(reference.forward(p).output, s.target)
                p[i] = old
                let an = Double(g[i]), err = abs((lp - lm) / (2 * h) - an) / (abs(an) + floor)
                worst = max(worst, err); checked += 1
                #expect(err < 1e-4, "\(e.name)[\(i - e.offset)]: analytic \(an), relative error \(err)")
            }
        }
        report("MLP FD (Double reference): \(checked) coordinates, max error \(worst)")
    }
}
