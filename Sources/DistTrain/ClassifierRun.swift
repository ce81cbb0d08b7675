import Foundation
import IO
import Models
import Tensor

/// One `disttrain classifier` run on this rank: the labelled data and its held-out part, the network,
/// the training step `train` uses (with `ClassificationLoss`), and the loop. Every rank runs the same
/// collectives in the same order; rank 0 writes the feature network file.
final class ClassifierRun {
    struct Settings {
        var data, out: String
        var steps: Int?
        var epochs: Int
        var batchSize: Int?
        var learningRate: Double
        var heldoutFraction: Double?
        var heldoutData: String?
        var seed: UInt64
        var stages: [[Int]]
        var hidden: Int
        var flip: Bool
        var convolutions: ConvolutionChoice
        var logEvery, evalEvery, threads: Int
        var collectiveTimeout: Double
    }

    static let defaultHeldoutFraction = 0.1
    /// The reference global batch, split over the ranks unless --batch-size is given.
    static let defaultGlobalBatch = 128

    let settings: Settings
    let communicator: Communicator
    let model: CNNClassifier
    let trainer: OptimizerStep<ClassificationLoss>
    let allreducer: GradientAllreducer
    let watchdog: CollectiveWatchdog
    /// This rank's part of the training images, and of the held-out ones.
    let shard, heldout: ImageShard
    let batch, steps, trainCount, heldoutCount: Int
    let dataIdentity: DatasetIdentity
    /// How the held-out images were chosen, and from which file.
    let heldoutDescription, heldoutPath: String
    private var augmentation: Philox
    private let flips: UnsafeMutablePointer<Int32>
    private let evaluationLogits: FloatBuffer
    private let evaluationSums = DoubleBuffer(count: 3)

