import Foundation
import IO
import Models
import Tensor

/// One training run on this rank: the model, its optimizer, its shard of the data, and the loop.
/// Every rank runs the same sequence of collectives in the same order; only rank 0 writes files.
final class TrainingRun {
    let configuration: TrainingConfiguration
    let communicator: Communicator
    let architecture: ModelArchitecture
    let model: Denoiser
    /// The optimizer step (noise, forward, backward, gradient sum, Adam, EMA) this run repeats.
    let trainer: TrainingStep
    let ranks: MPIRankGroup
    let shard: ImageShard
    let allreducer: GradientAllreducer
    /// EMA of the parameters (the step's), and a place to park the live weights while sampling with it;
    /// likewise for the BatchNorm running statistics with --ema-buffers.
    let ema, parked: FloatBuffer?
    let emaBuffers, parkedBuffers: FloatBuffer?
    /// With --normalize-data: the training set's per-channel statistics (computed at the start, or the checkpoint's).
    let normalization: DataNormalization?
    let sampler: DiffusionSampler
    let watchdog: CollectiveWatchdog
    /// The data this run trains on, as its checkpoints record them.
    let dataIdentity: DatasetIdentity
    /// On rank 0: every rank's BatchNorm running statistics [W, n], and their average (and of their EMA).
    let rankBuffers, averagedBuffers: FloatBuffer?
    let rankEMABuffers, averagedEMABuffers: FloatBuffer?
    private(set) var step = 0
    /// Rank 0's lock on the output directory, held until the process ends (nil on the other ranks).
    let directoryLock: RunDirectoryLock?
    private let log: MetricsLog?
    private let progress: ProgressReporter
    /// On rank 0 of a run that evaluates (--eval-every): the feature network and its reference.
    private let evaluator: ImageEvaluator?

