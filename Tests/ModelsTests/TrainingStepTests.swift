import Testing
import TestSupport
import Tensor
import IO
@testable import Models

/// The one training step of `train`, `bench` and `gradients`, on a world of one rank (where every sum
/// over ranks is the identity), against the same arithmetic spelled out by hand.
@Suite struct TrainingStepTests {
    static func tinyUNet(batchCapacity: Int = 2) -> Denoiser {
        let model = ModelArchitecture.cnnTiny.build([1, 16, 16], batchCapacity)
        model.initialize(seed: 21)
        return model
    }

    static let images = normals(4 * 256, seed: 31)

    /// Micro-batch `micro` of two images.
    static func load(_ step: TrainingStep) -> (Int) -> Void {
        { micro in _ = step.images.buffer.update(fromContentsOf: images[(micro * 512)..<((micro + 1) * 512)]) }
    }

    @Test func accumulatedMicroBatchesSumTheirGradientsAndAverageTheLoss() {
        let step = TrainingStep(model: Self.tinyUNet(), schedule: NoiseSchedule(.linear), seed: 5, rank: 0, batch: 2,
                                ranks: SingleRank(), options: .init(accumulation: 2))
        let rngBefore = step.loss.rng
        let (loss, stop) = step.computeGradients(loadBatch: Self.load(step))
        #expect(!stop)
        let together = step.model.gradients.toArray()
        // By hand: the same draws, one micro-batch at a time, each gradient taken alone.
        let model = step.model, single = DiffusionLoss(model: model, schedule: NoiseSchedule(.linear), seed: 5, batch: 2)
        single.rng = rngBefore
        var sum = [Float](repeating: 0, count: together.count), losses = 0.0
        for micro in 0..<2 {
            model.zeroGradients()
            let x = Array(Self.images[(micro * 512)..<((micro + 1) * 512)])
            losses += Double(single.computeGradients(images: x))
            for i in sum.indices { sum[i] += model.gradients[i] }
        }
        #expect(abs(loss - losses / 2) <= 1e-12 * abs(loss), "loss \(loss) vs \(losses / 2)")
        #expect(maxAbsoluteError(together, sum) <= 1e-6 * (sum.map(abs).max() ?? 1))
        #expect(step.gradientScale == 0.5)
    }

    @Test func aNonFiniteBatchSkipsTheUpdateAndRollsBackBatchNormStatistics() {
        let step = TrainingStep(model: Self.tinyUNet(), schedule: NoiseSchedule(.linear), seed: 5, rank: 0, batch: 2, ranks: SingleRank(),
                                options: .init(emaRate: 0.9))
        let parameters = step.model.parameters.toArray(), buffers = step.model.buffers.toArray()
        let result = step.run(learningRate: 1e-3, loadBatch: { micro in Self.load(step)(micro); step.images[3] = .nan })
        #expect(!result.applied && !result.loss.isFinite)
        #expect(step.model.parameters.toArray() == parameters, "weights untouched")
        #expect(step.model.buffers.toArray() == buffers, "running statistics rolled back")
        #expect(step.ema!.toArray() == parameters, "EMA untouched")
        #expect(step.optimizer.step == 0)
    }

