import Tensor

/// The DDPM noise-prediction objective on one rank's batch (SPEC §2): t uniform over the schedule's
/// timesteps (U{0..T−1}, the course's U{1..T}) and ε ~ N(0, I) per image, x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε,
/// loss = mean((ε̂(x_t, t) − ε)²), and its backward pass.
/// With a continuous schedule (continuous-cosine, ZOO §5): t ~ U(0, 1) per image (`times`),
/// x_t = signal(t)·x0 + noise(t)·ε, and the model is given ν = noise(t)² (Conditioning.setContinuousTime).
/// `lossFunction` .mae (the keras.io DDIM's) takes mean|ε̂ − ε| instead of the squared error.
/// Every buffer is allocated here, once; nothing in a step allocates.
public final class DiffusionLoss {
    /// How ε̂ is compared with ε (`--loss`).
    public enum LossFunction: String, Sendable, CaseIterable {
        /// mean((ε̂ − ε)²): DDPM's, the default.
        case mse
        /// mean|ε̂ − ε|: the keras.io DDIM's (gradient sign(ε̂ − ε)/count).
        case mae
    }
    public let model: Denoiser
    public let schedule: NoiseSchedule
    /// Timesteps and noise for this rank; its state is three integers (checkpointed per rank).
    public var rng: Philox
    public let batch: Int

    private let sqrtAlphaBar, sqrtOneMinusAlphaBar: [Float]
    public let noise, noisy, prediction, predictionGrad: FloatBuffer
    /// The batch's timesteps (drawn here) and labels (set by whoever loads the batch).
    public let conditioning: Conditioning
    /// Probability with which each image's label is replaced by `Conditioning.noLabel` (`--label-dropout`):
    /// the unconditional model that classifier-free guidance needs, trained in the same network.
    public var labelDropout: Double = 0
    private let dropoutDraws: FloatBuffer
    public var lossFunction: LossFunction = .mse
    /// A continuous schedule's times t ∈ [0, 1) of the batch, drawn here (set them instead when not drawing).
    public let times: FloatBuffer

    public init(model: Denoiser, schedule: NoiseSchedule, seed: UInt64, rank: Int = 0, batch: Int) {
        precondition(batch <= model.batchCapacity, "batch \(batch) above the model's capacity \(model.batchCapacity)")
        self.model = model; self.schedule = schedule; self.batch = batch
        rng = Philox(seed: seed, stream: RandomStream.training(rank: rank))
        sqrtAlphaBar = schedule.alphaBars.map { Float($0.squareRoot()) }
        sqrtOneMinusAlphaBar = schedule.alphaBars.map { Float((1 - $0).squareRoot()) }
        let count = batch * model.sampleCount
        noise = FloatBuffer(count: count); noisy = FloatBuffer(count: count)
        prediction = FloatBuffer(count: count); predictionGrad = FloatBuffer(count: count)
        conditioning = Conditioning(capacity: batch)
        dropoutDraws = FloatBuffer(count: batch)
        times = FloatBuffer(count: schedule.isContinuous ? batch : 0)
    }

    /// Draws this step's timesteps and noise from `rng` into `conditioning` and `noise`, then drops labels
    /// (after the batch's labels are loaded). why only with a dropout: runs without one draw what they always drew.
    public func drawTimestepsAndNoise() {
        if schedule.isContinuous {
            rng.fillUniform(times.pointer, count: batch, low: 0, high: 1)
        } else {
            rng.fillIntegers(conditioning.timesteps, count: batch, below: schedule.timesteps)
        }
        if !schedule.isContinuous && schedule.firstTimestep != 0 {   // U{0..T−1} moved to start at the course's t = 1
            let first = Int32(schedule.firstTimestep)
            for n in 0..<batch { conditioning.timesteps[n] += first }
        }
        rng.fillNormal(noise.pointer, count: batch * model.sampleCount)
        guard labelDropout > 0 else { return }
        rng.fillUniform(dropoutDraws.pointer, count: batch, low: 0, high: 1)
        for n in 0..<batch where Double(dropoutDraws[n]) < labelDropout { conditioning.labels[n] = Conditioning.noLabel }
    }

    /// Forms x_t from the clean batch `images` [batch, sample…] with the timesteps in `conditioning` (a
    /// continuous schedule: the times in `times`) and the noise in `noise`, runs forward and backward
    /// (adding into `model.gradients`), returns the loss.
    public func forwardBackward(images: UnsafePointer<Float>) -> Float {
        let sample = model.sampleCount, t = conditioning.timesteps
        if !schedule.isContinuous { conditioning.deriveContinuousTime(for: schedule, batch: batch) }
        for n in 0..<batch {
            let a: Float, b: Float
            if schedule.isContinuous {
                let (signal, noiseRate) = schedule.signalAndNoise(at: Double(times[n]))
                conditioning.setContinuousTime(Double(times[n]), noise: noiseRate, sample: n)
                a = Float(signal); b = Float(noiseRate)
            } else {
                a = sqrtAlphaBar[Int(t[n])]; b = sqrtOneMinusAlphaBar[Int(t[n])]
            }
            let x0 = images + n * sample, e = noise.pointer + n * sample, xt = noisy.pointer + n * sample
            for i in 0..<sample { xt[i] = a * x0[i] + b * e[i] }
        }
        model.training = true
        model.forward(input: noisy.pointer, conditioning: conditioning, output: prediction.pointer, batch: batch)
        let loss = lossFunction == .mse
            ? mseLoss(predictionGrad: predictionGrad.pointer, prediction: prediction.pointer, target: noise.pointer, count: batch * sample)
            : maeLoss(predictionGrad: predictionGrad.pointer, prediction: prediction.pointer, target: noise.pointer, count: batch * sample)
        model.backward(outputGrad: predictionGrad.pointer)
        return loss
    }

    /// Draws t and ε, then `forwardBackward`.
    public func computeGradients(images: UnsafePointer<Float>) -> Float {
        drawTimestepsAndNoise()
        return forwardBackward(images: images)
    }
}

extension DiffusionLoss: TrainingObjective {
    public var trainable: TrainableModel { model }
    public var inputCount: Int { batch * model.sampleCount }
    public var labels: UnsafeMutablePointer<Int32> { conditioning.labels }
    public func drawRandomness() { drawTimestepsAndNoise() }
}
