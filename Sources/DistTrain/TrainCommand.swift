import ArgumentParser
import Foundation
import Models
import Tensor

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a denoiser data-parallel over the MPI ranks (the default command).",
        discussion: """
            Start with `mpirun -np N disttrain train …` (or `disttrain` alone for one rank). Every rank reads \
            its own contiguous shard of the HDF5 dataset; gradients are averaged with MPI; rank 0 writes \
            checkpoints, samples and metrics under --out.
            """)

    @Option(help: "HDF5 dataset with /images [N, C, H, W] (uint8 or float32 in [−1, 1]). Default: data/fashion-mnist-32.h5, built from Debian's dataset-fashion-mnist on first use; with --resume, the checkpoint's data (given with --resume, it must be the data the checkpoint was trained on, see --allow-other-data).")
    var data: String?
    @Option(help: ArgumentHelp("A seed's training recipe, setting the options of its table; options given beside it override its values. \(TrainingRecipe.help)"))
    var recipe: TrainingRecipe?
    @Option(help: ArgumentHelp("Model: \(ModelArchitecture.listing). Default: cnn-large; with --resume, the checkpoint's."))
    var model: ModelArchitecture?
    @OptionGroup(title: "Model size")
    var modelSize: ModelSizeOptions
    @Option(parsing: .unconditional, help: "Images per rank per step. Default: 128 split over the ranks (the reference run's global batch; a --recipe's own global batch with one).")
    var batchSize: Int?
    @Option(parsing: .unconditional, help: "Optimizer steps of the run.")
    var steps: Int?
    @Option(parsing: .unconditional, help: "Epochs of the run (used when --steps is not given). Default: 1, or a --recipe's length.")
    var epochs: Int?
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Adam's peak learning rate (at step 0 without warm-up); --lr-schedule says how it decays over the run. Default: 0.001.")
    var learningRate: Double?
    @Option(parsing: .unconditional, help: "Steps of linear learning-rate warm-up (multiplies the schedule).")
    var warmup: Int = TrainingConfiguration.defaults.warmupSteps
    @Option(name: .customLong("lr-schedule"), help: "Learning-rate decay over the run: linear (to 0, the reference run's; the default), cosine (to 0), constant.")
    var learningRateSchedule: LearningRateSchedule.Kind?
    @Option(help: "adam (PyTorch's Adam, the default) or adamw (decoupled weight decay in PyTorch's order: p ← p·(1 − lr·W), then the Adam step; on all weights).")
    var optimizer: TrainingConfiguration.OptimizerKind?
    @Option(parsing: .unconditional, help: "AdamW's decoupled weight decay W (needs --optimizer adamw; default with it: 0.01, PyTorch's).")
    var weightDecay: Double?
    @Option(parsing: .unconditional, help: "Adam's ε (default 1e-8, PyTorch's; Keras' is 1e-7). Added to √v̂ after the bias correction, as PyTorch does.")
    var adamEpsilon: Double?
    @Option(help: "The noise-prediction loss: mse (mean (ε̂ − ε)², the default) or mae (mean |ε̂ − ε|, the keras.io DDIM's).")
    var loss: DiffusionLoss.LossFunction?
    @Option(help: "Seed of the initialisation, data order, timesteps and noise.")
    var seed: UInt64 = TrainingConfiguration.defaults.seed
    @Option(name: .customLong("out"), help: "Output directory: checkpoints, samples, metrics.")
    var outputDirectory: String = TrainingConfiguration.defaults.outputDirectory
    @Option(parsing: .unconditional, help: "Write a checkpoint every N steps (and at the end).")
    var checkpointEvery: Int = TrainingConfiguration.defaults.checkpointEvery
    @Option(parsing: .unconditional, help: "Checkpoints to keep.")
    var keep: Int = TrainingConfiguration.defaults.keepCheckpoints
    @Option(parsing: .unconditional, help: "Write a sample grid every N steps (0: only at the end).")
    var sampleEvery: Int = TrainingConfiguration.defaults.sampleEvery
    @Option(parsing: .unconditional, help: "Samples per grid (0: none).")
    var sampleCount: Int = TrainingConfiguration.defaults.sampleCount
    @OptionGroup(title: "Sampling")
    var sampling: SamplerOptions
    @Option(parsing: .unconditional, help: "Class-conditional models: the probability with which each image is trained without its label (unconditionally), so that the same network can sample with classifier-free guidance (0.1 in the DeepLearning.AI course; 1 trains an unconditional model). Default 0 (--recipe course: 0.1).")
    var labelDropout: Double?
    @Option(parsing: .unconditional, help: "EMA decay of the weights, e.g. 0.9999 (0: off, the default). Samples use the EMA weights when on.")
    var emaRate: Double?
    @Flag(inversion: .prefixedNo, help: "With --ema-rate: the EMA also averages the BatchNorm running statistics (each rank its own, as the live ones), avg ← d·avg + (1 − d)·stats after every update; samples and evaluations use them with the EMA weights. Stored in the checkpoint (/ema_buffers).")
    var emaBuffers: Bool?
    @Flag(inversion: .prefixedNo, help: "Images: train on per-channel normalised images, (u − μ_c)/σ_c with u = x/255 on the [0, 1] scale and μ_c, σ_c² the training set's (computed once at the start over all ranks, exactly the same for any number of ranks, stored in the checkpoint's /data_normalization and read from it on --resume); samples are de-normalised, clip(μ_c + σ_c·x̂, 0, 1), and written like any other.")
    var normalizeData: Bool?
    @Flag(help: "Ramp the EMA decay up as diffusers' EMAModel (use_ema_warmup): min(--ema-rate, 1 − (1 + k)^(−2/3)) after update k + 1, so short runs get a useful average.")
    var emaWarmup = false
    @Option(parsing: .unconditional, help: "Clip the global gradient norm to this value (0: off).")
    var gradClip: Double = TrainingConfiguration.defaults.gradientClip
    @Option(parsing: .unconditional, help: "Micro-batches accumulated per optimizer step.")
    var accumulate: Int = TrainingConfiguration.defaults.accumulation
    @Option(help: "Noise schedule: linear (DDPM: β = linspace(1e-4, 0.02, T), t in 0…T−1; the default), cosine (improved DDPM, s = 0.008), course (DeepLearning.AI, seed 002: T+1 betas 1e-4 + (0.02−1e-4)·s/T for s = 0…T, ᾱ_0 = 1 the clean image, t in 1…T, models given t/T reaching 1), needle-linear (seed 003: the linear one rescaled by 1000/T, linspace(1e-4·1000/T, 0.02·1000/T, T), t in 0…T−1), continuous-cosine (seed 001, keras.io DDIM: t ~ U(0, 1), angle = acos(0.95) + t·(acos(0.02) − acos(0.95)), x_t = cos(angle)·x0 + sin(angle)·ε; the model's continuous input is the noise variance ν = sin²(angle), models reading an integer step get ⌊1000·t⌋; no timesteps, so no --timesteps and only --sampler ddim with η 0).")
    var schedule: NoiseSchedule.Kind?
    @Option(parsing: .unconditional, help: "Timesteps T of the noise schedule (2…10000; default 1000): training draws from them, DDPM sampling visits each; stored in the checkpoint, whose schedule sample, predict and evaluate rebuild. Seed 002's recipe: 500, seed 003's: 300. Not for continuous-cosine.")
    var timesteps: Int?
    @Flag(help: "Synchronise BatchNorm statistics over the ranks.")
    var syncBn = false
    @Option(parsing: .unconditional, help: "Gradient allreduce bucket size in MiB (smaller buckets start sooner during backward).")
    var bucketMb: Double = TrainingConfiguration.defaults.bucketMegabytes
    @Option(help: "Convolution algorithm per layer: auto (Winograd F(4×4) or F(2×2) where it is faster, im2col + sgemm elsewhere), im2col, winograd (every 3×3 stride-1 layer), winograd-f2, winograd-f4. The same function to rounding. Recorded in checkpoints; sample and predict use it too.")
    var convAlgorithm: ConvolutionChoice = .auto
    @Option(parsing: .unconditional, help: "Evaluate every N steps and at the end (0: never): FID, KID and class entropy of --eval-count samples (EMA weights when on), in metrics.jsonl/csv and the progress line.")
    var evalEvery: Int = TrainingConfiguration.defaults.evalEvery
    @Option(parsing: .unconditional, help: "Samples per evaluation, drawn by all ranks.")
    var evalCount: Int = TrainingConfiguration.defaults.evalCount
    @Option(help: "Feature network for the evaluations (`disttrain classifier` writes one; for unlabelled data, train it on another labelled set of the same image shape).")
    var evalFeatures: String?
    @Flag(help: "Allreduce all gradients after backward instead of overlapping it (for comparison).")
    var noOverlap = false
    @Option(parsing: .unconditional, help: "Log every N steps.")
    var logEvery: Int = TrainingConfiguration.defaults.logEvery
    @Option(parsing: .unconditional, help: "Threads per rank for OpenBLAS and the kernels.")
    var threads: Int = 1
    @Flag(help: "Continue from the latest checkpoint in --out (a fresh start, with a notice, when there is none).")
    var resume = false
    @Flag(help: "With --resume: fail instead of starting fresh when no usable checkpoint exists.")
    var requireCheckpoint = false
    @Flag(help: "With --resume and --data: continue on data other than the checkpoint's (another file, count or contents); the data order then restarts, every rank beginning a fresh epoch 0 of its new shard.")
    var allowOtherData = false
    @Option(parsing: .unconditional, help: "Seconds a blocking collective (allreduce, gather) may take before the job is ended, naming it (0: never).")
    var collectiveTimeout: Double = TrainingConfiguration.defaults.collectiveTimeout
    @Option(parsing: .unconditional, help: "Stop after this many consecutive steps with a non-finite loss or gradient (each is skipped).")
    var maxNonfiniteSteps: Int = TrainingConfiguration.defaults.maxNonfiniteSteps
    @Option(help: ArgumentHelp("Stop (with a checkpoint) after this step, as if interrupted; for tests.", visibility: .hidden))
    var haltAfter: Int?
    @Option(help: ArgumentHelp("Put a NaN into the last rank's batch at this step; for tests.", visibility: .hidden))
    var injectNanAt: Int?
    @Option(help: ArgumentHelp("Make the last rank hang at this step; for tests.", visibility: .hidden))
    var stallAt: Int?
    @Option(help: ArgumentHelp("PHASE:STEP — rank 0 kills itself there (step, sampling, checkpoint); for tests.", visibility: .hidden))
    var crashAt: String?
    @Option(help: ArgumentHelp("Milliseconds to wait after backward before collecting the gradient sums, so that the communication thread finishes first; for tests.", visibility: .hidden))
    var delayAllreduceWaitMs: UInt32 = 0
    @Option(help: ArgumentHelp("Make the last rank pass an invalid count to the loss allreduce at this step (a real MPI error); for tests.", visibility: .hidden))
    var mpiFaultAt: Int = 0

    func validate() throws {
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        if let learningRate { guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--lr must be positive, got \(learningRate)") } }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1, got \(checkpointEvery)") }
        guard keep >= 1 else { throw ValidationError("--keep must be at least 1, got \(keep)") }
        guard sampleEvery >= 0, sampleCount >= 0 else { throw ValidationError("--sample-every and --sample-count must not be negative") }
        if let emaRate { guard emaRate >= 0, emaRate < 1 else { throw ValidationError("--ema-rate must be in [0, 1), got \(emaRate)") } }
        guard evalEvery >= 0 else { throw ValidationError("--eval-every must not be negative, got \(evalEvery)") }
        guard evalCount >= 2 else { throw ValidationError("--eval-count must be at least 2 (a covariance of features), got \(evalCount)") }
        guard evalEvery == 0 || evalFeatures != nil else {
            throw ValidationError("--eval-every needs --eval-features F.h5: a feature network, from `disttrain classifier --data D.h5 --out F.h5` (for unlabelled data, one trained on another labelled set of the same image shape)")
        }
        let requested = requestedConfiguration(data: "", worldSize: 1)
        guard !emaWarmup || requested.emaRate > 0 else { throw ValidationError("--ema-warmup needs --ema-rate (the decay it ramps up to)") }
        if let problem = requested.combinationProblem { throw ValidationError(problem) }
        if let timesteps, requested.schedule.isContinuous {
            throw ValidationError("--timesteps \(timesteps): the \(requested.schedule.rawValue) schedule is continuous (t ~ U(0, 1)) and has no timesteps")
        }
        if let labelDropout, !(labelDropout >= 0 && labelDropout <= 1) { throw ValidationError("--label-dropout must be in [0, 1], got \(labelDropout)") }
        guard gradClip >= 0 else { throw ValidationError("--grad-clip must not be negative, got \(gradClip)") }
        if let timesteps, !TrainingConfiguration.timestepLimits.contains(timesteps) {
            let limits = TrainingConfiguration.timestepLimits
            throw ValidationError("--timesteps must be in \(limits.lowerBound)…\(limits.upperBound), got \(timesteps)")
        }
        guard accumulate >= 1 else { throw ValidationError("--accumulate must be at least 1, got \(accumulate)") }
        guard bucketMb > 0 else { throw ValidationError("--bucket-mb must be positive, got \(bucketMb)") }
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1, got \(logEvery)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard collectiveTimeout >= 0 else { throw ValidationError("--collective-timeout must not be negative, got \(collectiveTimeout)") }
        guard maxNonfiniteSteps >= 1 else { throw ValidationError("--max-nonfinite-steps must be at least 1, got \(maxNonfiniteSteps)") }
        guard !requireCheckpoint || resume else { throw ValidationError("--require-checkpoint only makes sense with --resume") }
        guard !allowOtherData || resume else { throw ValidationError("--allow-other-data only makes sense with --resume") }
    }

    /// The run the command line asks for: the defaults, then the --recipe's table, then every option
    /// given explicitly. The batch 0 stands for "the reference's global batch of 128 split over the ranks"
    /// (a recipe's own global batch likewise); a resumed run takes its batch from the checkpoint instead
    /// (TrainingRun decides).
    func requestedConfiguration(data path: String, worldSize: Int) -> TrainingConfiguration {
        let base = recipe?.apply(to: .defaults, model: model) ?? .defaults
        let batch = batchSize ?? recipe.map { $0.globalBatch / worldSize } ?? 0
        let chosenOptimizer = optimizer ?? base.optimizer
        // Without --weight-decay: the recipe's, or with an explicit --optimizer that differs from it, that
        // optimizer's own default (AdamW 0.01 as PyTorch's; Adam none).
        let decay = weightDecay ?? (chosenOptimizer == base.optimizer ? base.weightDecay : chosenOptimizer == .adamw ? 0.01 : 0)
        return TrainingConfiguration(
            data: path, model: model ?? base.model, modelOptions: modelSize.options.given.isEmpty ? base.modelOptions : modelSize.options, batchSize: batch, steps: steps ?? 0,
            learningRate: learningRate ?? base.learningRate,
            warmupSteps: warmup, learningRateSchedule: learningRateSchedule ?? base.learningRateSchedule, seed: seed, outputDirectory: outputDirectory,
            checkpointEvery: checkpointEvery, keepCheckpoints: keep, sampleEvery: sampleEvery, sampleCount: sampleCount, sampler: sampling.sampler ?? base.sampler,
            samplerSteps: sampling.samplerSteps, eta: sampling.eta,
            ddpmVariance: sampling.ddpmVariance ?? base.ddpmVariance, guidance: sampling.guidance, labelDropout: labelDropout ?? base.labelDropout,
            emaRate: emaRate ?? base.emaRate, emaWarmup: emaWarmup, emaBuffers: emaBuffers ?? base.emaBuffers,
            loss: loss ?? base.loss, optimizer: chosenOptimizer, weightDecay: decay, adamEpsilon: adamEpsilon ?? base.adamEpsilon,
            normalizeData: normalizeData ?? base.normalizeData, gradientClip: gradClip, accumulation: accumulate,
            schedule: schedule ?? base.schedule, timesteps: timesteps ?? base.timesteps, syncBatchNorm: syncBn, bucketMegabytes: bucketMb,
            overlap: !noOverlap, logEvery: logEvery, worldSize: worldSize, collectiveTimeout: collectiveTimeout,
            maxNonfiniteSteps: maxNonfiniteSteps, convolutions: convAlgorithm,
            evalEvery: evalEvery, evalCount: evalCount, evalFeatures: evalFeatures.map(DatasetIdentity.absolute) ?? "")
    }

    func run() throws {
        let world = Communicator.world
        defer { Communicator.finalizeIfStarted() }
        do {
            BLAS.threads = threads
            kernelThreads = threads
            // With --resume and a checkpoint, no --data means the checkpoint's data (TrainingRun decides).
            let resumable = resume && !Checkpoint.all(in: outputDirectory).isEmpty
            let path = try data ?? (resumable ? DefaultDataset.path : DefaultDataset.ensure(communicator: world))
            if let recipe, batchSize == nil, recipe.globalBatch % world.size != 0 {
                throw RunFailure("--recipe \(recipe.rawValue): its global batch of \(recipe.globalBatch) does not split over \(world.size) ranks: pass --batch-size")
            }
            let configuration = requestedConfiguration(data: path, worldSize: world.size)
            StopRequest.install()
            CrashPoint.configure(crashAt, isRoot: world.isRoot)
            world.invalidAllreduceAtStep = mpiFaultAt
            let run = try TrainingRun(configuration, epochs: epochs ?? recipe?.epochs ?? 1, communicator: world,
                                      resume: ResumeRequest(enabled: resume, requireCheckpoint: requireCheckpoint, explicitData: data != nil,
                                                            explicitModel: model != nil,
                                                            explicitModelOptions: !modelSize.options.given.isEmpty, allowOtherData: allowOtherData))
            run.allreducer.delayBeforeWaitMicroseconds = delayAllreduceWaitMs * 1000
            if try run.train(haltAfter: haltAfter, injectNaNAt: injectNanAt, stallAt: stallAt) == .stoppedBySignal {
                Communicator.finalizeIfStarted()
                Foundation.exit(StopRequest.exitStatus)
            }
        } catch {
            failAllRanks(error, communicator: world)
        }
    }
}

/// A failure of the run that the user can act on; its text names the file, option or rank.
struct RunFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// This rank's part of a failure another rank reports (it prints nothing itself).
struct QuietFailure: Error {}

/// Prints the error and ends the job: alone with exit status 1, or with MPI_Abort so that no other
/// rank waits forever in a collective.
func failAllRanks(_ error: Error, communicator: Communicator) -> Never {
    if error is QuietFailure {
        // why: wait for the reporting rank's abort, so its message is the one the user sees.
        sleep(5)
        Communicator.finalizeIfStarted()
        exit(1)
    }
    let prefix = communicator.size > 1 ? "disttrain: rank \(communicator.rank): error: " : "disttrain: error: "
    FileHandle.standardError.write(Data((prefix + "\(error)\n").utf8))
    if communicator.size > 1 { communicator.abort(code: 1) }
    Communicator.finalizeIfStarted()
    exit(1)
}