    init(_ s: Settings, communicator: Communicator) throws {
        settings = s; self.communicator = communicator
        let world = communicator.size, rank = communicator.rank
        let info = try Self.labelledImages(s.data)
        let labels = try Self.labels(of: info)
        let classes = Int(labels.max()!) + 1

        // The held-out images: a given file, the one prepare --heldout wrote beside --data, or rows of --data.
        let trainRows: [Int], heldoutRows: [Int], heldoutInfo: DatasetInfo
        if let file = try s.heldoutData ?? Self.preparedHeldoutFile(besides: s.data, explicitFraction: s.heldoutFraction != nil) {
            heldoutInfo = try Self.labelledImages(file)
            guard heldoutInfo.sampleShape == info.sampleShape else {
                throw RunFailure("\(file) holds images of \(heldoutInfo.sampleShape); the training data \(s.data) holds \(info.sampleShape)")
            }
            let heldoutLabels = try Self.labels(of: heldoutInfo)
            if let unseen = heldoutLabels.first(where: { Int($0) >= classes }) {
                throw RunFailure("\(file): /labels holds class \(unseen), which the training data \(s.data) never shows (its classes are 0…\(classes - 1))")
            }
            trainRows = Array(0..<info.count); heldoutRows = Array(0..<heldoutInfo.count)
            heldoutDescription = s.heldoutData != nil ? "all \(heldoutInfo.count) images of --heldout-data" : "all \(heldoutInfo.count) images of the held-out file prepare --heldout wrote beside --data"
            if s.heldoutData == nil && communicator.isRoot { note("measuring accuracy on \(file), the held-out part prepare wrote beside \(s.data)") }
        } else {
            let fraction = s.heldoutFraction ?? Self.defaultHeldoutFraction
            let split = DatasetWriter.heldoutSplit(count: info.count, fraction: fraction, seed: s.seed)
            guard !split.train.isEmpty, !split.heldout.isEmpty else {
                throw RunFailure("\(s.data): holding out a fraction \(fraction) of \(info.count) images leaves \(split.train.count) to train on and \(split.heldout.count) to measure")
            }
            heldoutInfo = info; trainRows = split.train; heldoutRows = split.heldout
            heldoutDescription = "\(split.heldout.count) of the \(info.count) images of --data: the rows prepare --heldout \(fraction) --seed \(s.seed) would hold out"
        }
        heldoutPath = DatasetIdentity.absolute(heldoutInfo.path)
        trainCount = trainRows.count; heldoutCount = heldoutRows.count

        let configuration = ClassifierConfiguration(inChannels: info.sampleShape[0], height: info.sampleShape[1], width: info.sampleShape[2],
                                                    classes: classes, stages: s.stages, hidden: s.hidden)
        if let problem = configuration.problem { throw RunFailure("\(s.data): \(problem)") }
        batch = s.batchSize ?? max(1, Self.defaultGlobalBatch / world)
        guard trainCount / world >= batch else {
            throw RunFailure("\(s.data): \(trainCount) training images over \(world) rank(s) leave \(trainCount / world) per rank, fewer than --batch-size \(batch)")
        }
        steps = s.steps ?? max(1, s.epochs * (trainCount / (batch * world)))
        try Self.checkWritable(s.out, communicator: communicator)

        // Only this rank's parts are read from disk.
        func part(_ rows: [Int]) -> [Range<Int>] { Self.runs(rows[(rows.count * rank / world)..<(rows.count * (rank + 1) / world)]) }
        shard = try ImageShard(info, rows: part(trainRows), rank: rank, seed: s.seed)
        heldout = try ImageShard(heldoutInfo, rows: part(heldoutRows), rank: rank, seed: s.seed)
        dataIdentity = try DatasetIdentity(info)

        model = CNNClassifier(configuration, batchCapacity: batch, convolutionAlgorithm: s.convolutions.algorithm(for:))
        model.initialize(seed: s.seed)
        allreducer = GradientAllreducer(communicator: communicator, table: model.parameterTable, gradients: model.gradients,
                                        bucketBytes: 4 << 20, overlap: true)
        watchdog = CollectiveWatchdog(timeout: s.collectiveTimeout, rank: rank) { [communicator] message in
            FileHandle.standardError.write(Data(("disttrain: " + message + "\n").utf8))
            communicator.abort(code: 1)
        }
        trainer = OptimizerStep(objective: ClassificationLoss(model: model, batch: batch),
                                ranks: MPIRankGroup(communicator: communicator, allreducer: allreducer, watchdog: watchdog))
        augmentation = Philox(seed: s.seed, stream: RandomStream.augmentation(rank: rank))
        flips = .allocate(capacity: batch); flips.initialize(repeating: 0, count: batch)
        evaluationLogits = FloatBuffer(count: batch * classes)

        if communicator.isRoot {
            note("training \(ClassifierConfiguration.architectureName) (\(ClassifierConfiguration.stagesText(s.stages)), hidden \(s.hidden); \(model.parameterTable.totalCount.formatted()) parameters) on \(trainCount) images of \(info.sampleShape) with \(classes) classes from \(s.data): \(world) rank(s) × batch \(batch) = \(batch * world) per step, \(steps) steps (\(String(format: "%.2f", Double(steps * batch * world) / Double(trainCount))) epochs)\(s.flip ? ", random horizontal flips" : "")")
            note("held out: \(heldoutDescription)")
            note("convolutions (--conv-algorithm \(s.convolutions.rawValue)): \(model.convolutionPlan.summary)")
            if let blas = BLAS.coreSelectionNote { note(blas) }
        }
    }

    deinit { flips.deallocate() }