    @Test func clippingScalesTheUpdateToTheClippedNorm() {
        func run(clip: Double) -> (TrainingStep, TrainingStep.Result) {
            let step = TrainingStep(model: Self.tinyUNet(), schedule: NoiseSchedule(.linear), seed: 5, rank: 0, batch: 2, ranks: SingleRank(),
                                    options: .init(gradientClip: clip))
            return (step, step.run(learningRate: 1e-3, loadBatch: Self.load(step)))
        }
        let (free, unclipped) = run(clip: 0)
        let clip = unclipped.gradientNorm / 4
        let (clipped, result) = run(clip: clip)
        #expect(result.applied && abs(result.gradientNorm - unclipped.gradientNorm) <= 1e-9 * unclipped.gradientNorm,
                "the reported norm is the one before clipping")
        // Adam's first moment after one step is (1 − β1)·g·scale: the clipped one is a quarter of the free one.
        let m1 = clipped.optimizer.firstMoment.toArray(), m0 = free.optimizer.firstMoment.toArray()
        let ratio = l2Norm(m1, count: m1.count) / l2Norm(m0, count: m0.count)
        #expect(abs(ratio - 0.25) < 1e-5, "moment ratio \(ratio)")
    }

    @Test func emaFollowsTheWeightsAtItsRate() {
        let step = TrainingStep(model: Self.tinyUNet(), schedule: NoiseSchedule(.linear), seed: 5, rank: 0, batch: 2, ranks: SingleRank(),
                                options: .init(emaRate: 0.75))
        let before = step.model.parameters.toArray()
        #expect(step.ema!.toArray() == before, "the EMA starts at the initial weights")
        _ = step.run(learningRate: 1e-2, loadBatch: Self.load(step))
        let after = step.model.parameters.toArray(), ema = step.ema!.toArray()
        let expected = zip(before, after).map { $0 + 0.25 * ($1 - $0) }
        #expect(after != before)
        #expect(maxAbsoluteError(ema, expected) < 1e-7)
    }

    @Test func theStepPassesTheLoadedLabelsToTheModel() {
        let step = TrainingStep(model: Self.tinyUNet(), schedule: NoiseSchedule(.linear), seed: 5, rank: 0, batch: 2, ranks: SingleRank())
        #expect(step.labels[0] == Conditioning.noLabel && step.labels[1] == Conditioning.noLabel, "unlabelled until loaded")
        // The shard (IO, below Models) marks unlabelled samples with its own constant: the two must agree.
        #expect(ImageShard.noLabel == Conditioning.noLabel)
        _ = step.run(learningRate: 1e-3, loadBatch: { micro in Self.load(step)(micro); step.labels[0] = 3; step.labels[1] = 7 })
        #expect(step.loss.conditioning.labels[0] == 3 && step.loss.conditioning.labels[1] == 7)
        // …and the step's timesteps reach the model's continuous time as t/T.
        let c = step.loss.conditioning
        #expect(c.continuous[0] == Float(c.timesteps[0]) / 1000 && c.continuous[1] == Float(c.timesteps[1]) / 1000)
    }
}

/// One registry of models: every entry builds, names are unique, validation speaks the users' words.
@Suite struct ModelRegistryTests {
    @Test func everyArchitectureBuildsAtItsReferenceShapeUnderItsOwnName() {
        #expect(Set(ModelArchitecture.all.map(\.name)).count == ModelArchitecture.all.count)
        for a in ModelArchitecture.all {
            #expect(a.validate(a.referenceSampleShape) == nil, "\(a.name)")
            #expect(ModelArchitecture.named(a.name) == a)
            guard a != .cnnLarge else { continue }   // 214 MB of parameters; its count is checked in ModelTests
            let model = a.buildAtReferenceShape(batchCapacity: 1)
            #expect(model.sampleShape == a.referenceSampleShape && model.parameterTable.totalCount > 0, "\(a.name)")
        }
        #expect(ModelArchitecture.named("cnn-huge") == nil)
    }

    @Test func theTinyUNetIsTheSeedsUNetAtBase4Depth2() {
        let tiny = ModelArchitecture.cnnTiny.build([1, 16, 16], 1)
        #expect(tiny.parameterTable.totalCount == 19_593)
        #expect(tiny.parameterTable.totalCount == ModelTests.expectedUNetParameters(.init(baseChannels: 4, depth: 2, inChannels: 1)))
        #expect(ModelArchitecture.cnnTiny.className == "CNNDenoiserTiny")
    }

    @Test func validationNamesWhatIsWrong() {
        #expect(ModelArchitecture.cnn.validate([1, 6, 6]) == "images of 6×6 cannot pass 2 poolings of 2 in cnn: height and width must be divisible by 4 (prepare with --pad)")
        #expect(ModelArchitecture.cnnLarge.validate([3, 12, 12])?.contains("divisible by 8") == true)
        #expect(ModelArchitecture.cnn.validate([2]) == "cnn needs images [N, C, H, W]; /images is [N, 2]")
        #expect(ModelArchitecture.mlp.validate([1, 8, 8]) == "the mlp model trains on points [N, D]; /images is [1, 8, 8]")
    }
}
