import Tensor

/// One optimizer step of data-parallel training, the same for every command that trains (`train`,
/// `bench`, `gradients` through `TrainingStep`, `classifier` through `OptimizerStep<ClassificationLoss>`):
///   zero the gradients (unless the last update did) → for each micro-batch: load, draw the objective's
///   random inputs (diffusion: t and ε), forward, loss, backward (the last one's gradients summed over the
///   ranks while backward runs) → sum the loss (and the stop requests) over the ranks → average: scale
///   1/(micro-batches · ranks) → skip the update if the loss or the gradient norm is not finite (rolling
///   back BatchNorm's running statistics) → clip the global norm → Adam (or AdamW) with the scale folded in,
///   the EMA of the weights and the zeroing of the gradients in its pass → the EMA of the BatchNorm running
///   statistics (`emaBuffers`), with the same decay.
/// Every rank makes the same decisions from the same summed values, so all skip, clip or stop together.
public final class OptimizerStep<Objective: TrainingObjective> {
    public struct Options: Sendable {
        public var accumulation = 1
        /// Clip the global gradient norm to this (0: off).
        public var gradientClip = 0.0
        /// EMA decay of the weights (0: no EMA).
        public var emaRate = 0.0
        /// Ramp the decay up to `emaRate` (`emaDecay`).
        public var emaWarmup = false
        /// Also average the model's buffers (BatchNorm running statistics) with the EMA's decay (`--ema-buffers`).
        public var emaBuffers = false
        /// AdamW's decoupled weight decay (0: Adam) and Adam's ε.
        public var weightDecay = 0.0
        public var adamEpsilon = 1e-8
        public init(accumulation: Int = 1, gradientClip: Double = 0, emaRate: Double = 0, emaWarmup: Bool = false,
                    emaBuffers: Bool = false, weightDecay: Double = 0, adamEpsilon: Double = 1e-8) {
            self.accumulation = accumulation; self.gradientClip = gradientClip; self.emaRate = emaRate; self.emaWarmup = emaWarmup
            self.emaBuffers = emaBuffers; self.weightDecay = weightDecay; self.adamEpsilon = adamEpsilon
        }
    }

    public struct Result: Sendable {
        /// Mean loss over every image of the step, all ranks.
        public let loss: Double
        /// Global norm of the averaged gradient, before clipping.
        public let gradientNorm: Double
        /// False when the update was skipped (non-finite loss or gradient).
        public let applied: Bool
        /// Some rank asked to stop.
        public let stop: Bool
    }

    /// The objective (`DiffusionLoss`, `ClassificationLoss`) and through it the model.
    public let loss: Objective
    public var model: Objective.Model { loss.model }
    public let optimizer: Adam
    public let ranks: RankGroup
    public let options: Options
    /// EMA of the parameters (when `emaRate` > 0).
    public let ema: FloatBuffer?
    /// EMA of the buffers, ema ← d·ema + (1 − d)·buffers after every applied update (with `emaBuffers`).
    public let emaBuffers: FloatBuffer?
    /// The micro-batch being trained on: filled by the caller's `loadBatch`.
    public let images: FloatBuffer
    public var labels: UnsafeMutablePointer<Int32> { loss.labels }
    /// The model as the step sees it: flat parameters, gradients and buffers.
    private let network: TrainableModel
    /// BatchNorm running statistics as they were before the step (restored if it is skipped).
    private let buffersBeforeStep: FloatBuffer
    /// The step's loss and stop flag, summed over the ranks in one call.
    private let sums = DoubleBuffer(count: 2)
    /// The last update zeroed the gradients as it read them (so the next step need not).
    private var gradientsAreZero = false

    public init(objective: Objective, ranks: RankGroup, options: Options = Options()) {
        loss = objective; network = objective.trainable; self.ranks = ranks; self.options = options
        optimizer = Adam(parameterCount: network.parameterTable.totalCount, epsilon: Float(options.adamEpsilon))
        optimizer.weightDecay = Float(options.weightDecay)
        ema = options.emaRate > 0 ? FloatBuffer(count: network.parameters.count) : nil
        ema?.copy(from: network.parameters)
        emaBuffers = options.emaRate > 0 && options.emaBuffers ? FloatBuffer(count: network.buffers.count) : nil
        emaBuffers?.copy(from: network.buffers)
        images = FloatBuffer(count: objective.inputCount)
        buffersBeforeStep = FloatBuffer(count: network.buffers.count)
        network.gradientsReady = { [unowned ranks] in ranks.gradientsFinal(from: $0) }
    }

