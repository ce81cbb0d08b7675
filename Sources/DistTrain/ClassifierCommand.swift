import ArgumentParser
import Foundation
import Models
import Tensor

struct ClassifierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classifier",
        abstract: "Train a small CNN classifier on a labelled dataset, data-parallel like train; write it as a feature network for evaluate.",
        discussion: """
            The network: stages of 3×3 convolutions with BatchNorm and ReLU, a 2×2 max-pool after each stage, \
            global average pooling, fc1 (--hidden units, ReLU: the features) and fc2 (one logit per class; \
            classes = largest label + 1). Trained with softmax cross-entropy and the training step of train \
            (Adam, learning rate decaying linearly to 0; gradients averaged over the ranks). A held-out set \
            measures its accuracy: --heldout-data, else the file prepare --heldout wrote beside --data, else \
            the rows prepare --heldout F --seed S would have held out of --data (F = --heldout-fraction, \
            S = --seed). Rank 0 writes --out: weights, BatchNorm statistics, held-out accuracy, the data's identity.
            Example: mpirun -np 2 disttrain classifier --data data/fashion-mnist-32.h5 --out data/fashion-mnist-classifier.h5
            """)

    @Option(help: "Labelled HDF5 dataset (/images [N, C, H, W], /labels [N]). Default: data/fashion-mnist-32.h5, built from Debian's dataset-fashion-mnist on first use.")
    var data: String?
    @Option(help: "The feature network file to write.")
    var out: String
    @Option(parsing: .unconditional, help: "Optimizer steps (default: --epochs over the training images).")
    var steps: Int?
    @Option(parsing: .unconditional, help: "Epochs over the training images (default 3; not with --steps).")
    var epochs: Int?
    @Option(parsing: .unconditional, help: "Images per rank per step. Default: 128 split over the ranks.")
    var batchSize: Int?
    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Adam learning rate at step 0; it decays linearly to 0 over the run.")
    var learningRate: Double = 2e-3
    @Option(parsing: .unconditional, help: "Fraction of --data held out to measure accuracy, in (0, 1) (when there is no --heldout-data and no held-out file beside --data).")
    var heldoutFraction: Double?
    @Option(help: "Labelled HDF5 dataset to measure accuracy on instead (e.g. Fashion-MNIST's t10k set); all of --data is then trained on.")
    var heldoutData: String?
    @Option(help: "Seed of the initialisation, data order, flips and held-out split.")
    var seed: UInt64 = 0
    @Option(help: ArgumentHelp("Convolution widths by stage, stages separated by '/'.", valueName: "widths"))
    var stages: String = ClassifierConfiguration.stagesText(ClassifierConfiguration.defaultStages)
    @Option(parsing: .unconditional, help: "Units of the hidden layer fc1: the feature dimension.")
    var hidden: Int = ClassifierConfiguration.defaultHidden
    @Flag(help: "Flip each training image horizontally with probability 1/2 (on Fashion-MNIST it cost 0.5 % of held-out accuracy at 3 epochs).")
    var flip = false
    @Option(help: "Convolution algorithm per layer: auto, im2col, winograd, winograd-f2, winograd-f4 (as train).")
    var convAlgorithm: ConvolutionChoice = .auto
    @Option(parsing: .unconditional, help: "Log every N steps.")
    var logEvery: Int = 50
    @Option(parsing: .unconditional, help: "Measure held-out accuracy every N steps as well as at the end (0: only at the end).")
    var evalEvery: Int = 0
    @Option(parsing: .unconditional, help: "Threads per rank for OpenBLAS and the kernels.")
    var threads: Int = 1
    @Option(parsing: .unconditional, help: "Seconds a blocking collective may take before the job is ended, naming it (0: never).")
    var collectiveTimeout: Double = 900

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        if steps != nil && epochs != nil { throw ValidationError("--steps and --epochs both set the length of the run: give one of them") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--lr must be positive, got \(learningRate)") }
        if let heldoutFraction {
            guard heldoutFraction > 0, heldoutFraction < 1 else { throw ValidationError("--heldout-fraction must be in (0, 1), got \(heldoutFraction)") }
            guard heldoutData == nil else { throw ValidationError("--heldout-fraction and --heldout-data both choose the held-out images: give one of them") }
        }
        guard ClassifierConfiguration.parseStages(stages) != nil else {
            throw ValidationError("--stages must be positive widths, ',' within a stage and '/' between stages (e.g. 32/64,64/128,128), got '\(stages)'")
        }
        guard hidden >= 1 else { throw ValidationError("--hidden must be at least 1, got \(hidden)") }
        guard !out.isEmpty else { throw ValidationError("--out must not be empty") }
        guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1, got \(logEvery)") }
        guard evalEvery >= 0 else { throw ValidationError("--eval-every must not be negative, got \(evalEvery)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard collectiveTimeout >= 0 else { throw ValidationError("--collective-timeout must not be negative, got \(collectiveTimeout)") }
    }

    func run() throws {
        let world = Communicator.world
        defer { Communicator.finalizeIfStarted() }
        do {
            BLAS.threads = threads
            kernelThreads = threads
            let path = try data ?? DefaultDataset.ensure(communicator: world)
            let settings = ClassifierRun.Settings(
                data: path, out: out, steps: steps, epochs: epochs ?? 3, batchSize: batchSize, learningRate: learningRate,
                heldoutFraction: heldoutFraction, heldoutData: heldoutData, seed: seed,
                stages: ClassifierConfiguration.parseStages(stages)!, hidden: hidden, flip: flip, convolutions: convAlgorithm,
                logEvery: logEvery, evalEvery: evalEvery, threads: threads, collectiveTimeout: collectiveTimeout)
            try ClassifierRun(settings, communicator: world).run()
        } catch {
            failAllRanks(error, communicator: world)
        }
    }
}