    init(_ requested: TrainingConfiguration, epochs: Int, communicator: Communicator, resume: ResumeRequest) throws {
        self.communicator = communicator
        // why first: another run may be writing here; nothing may be read as ours or removed before it is.
        let earlyLock = try RunDirectoryLock.lockExisting(in: requested.outputDirectory, communicator: communicator)
        // Resume: the newest checkpoint with sound metadata says which model, data and settings to continue.
        let candidates = try Self.checkpointsToResume(in: requested.outputDirectory, resume: resume, communicator: communicator)
        var c = try candidates.first.map { try Self.resumedConfiguration(from: $0, requested: requested, resume: resume, communicator: communicator) } ?? requested
        // why: `train` skips building the default dataset when --out holds checkpoints; none was usable.
        if candidates.isEmpty && resume.enabled && !resume.explicitData { c.data = try DefaultDataset.ensure(communicator: communicator) }
        architecture = c.model
        let info = try DatasetInfo.inspect(c.data)
        if let problem = architecture.validate(info.sampleShape, options: c.modelOptions) { throw RunFailure("\(c.data): \(problem)") }
        if let problem = architecture.validate(timesteps: c.noiseSchedule.timestepRange) { throw RunFailure("--schedule \(c.schedule.rawValue) --timesteps \(c.timesteps): \(problem)") }
        let perRank = info.count / communicator.size

        for candidate in candidates {
            do { try candidate.requireMatch(model: architecture, sampleShape: info.sampleShape, options: c.modelOptions) } catch { throw RunFailure("cannot --resume: \(error)") }
        }
        dataIdentity = try DatasetIdentity(info)
        // Refused here, before anything is built or written, when the newest checkpoint was trained on other data.
        if let newest = candidates.first { _ = try Self.dataContinuity(of: newest, given: dataIdentity, resume: resume) }
        if c.batchSize == 0 {
            guard 128 % communicator.size == 0 else {
                throw RunFailure("the default global batch of 128 does not split over \(communicator.size) ranks: pass --batch-size")
            }
            c.batchSize = 128 / communicator.size
        }
        guard perRank >= c.batchSize else {
            throw RunFailure("\(c.data): \(info.count) images give each of \(communicator.size) ranks \(perRank), fewer than the batch of \(c.batchSize) per rank")
        }
        if c.steps == 0 { c.steps = max(1, perRank / (c.batchSize * c.accumulation) * epochs) }
        configuration = c

        // why 2 with guidance: guided sampling runs each batch twice through the model.
        model = architecture.build(info.sampleShape, max(c.batchSize, min(c.sampleCount, 64), c.guidance == nil ? 1 : 2),
                                   options: c.modelOptions, convolutions: c.convolutions)
        if c.normalizeData && info.sampleShape.count != 3 {
            throw RunFailure("--normalize-data: \(c.data) holds points of shape [\(info.sampleShape.map(String.init).joined(separator: ", "))], not images [C, H, W]; the normalisation is per image channel")
        }
        if model.classCount == 0 && (c.guidance != nil || c.labelDropout > 0) {
            throw RunFailure("\(c.guidance != nil ? "--guidance" : "--label-dropout"): \(architecture.name) is not class-conditional (context-unet is)")
        }
        model.initialize(seed: c.seed)
        // Every rank must have its shard before anything is written: agree on it in one allreduce, so a
        // failure on one rank leaves no output behind (the failing rank reports the cause).
        var loaded: ImageShard?, loadError: Error?
        do {
            loaded = try ImageShard(info, rank: communicator.rank, worldSize: communicator.size, seed: c.seed)
            try Self.checkLabels(of: loaded!, classCount: model.classCount, architecture: architecture)
        } catch { loadError = error }
        let failures = communicator.allreduceSum(loadError == nil ? 0 : 1)
        if let loadError { throw loadError }
        guard failures == 0, let loaded else { throw QuietFailure() }
        shard = loaded
        allreducer = GradientAllreducer(communicator: communicator, table: model.parameterTable, gradients: model.gradients,
                                        bucketBytes: Int(c.bucketMegabytes * 1_048_576), overlap: c.overlap)
        watchdog = CollectiveWatchdog(timeout: c.collectiveTimeout, rank: communicator.rank) { [communicator] message in
            FileHandle.standardError.write(Data(("disttrain: " + message + "\n").utf8))
            communicator.abort(code: 1)
        }
        ranks = MPIRankGroup(communicator: communicator, allreducer: allreducer, watchdog: watchdog)
        trainer = TrainingStep(model: model, schedule: c.noiseSchedule, seed: c.seed, rank: communicator.rank,
                               batch: c.batchSize, ranks: ranks,
                               options: .init(accumulation: c.accumulation, gradientClip: c.gradientClip, emaRate: c.emaRate, emaWarmup: c.emaWarmup,
                                              emaBuffers: c.emaBuffers, weightDecay: c.optimizer == .adamw ? c.weightDecay : 0,
                                              adamEpsilon: c.adamEpsilon))
        trainer.loss.labelDropout = c.labelDropout
        trainer.loss.lossFunction = c.loss
        ema = trainer.ema
        parked = c.emaRate > 0 ? FloatBuffer(count: model.parameters.count) : nil
        emaBuffers = trainer.emaBuffers
        parkedBuffers = emaBuffers.map { FloatBuffer(count: $0.count) }
        if c.syncBatchNorm { model.reduceStatistics = { [communicator] in communicator.allreduceSum($0, count: $1) } }
        rankBuffers = communicator.isRoot ? FloatBuffer(count: model.buffers.count * communicator.size) : nil
        averagedBuffers = communicator.isRoot ? FloatBuffer(count: model.buffers.count) : nil
        rankEMABuffers = communicator.isRoot && emaBuffers != nil ? FloatBuffer(count: model.buffers.count * communicator.size) : nil
        averagedEMABuffers = communicator.isRoot && emaBuffers != nil ? FloatBuffer(count: model.buffers.count) : nil
        var resumedNormalization: DataNormalization?
        // A checkpoint whose arrays fail their checksums (or that cannot be read) is reported and the
        // next older one is tried; all ranks read the same files, so they all make the same choice.
        for file in candidates {
            do {
                // On another number of ranks, new shards and streams (see README, "Resuming").
                let sameRanks = file.metadata.configuration.worldSize == communicator.size
                let state = try file.load(into: model, optimizer: trainer.optimizer, ema: ema, emaBuffers: emaBuffers, rank: sameRanks ? communicator.rank : nil)
                if c.normalizeData {
                    guard let stored = try file.dataNormalization() else { throw IOError(path: file.path, "the run normalises its data (--normalize-data) but /data_normalization is missing") }
                    resumedNormalization = stored
                }
                let continuity = try Self.dataContinuity(of: file, given: dataIdentity, resume: resume)
                step = state.step
                let r = communicator.rank
                var restartData = false
                switch continuity {
                case .same: break
                case .unrecorded:
                    if communicator.isRoot { note("\(file.path) does not record its data (format version 1): \(c.data) is not checked against it") }
                case .other(let what):
                    restartData = true
                    if communicator.isRoot { note("--allow-other-data: \(what); the data order restarts: every rank begins a fresh epoch 0 of its new shard") }
                }
                if sameRanks {
                    let own = state.ranks[r]
                    trainer.loss.rng = own.rng
                    shard.seek(epoch: restartData ? 0 : own.epoch, cursor: restartData ? 0 : own.cursor)
                } else {
                    // Start a fresh epoch after the newest one any rank reached, and draw noise past every
                    // number the old ranks used.
                    trainer.loss.rng = Philox(seed: c.seed, stream: RandomStream.training(rank: r), counter: state.ranks.map(\.rng.counter).max() ?? 0)
                    shard.seek(epoch: restartData ? 0 : (state.ranks.map(\.epoch).max() ?? 0) + 1, cursor: 0)
                }
                if communicator.isRoot { note("resumed from \(file.path) at step \(step)") }
                break
            } catch let refusal as RunFailure {
                throw refusal
            } catch {
                if communicator.isRoot { note("cannot resume from \(file.path) (\(error)); trying an older checkpoint") }
                model.initialize(seed: c.seed)
                trainer.optimizer.reset()
                ema?.copy(from: model.parameters)
                emaBuffers?.copy(from: model.buffers)
                resumedNormalization = nil
                if file === candidates.last, communicator.isRoot { note("no readable checkpoint; starting fresh") }
            }
        }
        if step == 0 && resume.requireCheckpoint && !candidates.isEmpty {
            throw RunFailure("--require-checkpoint: no readable checkpoint in \(c.outputDirectory)")
        }
        if !candidates.isEmpty {
            // why: every rank chose from the same files, but a read that fails on one rank only would
            // leave the ranks at different steps, running different numbers of collectives.
            let lowest = -communicator.allreduceMax(-Double(step)), highest = communicator.allreduceMax(Double(step))
            guard lowest == highest else {
                throw RunFailure("the ranks resumed from different checkpoints (steps \(Int(lowest)) to \(Int(highest))): a checkpoint in \(c.outputDirectory) could be read on some ranks and not on others")
            }
        }
        // The statistics of a resumed run are the checkpoint's, never recomputed (the data may have moved on).
        normalization = c.normalizeData ? resumedNormalization ?? Self.channelStatistics(of: shard, communicator: communicator) : nil
        if let normalization {
            let shape = info.sampleShape
            normalization.normalize(shard.samples.pointer, count: shard.count, channels: shape[0], pixels: shape[1] * shape[2])
            if communicator.isRoot && step == 0 {
                let figures = zip(normalization.mean, normalization.standardDeviation).map { String(format: "%.4f ± %.4f", $0, $1) }
                note("--normalize-data: per-channel μ ± σ of the training set on its [0, 1] scale: \(figures.joined(separator: ", "))")
            }
        }
        sampler = DiffusionSampler(model: model, schedule: trainer.loss.schedule, guidance: c.guidance, normalization: normalization)
        // The feature network is checked (on rank 0: it alone evaluates) before anything is written.
        evaluator = communicator.isRoot && c.evalEvery > 0
            ? try ImageEvaluator(featuresPath: c.evalFeatures, referencePath: nil, referenceCount: 10000, log: note) : nil
        if let evaluator, evaluator.network.network.inputShape != info.sampleShape {
            throw RunFailure("--eval-features \(c.evalFeatures) takes [\(evaluator.network.network.inputShape.map(String.init).joined(separator: ", "))] images; \(c.data) holds [\(info.sampleShape.map(String.init).joined(separator: ", "))]")
        }
        // Only now, with the data, model and checkpoint checked, does the run leave anything on disk.
        if communicator.isRoot { try makeDirectories(c.outputDirectory + "/samples") }
        directoryLock = try RunDirectoryLock.lockForWriting(in: c.outputDirectory, holding: earlyLock, communicator: communicator)
        communicator.barrier()
        let columns = MetricsRecord.columns + (c.evalEvery > 0 ? MetricsRecord.evaluationColumns : [])
        log = communicator.isRoot ? try MetricsLog(directory: c.outputDirectory, columns: columns) : nil
        progress = ProgressReporter(totalSteps: c.steps, logEvery: c.logEvery, enabled: communicator.isRoot)
        if communicator.isRoot && step == 0 {
            note("training \(architecture.className) (\(model.parameterTable.totalCount.formatted()) parameters) on \(info.count) samples of \(info.sampleShape) from \(c.data): \(communicator.size) rank(s) × batch \(c.batchSize) × \(c.accumulation) accumulation = \(c.globalBatch) per step, \(c.steps) steps")
            if !model.convolutionPlan.isEmpty { note("convolutions (--conv-algorithm \(c.convolutions.rawValue)): \(model.convolutionPlan.summary)") }
            if let blas = BLAS.coreSelectionNote { note(blas) }
        }
        if communicator.isRoot && communicator.size > 1 { note(allreducer.summary) }
    }

