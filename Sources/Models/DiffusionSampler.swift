import Foundation
import Tensor

/// Reverse-process samplers (SPEC §2), running the denoiser in eval mode.
///   DDPM (ancestral): x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε̂)/√α_t + √β_t·z, z = 0 at t = 0.
///   DDIM (Song et al.): over S evenly spaced timesteps, x0̂ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t,
///     x_prev = √ᾱ_prev·x0̂ + √(1−ᾱ_prev−σ²)·ε̂ + σ·z, σ = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev),
///     with ᾱ_prev = 1 after the last step.
/// Both clamp images to [−1, 1] at the end (points of the toy sets are left as they are).
/// With `guidance` W (classifier-free guidance, Ho & Salimans), every ε̂ above is
///   ε̂ = ε̂_u + W·(ε̂_c − ε̂_u),
/// ε̂_c conditioned on the labels and ε̂_u on none, both from one forward pass over the batch twice:
/// W = 1 is the conditional model alone, W = 0 the unconditional one (the (1 + w)·ε̂_c − w·ε̂_u form is W = 1 + w).
public final class DiffusionSampler {
    public enum Method: Sendable, Equatable {
        case ddpm
        case ddim(steps: Int, eta: Double)
    }

    public let model: Denoiser
    public let schedule: NoiseSchedule
    /// Classifier-free guidance weight W, or nil for one plain forward pass per step.
    public let guidance: Double?
    /// Samples per `sample` call at most: the model's capacity, half of it with guidance.
    public let batchCapacity: Int
    private let prediction, noise: FloatBuffer
    /// With guidance: [x; x] and the model's two predictions [ε̂_c; ε̂_u].
    private let guidedInput, guidedPrediction: FloatBuffer
    /// The timestep of every reverse step, and the class labels to sample (`Conditioning.noLabel`, the
    /// default, for unconditional samples): set `conditioning.labels` before `sample`.
    public let conditioning: Conditioning

    public init(model: Denoiser, schedule: NoiseSchedule, guidance: Double? = nil) {
        precondition(guidance == nil || model.batchCapacity >= 2, "guided sampling runs the batch twice: capacity \(model.batchCapacity)")
        self.model = model
        self.schedule = schedule
        self.guidance = guidance
        batchCapacity = guidance == nil ? model.batchCapacity : model.batchCapacity / 2
        prediction = FloatBuffer(count: batchCapacity * model.sampleCount)
        noise = FloatBuffer(count: batchCapacity * model.sampleCount)
        let guided = guidance == nil ? 0 : 2 * batchCapacity * model.sampleCount
        guidedInput = FloatBuffer(count: guided); guidedPrediction = FloatBuffer(count: guided)
        conditioning = Conditioning(capacity: model.batchCapacity)
    }

    /// The timesteps DDIM visits, from high to low: S values evenly spaced over 0..<T.
    public static func ddimTimesteps(steps: Int, total: Int) -> [Int] {
        (0..<steps).map { $0 * total / steps }.reversed()
    }

    /// Replaces `x` ([batch, sample…], batch ≤ the model's capacity) with samples, starting from fresh
    /// Gaussian noise drawn from `rng`. `onStep` sees x after each reverse step (for trajectories).
    public func sample(into x: UnsafeMutablePointer<Float>, batch: Int, method: Method, rng: inout Philox,
                       onStep: ((_ t: Int, _ x: UnsafePointer<Float>) -> Void)? = nil) {
        precondition(batch <= batchCapacity, "sampling batch \(batch) above the sampler's capacity \(batchCapacity)")
        if guidance != nil { for n in batch..<(2 * batch) { conditioning.labels[n] = Conditioning.noLabel } }
        let count = batch * model.sampleCount
        rng.fillNormal(x, count: count)
        model.training = false
        switch method {
        case .ddpm:
            for t in (0..<schedule.timesteps).reversed() {
                predictNoise(x, t: t, batch: batch)
                let beta = schedule.betas[t], alphaBar = schedule.alphaBars[t]
                let a = Float(1 / (1 - beta).squareRoot()), b = Float(beta / (1 - alphaBar).squareRoot())
                if t > 0 { rng.fillNormal(noise.pointer, count: count) }
                let sigma: Float = t > 0 ? Float(beta.squareRoot()) : 0
                let eps = prediction.pointer, z = noise.pointer
                for i in 0..<count { x[i] = a * (x[i] - b * eps[i]) + sigma * z[i] }
                onStep?(t, x)
            }
        case .ddim(let steps, let eta):
            let sequence = Self.ddimTimesteps(steps: steps, total: schedule.timesteps)
            for (k, t) in sequence.enumerated() {
                predictNoise(x, t: t, batch: batch)
                let alphaBar = schedule.alphaBars[t]
                let previous = k + 1 < sequence.count ? schedule.alphaBars[sequence[k + 1]] : 1.0
                let sigma = eta * ((1 - previous) / (1 - alphaBar)).squareRoot() * (1 - alphaBar / previous).squareRoot()
                let c0 = Float(previous.squareRoot() / alphaBar.squareRoot())
                let c1 = Float((1 - previous - sigma * sigma).squareRoot() - previous.squareRoot() * (1 - alphaBar).squareRoot() / alphaBar.squareRoot())
                let useNoise = sigma > 0
                if useNoise { rng.fillNormal(noise.pointer, count: count) }
                let s = Float(sigma), eps = prediction.pointer, z = noise.pointer
                // x_prev = c0·x_t + c1·ε̂ (+ σz): the x0̂ and ε̂ terms of the formula above, collected.
                for i in 0..<count { x[i] = c0 * x[i] + c1 * eps[i] + (useNoise ? s * z[i] : 0) }
                onStep?(t, x)
            }
        }
        if model.sampleShape.count == 3 { for i in 0..<count { x[i] = min(max(x[i], -1), 1) } }
    }

    private func predictNoise(_ x: UnsafePointer<Float>, t: Int, batch: Int) {
        guard let guidance else {
            conditioning.setTimestep(t, totalTimesteps: schedule.timesteps, batch: batch)
            model.forward(input: x, conditioning: conditioning, output: prediction.pointer, batch: batch)
            return
        }
        let count = batch * model.sampleCount, both = guidedInput.pointer, out = guidedPrediction.pointer
        both.update(from: x, count: count); (both + count).update(from: x, count: count)
        conditioning.setTimestep(t, totalTimesteps: schedule.timesteps, batch: 2 * batch)
        model.forward(input: both, conditioning: conditioning, output: out, batch: 2 * batch)
        let w = Float(guidance), eps = prediction.pointer
        for i in 0..<count { eps[i] = out[count + i] + w * (out[i] - out[count + i]) }
    }
}