    /// Train, measure, write.
    func run() throws {
        let s = settings, globalBatch = batch * communicator.size
        let progress = ProgressReporter(totalSteps: steps, logEvery: s.logEvery, enabled: communicator.isRoot)
        var losses: [Double] = []
        losses.reserveCapacity(steps)
        var nonfiniteInARow = 0
        let started = DispatchTime.now().uptimeNanoseconds
        for step in 0..<steps {
            communicator.step = step + 1
            let stepStarted = DispatchTime.now().uptimeNanoseconds
            let learningRate = Float(s.learningRate * (1 - Double(step) / Double(steps)))
            let result = trainer.run(learningRate: learningRate, loadBatch: { _ in
                shard.nextBatch(batch, into: trainer.images.pointer, labels: trainer.labels)
                if s.flip { flipHalf(trainer.images.pointer) }
            })
            losses.append(result.loss)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - stepStarted) / 1e9
            progress.report(MetricsRecord(step: step + 1, epoch: shard.epoch, loss: result.loss, learningRate: Double(learningRate),
                                          gradientNorm: result.gradientNorm, imagesPerSecond: Double(globalBatch) / seconds,
                                          stepSeconds: seconds, allreduceWaitSeconds: allreducer.exposedSeconds, skipped: result.applied ? 0 : 1))
            nonfiniteInARow = result.applied ? 0 : nonfiniteInARow + 1
            if nonfiniteInARow >= 10 {
                progress.finish()
                throw RunFailure("10 steps in a row (the last at step \(step + 1)) had a non-finite loss or gradient; their updates were skipped. Stopping without writing \(s.out): lower --lr or check the data.")
            }
            if s.evalEvery > 0 && (step + 1) % s.evalEvery == 0 && step + 1 < steps {
                let m = evaluateHeldout()
                progress.message(String(format: "step %d: held-out accuracy %.4f, loss %.4f", step + 1, m.accuracy, m.loss))
            }
        }
        progress.finish()
        let trainingSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let measured = evaluateHeldout()
        if communicator.isRoot {
            note(String(format: "held-out accuracy %.4f (%d of %d images), loss %.4f; trained %d steps in %.1f s (%.0f img/s)",
                        measured.accuracy, Int(measured.correct), heldoutCount, measured.loss, steps, trainingSeconds,
                        Double(steps * globalBatch) / trainingSeconds))
        }
        var failure = ""
        if communicator.isRoot {
            let training: [String: Any] = [
                "steps": steps, "batch_per_rank": batch, "ranks": communicator.size, "global_batch": globalBatch,
                "learning_rate": s.learningRate, "schedule": "linear decay to 0", "optimizer": "adam",
                "seed": Int64(bitPattern: s.seed), "flip": s.flip, "conv_algorithm": s.convolutions.rawValue, "threads": s.threads,
                "train_count": trainCount, "epochs": Double(steps * globalBatch) / Double(trainCount), "seconds": trainingSeconds,
            ]
            let json = String(decoding: try JSONSerialization.data(withJSONObject: training, options: [.sortedKeys]), as: UTF8.self)
            do {
                try FeatureNetworkFile.write(s.out, classifier: model, losses: losses, metadata: .init(
                    heldoutAccuracy: measured.accuracy, heldoutLoss: measured.loss, heldoutCount: heldoutCount,
                    heldout: heldoutDescription, heldoutPath: heldoutPath, data: dataIdentity, training: json))
                note("wrote \(s.out)")
            } catch { failure = "\(error)" }
        }
        // why: the other ranks must not report success when rank 0 could not write the file.
        let message = String(decoding: communicator.broadcast(Array(failure.utf8)), as: UTF8.self)
        guard message.isEmpty else { throw communicator.isRoot ? RunFailure(message) : QuietFailure() }
    }

    /// Accuracy and mean cross-entropy on the held-out images of every rank, in eval mode with the
    /// BatchNorm statistics averaged over the ranks (as the written file holds them).
    private func evaluateHeldout() -> (accuracy: Double, loss: Double, correct: Double) {
        averageBatchNormStatistics()
        model.training = false
        defer { model.training = true }
        let k = model.configuration.classes, width = model.sampleCount
        var correct = 0.0, lossSum = 0.0, i = 0
        heldout.labels!.withUnsafeBufferPointer { labels in
            while i < heldout.count {
                let b = min(batch, heldout.count - i)
                model.forward(input: heldout.samples.pointer + i * width, logits: evaluationLogits.pointer, batch: b)
                lossSum += Double(softmaxCrossEntropyLoss(logitsGrad: nil, logits: evaluationLogits.pointer, labels: labels.baseAddress! + i,
                                                          batch: b, classes: k)) * Double(b)
                for n in 0..<b where predictedClass(evaluationLogits.pointer + n * k, classes: k) == labels[i + n] { correct += 1 }
                i += b
            }
        }
        evaluationSums[0] = correct; evaluationSums[1] = lossSum; evaluationSums[2] = Double(heldout.count)
        watchdog.guarding("the held-out accuracy allreduce", step: communicator.step) {
            communicator.allreduceSum(evaluationSums.pointer, count: 3)
        }
        return (evaluationSums[0] / evaluationSums[2], evaluationSums[1] / evaluationSums[2], evaluationSums[0])
    }

    /// Every rank's running statistics replaced by their mean over the ranks.
    private func averageBatchNormStatistics() {
        guard communicator.size > 1 else { return }
        watchdog.guarding("averaging BatchNorm statistics", step: communicator.step) {
            communicator.allreduceSum(model.buffers.pointer, count: model.buffers.count)
        }
        let scale = 1 / Float(communicator.size)
        for i in 0..<model.buffers.count { model.buffers[i] *= scale }
    }

    /// Mirrors each image of the batch left–right with probability 1/2 (this rank's augmentation stream).
    private func flipHalf(_ images: UnsafeMutablePointer<Float>) {
        augmentation.fillIntegers(flips, count: batch, below: 2)
        let shape = model.sampleShape, w = shape[2], rows = shape[0] * shape[1]
        for n in 0..<batch where flips[n] == 1 {
            for r in 0..<rows {
                let row = images + (n * rows + r) * w
                var (a, b) = (0, w - 1)
                while a < b { (row[a], row[b]) = (row[b], row[a]); a += 1; b -= 1 }
            }
        }
    }

    // MARK: - Checking the input

    static let noLabelsAdvice = "the classifier needs a labelled dataset; for unlabelled data use a feature network trained on another labelled set"

    /// The file's layout, which must be labelled images.
    static func labelledImages(_ path: String) throws -> DatasetInfo {
        let info: DatasetInfo
        do { info = try DatasetInfo.inspect(path) } catch { throw RunFailure("\(error)") }
        guard info.sampleShape.count == 3 else {
            throw RunFailure("\(path): the classifier needs images [N, C, H, W]; /images is [N, \(info.sampleShape.map(String.init).joined(separator: ", "))]")
        }
        guard info.hasLabels else { throw RunFailure("\(path) has no /labels: \(noLabelsAdvice)") }
        return info
    }

    /// Every label of the file, checked to be class numbers 0, 1, 2, …
    static func labels(of info: DatasetInfo) throws -> [Int64] {
        let labels: [Int64]
        do { labels = try HDF5File.open(info.path).read("labels", as: Int64.self).values } catch { throw RunFailure("\(error)") }
        if let i = labels.firstIndex(where: { $0 < 0 }) {
            throw RunFailure("\(info.path): /labels holds \(labels[i]) at row \(i); labels must be class numbers 0, 1, 2, …")
        }
        guard let top = labels.max(), top < 100_000 else {
            throw RunFailure("\(info.path): /labels holds class \(labels.max() ?? -1); the classifier takes at most 100000 classes (0…99999)")
        }
        return labels
    }

    /// prepare --heldout F writes X.h5 (split "train: …") and X-heldout.h5 (split "heldout: …"):
    /// the second, when --data is such a first and no --heldout-fraction asks for rows of --data instead.
    static func preparedHeldoutFile(besides data: String, explicitFraction: Bool) throws -> String? {
        guard !explicitFraction, (try? HDF5File.open(data))?.attribute("split")?.hasPrefix("train:") == true else { return nil }
        let sibling = DatasetWriter.defaultHeldoutPath(for: data)
        guard (try? HDF5File.open(sibling))?.attribute("split")?.hasPrefix("heldout:") == true else { return nil }
        return sibling
    }

    /// Ascending row indices as runs of consecutive rows (one hyperslab read each).
    static func runs(_ rows: ArraySlice<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        for row in rows {
            if let last = result.last, last.upperBound == row { result[result.count - 1] = last.lowerBound..<(row + 1) } else { result.append(row..<(row + 1)) }
        }
        return result
    }

    /// Rank 0 checks that `out` can be created (its directory exists and is writable, it is not a
    /// directory) before any training; every rank learns the answer.
    static func checkWritable(_ out: String, communicator: Communicator) throws {
        var problem = ""
        if communicator.isRoot {
            let directory = (out as NSString).deletingLastPathComponent.isEmpty ? "." : (out as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory), isDirectory.boolValue {
                problem = "--out \(out) is a directory; give the file to write"
            } else if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
                problem = "cannot write --out \(out): its directory \(directory) does not exist"
            } else if access(directory, W_OK) != 0 {
                problem = "cannot write --out \(out): its directory \(directory) is not writable"
            }
        }
        let message = String(decoding: communicator.broadcast(Array(problem.utf8)), as: UTF8.self)
        guard message.isEmpty else { throw communicator.isRoot ? RunFailure(message) : QuietFailure() }
    }
}

private func note(_ text: String) { print("disttrain: " + text) }