    /// The main loop: batch → forward/backward (allreduce overlapped) → update → log → checkpoint/sample.
    /// How a run ended.
    enum Outcome { case finished, halted, stoppedBySignal }

    /// The main loop: batch → forward/backward (allreduce overlapped) → update → log → checkpoint/sample.
    func train(haltAfter: Int? = nil, injectNaNAt: Int? = nil, stallAt: Int? = nil) throws -> Outcome {
        let c = configuration
        var nonfiniteInARow = 0
        while step < c.steps {
            if let haltAfter, step >= haltAfter {
                if step % c.checkpointEvery != 0 { try writeCheckpoint() }
                progress.finish()
                return .halted
            }
            if stallAt == step + 1 && communicator.rank == communicator.size - 1 {
                while true { sleep(60) }   // a hung rank, for the watchdog's test
            }
            communicator.step = step + 1   // named in MPI error messages
            let started = DispatchTime.now().uptimeNanoseconds
            let learningRate = c.learningRate(at: step)
            let result = optimizerStep(learningRate: learningRate, poison: injectNaNAt == step + 1)
            step += 1
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            var record = MetricsRecord(step: step, epoch: shard.epoch, loss: result.loss, learningRate: Double(learningRate),
                                       gradientNorm: result.gradientNorm, imagesPerSecond: Double(c.globalBatch) / seconds,
                                       stepSeconds: seconds, allreduceWaitSeconds: allreducer.exposedSeconds,
                                       skipped: result.applied ? 0 : 1)
            if c.evalEvery > 0 && !result.stop && (step % c.evalEvery == 0 || step == c.steps) { record.evaluation = try evaluate() }
            if let log { log.append(record.values + (c.evalEvery > 0 ? record.evaluationValues : [])) }
            progress.report(record)
            nonfiniteInARow = result.applied ? 0 : nonfiniteInARow + 1
            if nonfiniteInARow >= c.maxNonfiniteSteps {
                progress.finish()
                throw RunFailure("\(nonfiniteInARow) steps in a row (the last at step \(step)) had a non-finite loss or gradient; their updates were skipped and the weights are untouched. Stopping: lower --lr, clip gradients (--grad-clip) or check the data. The last checkpoint in \(c.outputDirectory) is intact.")
            }
            if result.stop {
                // Every rank saw the same flag in the same allreduce: all checkpoint and leave together.
                try writeCheckpoint()
                progress.message("stopping on \(StopRequest.signalName) after step \(step) with a checkpoint; resume with --resume")
                progress.finish()
                return .stoppedBySignal
            }
            if step % c.checkpointEvery == 0 || step == c.steps { try writeCheckpoint() }
            if c.sampleCount > 0 && ((c.sampleEvery > 0 && step % c.sampleEvery == 0) || step == c.steps) {
                try writeSamples()
            }
        }
        progress.finish()
        return .finished
    }

