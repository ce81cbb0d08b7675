import Foundation
import Testing
import TestSupport
import Tensor
@testable import Models

/// The seeds' schedules (ZOO.md §2 the course's, §3 the needle seed's) against their closed forms, the
/// timesteps training draws and sampling visits, and DDPM's two variances. linear and cosine are checked
/// against PyTorch in ScheduleAndAdamTests.
@Suite struct NoiseScheduleTests {
    static let kinds = NoiseSchedule.discreteKinds

    @Test func courseScheduleHasTPlusOneBetasAndTheCleanImageAtIndexZero() {
        let s = NoiseSchedule(.course, timesteps: 500)
        #expect(s.timesteps == 500)
        #expect(s.firstTimestep == 1 && s.lastTimestep == 500)
        #expect(s.betas.count == 501 && s.alphaBars.count == 501)
        #expect(s.betas[0] == 1e-4)
        #expect(abs(s.betas[500] - 0.02) < 1e-15)
        #expect(abs(s.betas[250] - (1e-4 + 0.0199 / 2)) < 1e-15)
        #expect(s.alphaBars[0] == 1)
        // The product starts at s = 0: ᾱ_1 holds β_0 as well as β_1.
        let alphaBar1 = (1 - s.betas[0]) * (1 - s.betas[1])
        #expect(s.alphaBars[1] == alphaBar1)
        var closedForm = 1.0
        for step in 0...500 {
            let beta: Double = 1e-4 + 0.0199 * Double(step) / 500
            closedForm *= 1 - beta
        }
        #expect(abs(s.alphaBars[500] / closedForm - 1) < 1e-12)
        #expect(s.alphaBar(before: 1) == 1)
    }

    @Test func needleLinearIsDDPMsLinearScheduleRescaledByThousandOverT() {
        let s = NoiseSchedule(.needleLinear, timesteps: 300)
        #expect(s.betas.count == 300 && s.firstTimestep == 0 && s.lastTimestep == 299)
        #expect((s.betas[0] * 1e7).rounded() == 3333, "3.333e-4")
        #expect((s.betas[299] * 1e5).rounded() == 6667, "0.06667")
        #expect(s.betas[0] == 1000.0 / 300 * 1e-4 && s.betas[299] == 1000.0 / 300 * 0.02, "both ends exactly, as numpy's linspace")
        let step = s.betas[1] - s.betas[0]
        #expect(abs(step - (0.02 - 1e-4) * 1000 / 300 / 299) < 1e-15)
        // At T = 1000 the rescaling is 1: DDPM's schedule, to rounding (numpy's and torch's linspace).
        let needle = NoiseSchedule(.needleLinear, timesteps: 1000), linear = NoiseSchedule(.linear, timesteps: 1000)
        let largest = zip(needle.betas, linear.betas).map { abs($0 - $1) / $1 }.max()!
        #expect(largest < 1e-14)
    }

    @Test func posteriorVarianceIsZeroAtTheFirstStepAndBelowBetaElsewhere() {
        for kind in Self.kinds {
            let s = NoiseSchedule(kind, timesteps: 100)
            #expect(s.posteriorVariance(s.firstTimestep) == 0, "\(kind)")
            let t = (s.firstTimestep + 1)...s.lastTimestep
            let outside = t.filter { !(s.posteriorVariance($0) > 0 && s.posteriorVariance($0) < s.betas[$0]) }
            #expect(outside.isEmpty, "\(kind): posterior variance not in (0, β_t) at t = \(outside)")
            let second = s.firstTimestep + 1
            let expected = s.betas[second] * (1 - s.alphaBars[second - 1]) / (1 - s.alphaBars[second])
            #expect(s.posteriorVariance(second) == expected, "\(kind)")
        }
    }

    /// The timesteps a DiffusionLoss draws over `batches` batches of 256, and the continuous times it gave.
    static func drawnTimesteps(_ schedule: NoiseSchedule, batches: Int) -> (t: [Int32], time: [Float]) {
        let loss = DiffusionLoss(model: MLPDenoiser(dimension: 2, batchCapacity: 256), schedule: schedule, seed: 3, batch: 256)
        let points = [Float](repeating: 0.5, count: 256 * 2)
        var t: [Int32] = [], time: [Float] = []
        for _ in 0..<batches {
            _ = loss.computeGradients(images: points)
            t += (0..<256).map { loss.conditioning.timesteps[$0] }
            time += (0..<256).map { loss.conditioning.continuous[$0] }
        }
        return (t, time)
    }

    @Test func courseTrainingDrawsTimestepsFromOneToTAndGivesTOverT() {
        let (t, time) = Self.drawnTimesteps(NoiseSchedule(.course, timesteps: 50), batches: 20)
        #expect(t.allSatisfy { (1...50).contains($0) })
        #expect(t.contains(1) && t.contains(50), "both ends drawn in \(t.count) draws")
        let wrongTime = zip(t, time).filter { $1 != Float($0) / 50 }
        #expect(wrongTime.isEmpty, "continuous time other than t/T: \(wrongTime.prefix(3))")
        let atT = zip(t, time).first { $0.0 == 50 }
        #expect(atT?.1 == 1)
    }