    /// 1/(micro-batches · ranks): turns the summed gradients into the mean over every image of the step.
    public var gradientScale: Float { 1 / Float(options.accumulation * ranks.worldSize) }

    /// The whole step at `learningRate`. `loadBatch(micro)` fills `images` (and `labels`; and, when
    /// `drawNoise` is false, the objective's random inputs: `loss.noise` and the timesteps);
    /// `beforeGradientSum` runs after the last backward, before waiting for the gradient sum.
    public func run(learningRate: Float, stopRequested: Bool = false, drawNoise: Bool = true,
                    loadBatch: (_ micro: Int) -> Void, beforeGradientSum: () -> Void = {}) -> Result {
        buffersBeforeStep.copy(from: network.buffers)
        let (meanLoss, stop) = computeGradients(stopRequested: stopRequested, drawNoise: drawNoise,
                                                loadBatch: loadBatch, beforeGradientSum: beforeGradientSum)
        var scale = gradientScale
        let norm = Double(scale) * l2Norm(network.gradients.pointer, count: network.gradients.count)
        guard meanLoss.isFinite && norm.isFinite else {
            network.buffers.copy(from: buffersBeforeStep)
            return Result(loss: meanLoss, gradientNorm: norm, applied: false, stop: stop)
        }
        if options.gradientClip > 0 && norm > options.gradientClip { scale *= Float(options.gradientClip / norm) }
        let decay = Float(emaDecay(rate: options.emaRate, warmup: options.emaWarmup, update: optimizer.step + 1))
        let average = ema.map { ($0, decay) }
        optimizer.update(parameters: network.parameters, gradients: network.gradients, learningRate: learningRate, gradientScale: scale,
                         zeroGradients: true, average: average)
        if let emaBuffers {
            // avg += (1 − d)·(b − avg), the form the weights' EMA takes in Adam.update; a frozen table, equal to
            // its average from the start, stays bit-identical in this form
            let e = emaBuffers.pointer, b = network.buffers.pointer, w = 1 - decay
            for i in 0..<emaBuffers.count { e[i] += w * (b[i] - e[i]) }
        }
        gradientsAreZero = true
        return Result(loss: meanLoss, gradientNorm: norm, applied: true, stop: stop)
    }

    /// The step up to the update: afterwards the model's gradients hold their sum over the micro-batches
    /// and ranks (multiply by `gradientScale` for their mean). Returns the mean loss and whether any rank
    /// asked to stop.
    public func computeGradients(stopRequested: Bool = false, drawNoise: Bool = true, loadBatch: (_ micro: Int) -> Void,
                                 beforeGradientSum: () -> Void = {}) -> (loss: Double, stop: Bool) {
        if !gradientsAreZero { network.zeroGradients() }
        gradientsAreZero = false
        var localLoss = 0.0
        for micro in 0..<options.accumulation {
            loadBatch(micro)
            // Only the last micro-batch's backward produces final gradients (the others accumulate).
            if micro == options.accumulation - 1 { ranks.beginGradientSum() }
            if drawNoise { loss.drawRandomness() }
            localLoss += Double(loss.forwardBackward(images: images.pointer))
        }
        beforeGradientSum()
        ranks.finishGradientSum()
        sums[0] = localLoss
        sums[1] = stopRequested ? 1 : 0
        ranks.sum(sums.pointer, count: 2)
        return (sums[0] / Double(options.accumulation * ranks.worldSize), sums[1] > 0)
    }
}

/// The DDPM training step of `train`, `bench` and `gradients`.
public typealias TrainingStep = OptimizerStep<DiffusionLoss>

extension OptimizerStep where Objective == DiffusionLoss {
    /// The DDPM step for `model` with `schedule`; rank `rank` draws its timesteps and noise from its own
    /// stream of `seed`.
    public convenience init(model: Denoiser, schedule: NoiseSchedule, seed: UInt64, rank: Int, batch: Int,
                            ranks: RankGroup, options: Options = Options()) {
        self.init(objective: DiffusionLoss(model: model, schedule: schedule, seed: seed, rank: rank, batch: batch),
                  ranks: ranks, options: options)
    }
}
