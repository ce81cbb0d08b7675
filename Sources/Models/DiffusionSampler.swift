import Foundation
import Tensor

/// Reverse-process samplers (SPEC §2), running the denoiser in eval mode, over the schedule's timesteps
/// (t = T−1..0, or the course's T..1; "first" below is the lowest).
///   DDPM (ancestral): x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε̂)/√α_t + σ_t·z, z = 0 at the first timestep, with
///     σ_t² = β_t (DDPM's, the course's) or the posterior variance β_t(1−ᾱ_{t−1})/(1−ᾱ_t) (the needle seed's).
///   DDIM (Song et al.): over S evenly spaced timesteps, x0̂ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t,
///     x_prev = √ᾱ_prev·x0̂ + √(1−ᾱ_prev−σ²)·ε̂ + σ·z, σ = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev),
///     with ᾱ_prev = 1 after the last step (the course's ᾱ_0).
///   DDIM of a continuous schedule (continuous-cosine, the keras.io DDIM; η must be 0), S steps: for
///     s = 0..S−1: t = 1 − s/S, (n, g) = (noise, signal)(t), ε̂ = net(x, n²), x̂0 = (x − n·ε̂)/g,
///     (n', g') = (noise, signal)(t − 1/S), x = g'·x̂0 + n'·ε̂; the result is the last x̂0.
/// Both clamp images to [−1, 1] at the end (points of the toy sets are left as they are); with a
/// `normalization` (a run trained with --normalize-data) they are de-normalised instead:
/// clip(μ_c + σ_c·x, 0, 1) on the data's [0, 1] scale, returned in [−1, 1] like every sample.
/// With `guidance` W (classifier-free guidance, Ho & Salimans), every ε̂ above is
///   ε̂ = ε̂_u + W·(ε̂_c − ε̂_u),
/// ε̂_c conditioned on the labels and ε̂_u on none, both from one forward pass over the batch twice:
/// W = 1 is the conditional model alone, W = 0 the unconditional one (the (1 + w)·ε̂_c − w·ε̂_u form is W = 1 + w).
public final class DiffusionSampler {
    /// σ_t² of a DDPM step.
    public enum DDPMVariance: String, Sendable, CaseIterable {
        /// σ_t² = β_t: DDPM's upper bound, the default.
        case beta
        /// σ_t² = β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t), the variance of q(x_{t−1} | x_t, x_0): DDPM's lower bound.
        case posterior
    }

    public enum Method: Sendable, Equatable {
        case ddpm(variance: DDPMVariance)
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
    /// The training data's per-channel statistics when the model was trained on normalised images.
    public let normalization: DataNormalization?

    public init(model: Denoiser, schedule: NoiseSchedule, guidance: Double? = nil, normalization: DataNormalization? = nil) {
        precondition(normalization == nil || (model.sampleShape.count == 3 && normalization!.mean.count == model.sampleShape[0]),
                     "a data normalisation needs images with one mean per channel")
        precondition(guidance == nil || model.batchCapacity >= 2, "guided sampling runs the batch twice: capacity \(model.batchCapacity)")
        self.model = model
        self.schedule = schedule
        self.guidance = guidance
        self.normalization = normalization
        batchCapacity = guidance == nil ? model.batchCapacity : model.batchCapacity / 2
        prediction = FloatBuffer(count: batchCapacity * model.sampleCount)
        noise = FloatBuffer(count: batchCapacity * model.sampleCount)
        let guided = guidance == nil ? 0 : 2 * batchCapacity * model.sampleCount
        guidedInput = FloatBuffer(count: guided); guidedPrediction = FloatBuffer(count: guided)
        conditioning = Conditioning(capacity: model.batchCapacity)
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
        case .ddpm(let variance):
            precondition(!schedule.isContinuous, "DDPM ancestral sampling needs timesteps; \(schedule.kind.rawValue) has none (use DDIM)")
            for t in schedule.timestepRange.reversed() {
                predictNoise(x, t: t, batch: batch)
                let beta = schedule.betas[t], alphaBar = schedule.alphaBars[t]
                let a = Float(1 / (1 - beta).squareRoot()), b = Float(beta / (1 - alphaBar).squareRoot())
                let last = t == schedule.firstTimestep
                if !last { rng.fillNormal(noise.pointer, count: count) }
                let sigmaSquared = last ? 0 : variance == .beta ? beta : schedule.posteriorVariance(t)
                let sigma = Float(sigmaSquared.squareRoot())
                let eps = prediction.pointer, z = noise.pointer
                for i in 0..<count { x[i] = a * (x[i] - b * eps[i]) + sigma * z[i] }
                onStep?(t, x)
            }
        case .ddim(let steps, let eta) where schedule.isContinuous:
            precondition(eta == 0, "continuous-cosine's DDIM sampler is deterministic (η 0), got η \(eta)")
            sampleContinuous(x, batch: batch, steps: steps, onStep: onStep)
        case .ddim(let steps, let eta):
            let sequence = schedule.ddimTimesteps(steps: steps)
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
        if let normalization {
            normalization.denormalize(x, count: batch, channels: model.sampleShape[0], pixels: model.sampleCount / model.sampleShape[0])
        } else if model.sampleShape.count == 3 {
            for i in 0..<count { x[i] = min(max(x[i], -1), 1) }
        }
    }