    @Test func courseDrawsAreTheStandardDrawsMovedUpByOne() {
        let course = Self.drawnTimesteps(NoiseSchedule(.course, timesteps: 50), batches: 2).t
        let linear = Self.drawnTimesteps(NoiseSchedule(.linear, timesteps: 50), batches: 2).t
        #expect(linear.allSatisfy { (0..<50).contains($0) })
        #expect(linear.contains(0) && linear.contains(49))
        #expect(course == linear.map { $0 + 1 })
    }

    /// The timesteps one sampling run visits, in order, and the continuous time the model saw at each.
    static func visited(_ schedule: NoiseSchedule, _ method: DiffusionSampler.Method) -> (t: [Int], time: [Float]) {
        let sampler = DiffusionSampler(model: MLPDenoiser(dimension: 2, batchCapacity: 2), schedule: schedule)
        let x = FloatBuffer(count: 4)
        var rng = Philox(seed: 1), t: [Int] = [], time: [Float] = []
        sampler.sample(into: x.pointer, batch: 2, method: method, rng: &rng) { step, _ in
            t.append(step); time.append(sampler.conditioning.continuous[0])
        }
        return (t, time)
    }

    @Test func ddpmVisitsEveryTimestepOfTheScheduleFromTheTop() {
        for variance in DiffusionSampler.DDPMVariance.allCases {
            for kind in Self.kinds {
                let s = NoiseSchedule(kind, timesteps: 10)
                let (t, time) = Self.visited(s, .ddpm(variance: variance))
                let expected = kind == .course ? Array((1...10).reversed()) : Array((0..<10).reversed())
                #expect(t == expected, "\(kind), \(variance)")
                #expect(time == expected.map { Float($0) / 10 }, "\(kind), \(variance)")
            }
        }
    }

    @Test func ddimVisitsEvenlySpacedTimestepsEndingOnTheCleanImage() {
        let linear = NoiseSchedule(.linear, timesteps: 10), course = NoiseSchedule(.course, timesteps: 10)
        #expect(Self.visited(linear, .ddim(steps: 5, eta: 0)).t == [8, 6, 4, 2, 0])
        #expect(Self.visited(course, .ddim(steps: 5, eta: 0)).t == [10, 8, 6, 4, 2])
        #expect(Self.visited(course, .ddim(steps: 5, eta: 0)).time.first == 1)
        // More steps than timesteps: each timestep once.
        #expect(Self.visited(course, .ddim(steps: 50, eta: 0)).t == Array((1...10).reversed()))
        #expect(linear.ddimTimesteps(steps: 1000) == Array((0..<10).reversed()))
        // T = 1000, S = 50 as before the course's schedule existed: 980, 960, …, 0.
        #expect(NoiseSchedule(.linear).ddimTimesteps(steps: 50) == Array(stride(from: 980, through: 0, by: -20)))
    }

    /// With a model predicting ε̂ = 0 (an MLP with all weights zero) and T = 2, DDPM sampling is
    /// x = a_first·(a_top·x_T + σ_top·z) with a_t = 1/√(1−β_t): σ_top is the variance asked for, and the
    /// first step adds no noise.
    @Test func ddpmUsesTheVarianceAskedForAndNoNoiseAtTheFirstStep() {
        for kind in [NoiseSchedule.Kind.linear, .course] {
            let s = NoiseSchedule(kind, timesteps: 2)
            let top = s.lastTimestep, first = s.firstTimestep
            for variance in DiffusionSampler.DDPMVariance.allCases {
                let sampler = DiffusionSampler(model: MLPDenoiser(dimension: 2, batchCapacity: 3), schedule: s)
                let x = FloatBuffer(count: 6)
                var rng = Philox(seed: 11)
                sampler.sample(into: x.pointer, batch: 3, method: .ddpm(variance: variance), rng: &rng)
                // The same draws by hand: x_T, then the noise of the top step.
                var draws = Philox(seed: 11)
                let start = FloatBuffer(count: 6), z = FloatBuffer(count: 6)
                draws.fillNormal(start.pointer, count: 6); draws.fillNormal(z.pointer, count: 6)
                let sigmaSquared = variance == .beta ? s.betas[top] : s.posteriorVariance(top)
                let aTop = 1 / (1 - s.betas[top]).squareRoot(), aFirst = 1 / (1 - s.betas[first]).squareRoot()
                let expected = (0..<6).map { i in
                    Float(aFirst * (aTop * Double(start[i]) + sigmaSquared.squareRoot() * Double(z[i])))
                }
                #expect(maxAbsoluteError(x.toArray(), expected) < 1e-5, "\(kind), \(variance)")
                #expect(draws == rng, "\(kind), \(variance): one draw of noise, none at the first step")
            }
        }
    }
}