    /// One step of `trainer` on this rank's next micro-batches, with the test hooks (a NaN in the last
    /// rank's batch, a crash point before the gradient sum). The ranks' stop requests ride on the step's
    /// scalar allreduce, so every rank learns of a signal at the same step.
    private func optimizerStep(learningRate: Float, poison: Bool) -> TrainingStep.Result {
        trainer.run(learningRate: learningRate, stopRequested: StopRequest.requested, loadBatch: { _ in
            shard.nextBatch(configuration.batchSize, into: trainer.images.pointer, labels: trainer.labels)
            if poison && communicator.rank == communicator.size - 1 { trainer.images[0] = .nan }
        }, beforeGradientSum: { CrashPoint.check("step", step: step + 1) })
    }

    /// Rank 0 writes; every rank contributes its RNG state and data position, and BatchNorm running
    /// statistics are first averaged over the ranks so the checkpoint holds one set.
    private func writeCheckpoint() throws {
        // Every rank's BatchNorm running statistics go to rank 0: their average is the model's (as
        // /model/…), and each rank's own row lets a resumed run continue exactly. Nothing here changes
        // the live state, so writing a checkpoint never alters the run.
        let count = model.buffers.count
        watchdog.guarding("gathering BatchNorm statistics for the checkpoint", step: step) {
            communicator.gather(model.buffers.pointer, count: count, into: rankBuffers?.pointer)
        }
        if let emaBuffers {
            watchdog.guarding("gathering the EMA of the BatchNorm statistics for the checkpoint", step: step) {
                communicator.gather(emaBuffers.pointer, count: count, into: rankEMABuffers?.pointer)
            }
        }
        let mine = RankState(rng: trainer.loss.rng, epoch: shard.epoch, cursor: shard.cursor)
        let packed = watchdog.guarding("gathering RNG states and data positions for the checkpoint", step: step) {
            communicator.gather(mine.packed)
        }
        guard communicator.isRoot, let rankBuffers, let averagedBuffers else { return }
        Self.average(rankBuffers, ranks: communicator.size, into: averagedBuffers)
        var emaBufferRows: (averaged: FloatBuffer, ranks: FloatBuffer)?
        if let rankEMABuffers, let averagedEMABuffers {
            Self.average(rankEMABuffers, ranks: communicator.size, into: averagedEMABuffers)
            emaBufferRows = (averagedEMABuffers, rankEMABuffers)
        }
        let path = try Checkpoint.write(
            directory: configuration.outputDirectory, model: model, averagedBuffers: averagedBuffers, rankBuffers: rankBuffers,
            optimizer: trainer.optimizer, ema: ema, emaBuffers: emaBufferRows, normalization: normalization,
            metadata: .init(model: architecture, sampleShape: model.sampleShape, configuration: configuration, data: dataIdentity),
            contents: .init(step: step, learningRate: Double(configuration.learningRate(at: step - 1)), ranks: RankState.unpack(packed)),
            keep: configuration.keepCheckpoints)
        progress.message("checkpoint \(path)")
        ReportCommand.refresh(runDirectory: configuration.outputDirectory, warn: progress.message)
    }