    /// The continuous schedule's DDIM (η 0): ends with x = the last x̂0. `onStep` sees step k = S−1−s.
    private func sampleContinuous(_ x: UnsafeMutablePointer<Float>, batch: Int, steps: Int,
                                  onStep: ((_ t: Int, _ x: UnsafePointer<Float>) -> Void)?) {
        precondition(steps >= 1, "DDIM needs at least one step")
        let count = batch * model.sampleCount, eps = prediction.pointer
        for s in 0..<steps {
            let t = 1 - Double(s) / Double(steps)
            let (signal, noiseRate) = schedule.signalAndNoise(at: t)
            predictNoise(x, time: t, noise: noiseRate, batch: batch)
            let (nextSignal, nextNoise) = schedule.signalAndNoise(at: t - 1 / Double(steps))
            let n = Float(noiseRate), g = Float(signal), g1 = Float(nextSignal), n1 = Float(nextNoise)
            if s == steps - 1 {
                for i in 0..<count { x[i] = (x[i] - n * eps[i]) / g }
            } else {
                for i in 0..<count {
                    let x0 = (x[i] - n * eps[i]) / g
                    x[i] = g1 * x0 + n1 * eps[i]
                }
            }
            onStep?(steps - 1 - s, x)
        }
    }

    private func predictNoise(_ x: UnsafePointer<Float>, t: Int, batch: Int) {
        conditioning.setTimestep(t, of: schedule, batch: guidance == nil ? batch : 2 * batch)
        predictNoiseAtSetTime(x, batch: batch)
    }

    /// ε̂ at time t of a continuous schedule whose noise rate there is `noise` (the model sees ν = noise²).
    private func predictNoise(_ x: UnsafePointer<Float>, time t: Double, noise: Double, batch: Int) {
        for n in 0..<(guidance == nil ? batch : 2 * batch) { conditioning.setContinuousTime(t, noise: noise, sample: n) }
        predictNoiseAtSetTime(x, batch: batch)
    }

    /// ε̂ into `prediction`, with the time already in `conditioning` (for the doubled batch with guidance).
    private func predictNoiseAtSetTime(_ x: UnsafePointer<Float>, batch: Int) {
        guard let guidance else {
            model.forward(input: x, conditioning: conditioning, output: prediction.pointer, batch: batch)
            return
        }
        let count = batch * model.sampleCount, both = guidedInput.pointer, out = guidedPrediction.pointer
        both.update(from: x, count: count); (both + count).update(from: x, count: count)
        model.forward(input: both, conditioning: conditioning, output: out, batch: 2 * batch)
        let w = Float(guidance), eps = prediction.pointer
        for i in 0..<count { eps[i] = out[count + i] + w * (out[i] - out[count + i]) }
    }
}
