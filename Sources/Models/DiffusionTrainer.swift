import Tensor

/// One DDPM training step on one rank (SPEC §2): t ~ U{0..T−1} and ε ~ N(0, I) per image,
/// x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε, loss = mean((ε̂(x_t, t) − ε)²), backward, Adam.
/// Every buffer is allocated here, once; `step` allocates nothing.
public final class DiffusionTrainer {
    public let model: Denoiser
    public let schedule: NoiseSchedule
    public let optimizer: Adam
    /// Timesteps and noise for this rank; its state is three integers (checkpointed per rank).
    public var rng: Philox
    public let batch: Int

    private let sqrtAlphaBar, sqrtOneMinusAlphaBar: [Float]
    public let noise, noisy, prediction, predictionGrad: FloatBuffer
    public let timesteps: UnsafeMutablePointer<Int32>

    public init(model: Denoiser, schedule: NoiseSchedule, seed: UInt64, rank: Int = 0, batch: Int) {
        precondition(batch <= model.batchCapacity, "batch \(batch) above the model's capacity \(model.batchCapacity)")
        self.model = model; self.schedule = schedule; self.batch = batch
        optimizer = Adam(parameterCount: model.parameterTable.totalCount)
        rng = Philox(seed: seed, stream: RandomStream.training(rank: rank))
        sqrtAlphaBar = schedule.alphaBars.map { Float($0.squareRoot()) }
        sqrtOneMinusAlphaBar = schedule.alphaBars.map { Float((1 - $0).squareRoot()) }
        let count = batch * model.sampleCount
        noise = FloatBuffer(count: count); noisy = FloatBuffer(count: count)
        prediction = FloatBuffer(count: count); predictionGrad = FloatBuffer(count: count)
        timesteps = .allocate(capacity: batch)
        timesteps.initialize(repeating: 0, count: batch)
    }

    deinit { timesteps.deallocate() }

    /// Draws this step's timesteps and noise from `rng` into `timesteps` and `noise`.
    public func drawTimestepsAndNoise() {
        rng.fillIntegers(timesteps, count: batch, below: schedule.timesteps)
        rng.fillNormal(noise.pointer, count: batch * model.sampleCount)
    }

    /// Draws t and ε, forms x_t from the clean batch `images` [batch, sample…], runs forward and backward
    /// and leaves the gradients in `model.gradients` (added to them when `accumulate`). Returns the loss.
    public func computeGradients(images: UnsafePointer<Float>, accumulate: Bool = false) -> Float {
        drawTimestepsAndNoise()
        return forwardBackward(images: images, accumulate: accumulate)
    }

    /// The step with the timesteps and noise already in `timesteps` and `noise`.
    public func forwardBackward(images: UnsafePointer<Float>, accumulate: Bool) -> Float {
        let sample = model.sampleCount
        for n in 0..<batch {
            let t = Int(timesteps[n]), a = sqrtAlphaBar[t], b = sqrtOneMinusAlphaBar[t]
            let x0 = images + n * sample, e = noise.pointer + n * sample, xt = noisy.pointer + n * sample
            for i in 0..<sample { xt[i] = a * x0[i] + b * e[i] }
        }
        model.training = true
        model.forward(input: noisy.pointer, timesteps: timesteps, output: prediction.pointer, batch: batch)
        let loss = mseLoss(predictionGrad: predictionGrad.pointer, prediction: prediction.pointer,
                           target: noise.pointer, count: batch * sample)
        model.backward(outputGrad: predictionGrad.pointer, accumulate: accumulate)
        return loss
    }

    /// A full single-rank step: gradients, then Adam at `learningRate`.
    @discardableResult
    public func step(images: UnsafePointer<Float>, learningRate: Float) -> Float {
        let loss = computeGradients(images: images)
        optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: learningRate)
        return loss
    }
}