    /// The mean over the ranks of rows [W, n] (in Double, rank order).
    private static func average(_ rows: FloatBuffer, ranks: Int, into out: FloatBuffer) {
        let count = out.count
        for i in 0..<count {
            var sum = 0.0
            for r in 0..<ranks { sum += Double(rows[r * count + i]) }
            out[i] = Float(sum / Double(ranks))
        }
    }

    /// --normalize-data: the per-channel statistics of the whole training set, the same on every rank and
    /// for any number of ranks: each rank sums its shard exactly (ChannelSums), one allreduce adds them.
    static func channelStatistics(of shard: ImageShard, communicator: Communicator) -> DataNormalization {
        let shape = shard.info.sampleShape
        let levels = shard.info.elementType == "uint8" ? 255 : 65536
        var sums = ChannelSums(channels: shape[0], levels: levels)
        sums.add(shard.samples.pointer, count: shard.count, pixels: shape[1] * shape[2])
        var packed = sums.packed
        packed.withUnsafeMutableBufferPointer { communicator.allreduceSum($0.baseAddress!, count: $0.count) }
        return ChannelSums(packed: packed, channels: shape[0], levels: levels).normalization
    }

    /// Runs `body` with the EMA weights (and, with --ema-buffers, the EMA of the running statistics) in the
    /// model when enabled (the live ones parked meanwhile), and the model back in train mode afterwards:
    /// how every sampling during training sees the model.
    private func withSamplingWeights<T>(_ body: () throws -> T) rethrows -> T {
        if let ema, let parked { parked.copy(from: model.parameters); model.parameters.copy(from: ema) }
        if let emaBuffers, let parkedBuffers { parkedBuffers.copy(from: model.buffers); model.buffers.copy(from: emaBuffers) }
        defer {
            if let parked { model.parameters.copy(from: parked) }
            if let parkedBuffers { model.buffers.copy(from: parkedBuffers) }
            model.training = true
        }
        return try body()
    }

