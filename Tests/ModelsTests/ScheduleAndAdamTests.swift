import Foundation
import Testing
import TestSupport
import IO
import Tensor
@testable import Models

@Suite struct ScheduleAndAdamTests {
    /// Largest |a − b| / |b| over two Double arrays.
    static func maxRelative(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) / abs($1) }.max()!
    }

    func checkSchedule(_ kind: NoiseSchedule.Kind, group: String) throws {
        let file = try Golden.open()
        let betas = try file.read("\(group)/beta", as: Double.self).values
        let alphaBars = try file.read("\(group)/alpha_bar", as: Double.self).values
        let schedule = NoiseSchedule(kind)
        #expect(schedule.timesteps == 1000 && betas.count == 1000)
        let betaError = Self.maxRelative(schedule.betas, betas), alphaError = Self.maxRelative(schedule.alphaBars, alphaBars)
        report("schedule \(kind): max rel error beta \(betaError), alpha_bar \(alphaError)")
        #expect(betaError < 1e-12, "\(kind) betas: \(betaError)")
        #expect(alphaError < 1e-12, "\(kind) alpha_bar: \(alphaError)")
    }

    @Test func linearScheduleMatchesPyTorch() throws {
        try checkSchedule(.linear, group: "schedule_linear")
        let s = NoiseSchedule(.linear)
        #expect(s.betas.first == 1e-4 && s.betas.last == 0.02, "linspace hits both ends exactly")
    }

    @Test func cosineScheduleMatchesPyTorch() throws {
        try checkSchedule(.cosine, group: "schedule_cosine")
        let s = NoiseSchedule(.cosine)
        #expect(s.betas.last == 0.999, "the last beta is clipped")
        #expect(s.betas.allSatisfy { $0 > 0 && $0 <= 0.999 })
        #expect(zip(s.alphaBars, s.alphaBars.dropFirst()).allSatisfy { $1 < $0 }, "alpha_bar decreases")
    }

    // MARK: Adam

    /// PyTorch's Adam (no weight decay, no amsgrad) in Double, step `k` from moments m, v.
    static func adamStep(p: inout [Double], m: inout [Double], v: inout [Double], g: [Float], k: Int, lr: Double,
                         b1: Double = 0.9, b2: Double = 0.999, eps: Double = 1e-8) {
        for i in p.indices {
            let gi = Double(g[i])
            m[i] += (1 - b1) * (gi - m[i])
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            let bias1 = 1 - pow(b1, Double(k)), bias2 = 1 - pow(b2, Double(k))
            p[i] -= lr / bias1 * m[i] / (v[i].squareRoot() / bias2.squareRoot() + eps)
        }
    }

    @Test func adamOneAndTwoStepsMatchPyTorchsFormula() {
        let start: [Float] = [1.0, -0.5, 0.25, 2.0, 0, 3e-3]
        let g1: [Float] = [0.1, -0.2, 0, 3, 1e-6, -4e-3]
        let g2: [Float] = [0.05, 0.1, -0.3, 3, 0, 2e-3]
        let lr: Float = 0.1
        let parameters = FloatBuffer(start), gradients = FloatBuffer(g1)
        let adam = Adam(parameterCount: start.count)
        // PyTorch's formula with its exact (double) hyperparameters, for the parameters…
        var p = start.map(Double.init), m = [Double](repeating: 0, count: start.count), v = m
        // …and with the optimizer's Float-rounded β1, β2, ε, for the moments. why: 1 − Float(0.999) is
        // 0.00099998713, 1.3e-5 below PyTorch's 0.001, so the stored second moment sits that factor below
        // PyTorch's exp_avg_sq; the update does not, because the bias correction 1 − β2^k uses the same
        // rounded β2 and cancels it.
        var pf = p, mf = m, vf = v
        let b1f = Double(adam.beta1), b2f = Double(adam.beta2), epsf = Double(adam.epsilon)

        adam.update(parameters: parameters, gradients: gradients, learningRate: lr)
        Self.adamStep(p: &p, m: &m, v: &v, g: g1, k: 1, lr: Double(lr))
        Self.adamStep(p: &pf, m: &mf, v: &vf, g: g1, k: 1, lr: Double(lr), b1: b1f, b2: b2f, eps: epsf)
        for i in start.indices {
            let moved = Double(parameters[i]) - Double(start[i]), expected = p[i] - Double(start[i])
            #expect(abs(moved - expected) <= 1e-5 * abs(expected) + 1e-7, "step 1, [\(i)]: moved \(moved), expected \(expected)")
            #expect(abs(Double(adam.firstMoment[i]) - mf[i]) <= 1e-6 * abs(mf[i]))
            #expect(abs(Double(adam.secondMoment[i]) - vf[i]) <= 1e-6 * abs(vf[i]))
        }
        // Step 1 by hand: m = 0.1·g, v = 0.001·g², so the update is lr·g/(|g| + ε) ≈ lr·sign(g), and 0 for g = 0.
        #expect(parameters[2] == start[2], "a zero gradient does not move the parameter")
        #expect(abs(Double(parameters[0]) - (1.0 - 0.1)) < 1e-6 && abs(Double(parameters[1]) - (-0.5 + 0.1)) < 1e-6)
        #expect(abs(Double(parameters[4]) - (0 - 0.1 * 1e-6 / (1e-6 + 1e-8))) < 1e-6, "ε matters for a tiny gradient")

        _ = gradients.buffer.update(fromContentsOf: g2)
        adam.update(parameters: parameters, gradients: gradients, learningRate: lr)
        Self.adamStep(p: &p, m: &m, v: &v, g: g2, k: 2, lr: Double(lr))
        Self.adamStep(p: &pf, m: &mf, v: &vf, g: g2, k: 2, lr: Double(lr), b1: b1f, b2: b2f, eps: epsf)
        #expect(adam.step == 2)
        for i in start.indices {
            #expect(abs(Double(parameters[i]) - p[i]) <= 2e-6 * max(1, abs(p[i])), "step 2, [\(i)]: \(parameters[i]) vs \(p[i])")
            #expect(abs(Double(adam.firstMoment[i]) - mf[i]) <= 1e-6 * abs(mf[i]))
            #expect(abs(Double(adam.secondMoment[i]) - vf[i]) <= 1e-6 * abs(vf[i]))
            // The moments against PyTorch's own: within the 1.3e-5 of the rounded β2.
            #expect(abs(Double(adam.secondMoment[i]) - v[i]) <= 2e-5 * abs(v[i]))
        }
        // Step 2 of coordinate 3 (the same gradient twice) moves by lr again: m̂ = g and v̂ = g².
        #expect(abs(Double(parameters[3]) - (2.0 - 2 * 0.1)) < 1e-5)
    }

    @Test func adamOnLongVectorsAgreesWithTheScalarFormula() {
        // Enough values to go through any vectorised path, and a length that is not a multiple of 8.
        let n = 1003
        let start = normals(n, seed: 1), g1 = normals(n, seed: 2, scale: 0.01), g2 = normals(n, seed: 3, scale: 0.01)
        let parameters = FloatBuffer(start), gradients = FloatBuffer(g1)
        let adam = Adam(parameterCount: n)
        var p = start.map(Double.init), m = [Double](repeating: 0, count: n), v = m
        adam.update(parameters: parameters, gradients: gradients, learningRate: 1e-3)
        Self.adamStep(p: &p, m: &m, v: &v, g: g1, k: 1, lr: 1e-3)
        _ = gradients.buffer.update(fromContentsOf: g2)
        adam.update(parameters: parameters, gradients: gradients, learningRate: 1e-3)
        Self.adamStep(p: &p, m: &m, v: &v, g: g2, k: 2, lr: 1e-3)
        var worst = 0.0
        for i in 0..<n {
            let moved = Double(parameters[i]) - Double(start[i]), expected = p[i] - Double(start[i])
            worst = max(worst, abs(moved - expected) / abs(expected))
        }
        report("Adam 2 steps, 1003 values: max relative error of the update \(worst)")
        #expect(worst < 1e-3, "update off by \(worst) (relative); the Float subtraction from p limits this to ~1e-4")
    }

    /// The fused extras of Adam's pass: zeroing the gradients and the weights' EMA are exactly the
    /// separate passes they replace.
    @Test func adamZeroesGradientsAndMovesTheAverageInItsPassExactlyAsSeparatePasses() {
        let n = 1003, start = normals(n, seed: 4), g = normals(n, seed: 5, scale: 0.01), avg = normals(n, seed: 6)
        let fusedP = FloatBuffer(start), fusedG = FloatBuffer(g), fusedAvg = FloatBuffer(avg)
        let plainP = FloatBuffer(start), plainG = FloatBuffer(g), plainAvg = FloatBuffer(avg)
        let decay: Float = 0.37
        Adam(parameterCount: n).update(parameters: fusedP, gradients: fusedG, learningRate: 1e-3, gradientScale: 0.5,
                                       zeroGradients: true, average: (fusedAvg, decay))
        Adam(parameterCount: n).update(parameters: plainP, gradients: plainG, learningRate: 1e-3, gradientScale: 0.5)
        for i in 0..<n { plainAvg.pointer[i] += (1 - decay) * (plainP[i] - plainAvg[i]) }
        #expect(fusedP.toArray() == plainP.toArray())
        #expect(fusedAvg.toArray() == plainAvg.toArray())
        #expect(fusedAvg.toArray() != avg)
        #expect(fusedG.toArray().allSatisfy { $0 == 0 } && plainG.toArray() == g)
    }

    @Test func learningRateSchedulesFollowTheirFormulas() {
        func rates(_ kind: LearningRateSchedule.Kind, warmup: Int = 0) -> [Float] {
            let s = LearningRateSchedule(kind: kind, peak: 1e-3, warmupSteps: warmup, totalSteps: 100)
            return (0..<100).map { s.rate(at: $0) }
        }
        // linear: the reference's lr·(1 − k/K), computed the way it always was.
        let reference: [Float] = (0..<100).map { (k: Int) -> Float in Float(1e-3 * (1 - Double(k) / 100)) }
        #expect(rates(.linear) == reference)
        #expect(rates(.constant).allSatisfy { $0 == Float(1e-3) })
        let cosine = rates(.cosine)
        let middle: Float = cosine[50], last: Float = cosine[99]
        #expect(cosine[0] == Float(1e-3))
        #expect(abs(middle - 5e-4) < 1e-9)
        #expect(last < 1e-6 && last > 0)
        #expect(zip(cosine, cosine.dropFirst()).allSatisfy { $0 > $1 })
        // Warm-up multiplies: (k+1)/W for k < W.
        let warm = rates(.cosine, warmup: 10)
        let first: Float = warm[0] - cosine[0] / 10, fifth: Float = warm[4] - cosine[4] / 2
        #expect(abs(first) < 1e-10)
        #expect(abs(fifth) < 1e-10)
        #expect(warm[20] == cosine[20])
    }

    @Test func emaWarmupRampsAsDiffusersEMAModel() {
        // diffusers EMAModel.get_decay with use_ema_warmup, inv_gamma 1, power 2/3: step = k − 1.
        #expect(emaDecay(rate: 0.9999, warmup: false, update: 1) == 0.9999)
        #expect(emaDecay(rate: 0.9999, warmup: true, update: 1) == 0)
        #expect(abs(emaDecay(rate: 0.9999, warmup: true, update: 2) - (1 - pow(2.0, -2.0 / 3))) < 1e-15)
        #expect(abs(emaDecay(rate: 0.9999, warmup: true, update: 1001) - (1 - pow(1001.0, -2.0 / 3))) < 1e-15)
        #expect(emaDecay(rate: 0.99, warmup: true, update: 100_000) == 0.99, "capped by the rate")
    }
}