    /// A class-conditional model needs every label of its data below its class count.
    private static func checkLabels(of shard: ImageShard, classCount: Int, architecture: ModelArchitecture) throws {
        guard classCount > 0, let labels = shard.labels, let i = labels.indices.max(by: { labels[$0] < labels[$1] }),
              labels[i] >= classCount else { return }
        throw RunFailure("\(shard.info.path): /labels holds class \(labels[i]) (image \(shard.first + i) of this rank's rows), but \(architecture.name) is conditioned on \(classCount) classes (0…\(classCount - 1)); pass --context-features \(labels[i] + 1) or more")
    }

    /// A class-conditional model's periodic grids show a row per class; its evaluations sample every class equally.
    private var gridClasses: SampleClasses { .everyClass(of: model.classCount) }
    private var evaluationClasses: SampleClasses { model.classCount > 0 ? .balanced(model.classCount) : .unconditional }

    private var samplingMethod: DiffusionSampler.Method { configuration.samplingMethod }

    /// All ranks sample --eval-count images (with the EMA weights when enabled); rank 0 measures them.
    private func evaluate() throws -> EvaluationResult? {
        let c = configuration
        let images = try withSamplingWeights {
            try SampleGeneration.generateIndependentOfRanks(count: c.evalCount, chunk: min(sampler.batchCapacity, c.evalCount),
                                                            sampler: sampler, method: samplingMethod, seed: c.seed, round: step,
                                                            communicator: communicator, classes: evaluationClasses)
        }
        guard let evaluator, let images else { return nil }
        return try evaluator.evaluate(images: images.pointer, count: c.evalCount, sampleShape: model.sampleShape, seed: c.seed)
    }

    /// All ranks sample an equal share (with the EMA weights when enabled); rank 0 writes the grid.
    private func writeSamples() throws {
        let c = configuration
        let path = c.outputDirectory + String(format: "/samples/step-%08d", step)
        let classes = gridClasses, count = classes.sampleCount(requested: c.sampleCount)
        let images = try withSamplingWeights {
            try SampleGeneration.generate(count: count, sampler: sampler, method: samplingMethod, seed: c.seed, round: step,
                                          communicator: communicator, classes: classes) { CrashPoint.check("sampling", step: self.step) }
        }
        guard communicator.isRoot, let images else { return }
        let written = try SampleGeneration.save(images, count: count, sampleShape: model.sampleShape, to: path,
                                                columns: classes.gridColumns(count: count))
        progress.message("samples \(written)")
        ReportCommand.refresh(runDirectory: c.outputDirectory, warn: progress.message)
    }

}

private func note(_ text: String) { print("disttrain: " + text) }

/// `mkdir -p`, with the system's reason when it fails (FileManager's errors do not say why).
private func makeDirectories(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix += "/" + part
        var status = stat()
        if stat(prefix, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw RunFailure("cannot create the output directory \(path): \(prefix) is a file, not a directory")
            }
            continue
        }
        guard mkdir(prefix, 0o755) == 0 || errno == EEXIST else {
            throw RunFailure("cannot create the output directory \(path): \(prefix): \(String(cString: strerror(errno)))")
        }
    }
}
