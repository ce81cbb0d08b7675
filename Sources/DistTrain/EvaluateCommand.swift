import ArgumentParser
import Foundation
import IO
import Models
import Tensor

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "FID, KID and the class histogram of generated (or any) images, on the features of a network `disttrain classifier` trained.",
        discussion: """
            The images: --checkpoint (sampled here, spread over the ranks under mpirun: the same images for \
            any number of ranks), --images (an HDF5 file with /images, like a dataset or `sample`'s .h5) or \
            --grid (a PNG grid as `sample` and `train` write, cut into tiles of the network's image size; \
            trailing all-black cells are the grid's padding and are skipped). The reference: the first \
            --reference-count images of --reference (default: the data the feature network was trained on); \
            their features are computed once and cached beside the feature network. Prints a summary and, \
            as the last line, one JSON object.
            """)

    @Option(help: "Feature network file (from `disttrain classifier`).")
    var features: String
    @Option(help: "Checkpoint to sample the images from.")
    var checkpoint: String?
    @Option(help: "HDF5 file whose /images [N, C, H, W] (uint8, or float32 in [−1, 1]) are evaluated.")
    var images: String?
    @Option(help: "PNG image grid whose tiles are evaluated.")
    var grid: String?
    @Option(help: "With --checkpoint: images to sample.")
    var count: Int = 1000
    @OptionGroup(title: "Sampling (with --checkpoint)")
    var sampling: SamplerOptions
    @Option(help: "With --checkpoint: seed of the sampling noise.")
    var seed: UInt64 = 0
    @Flag(help: "With --checkpoint: use the live weights even when the checkpoint has EMA weights.")
    var noEma = false
    @Option(help: "With --checkpoint: images per sampling batch (the same on every rank; the images do not depend on the number of ranks).")
    var batchSize: Int = 50
    @Option(help: "Reference dataset (default: the feature network's training data).")
    var reference: String?
    @Option(help: "Reference images (the first N of the reference dataset).")
    var referenceCount: Int = 10000
    @Option(help: "KID: random subsets averaged.")
    var kidSubsets: Int = 100
    @Option(help: "KID: images per subset (capped by the smaller set).")
    var kidSubsetSize: Int = 1000
    @Option(help: "Threads per rank for the matrix products and the kernels.")
    var threads: Int = 1
    @Option(help: "Convolution algorithm of the sampled model (default: the checkpoint's run's).")
    var convAlgorithm: ConvolutionChoice?

    func validate() throws {
        let sources = [checkpoint, images, grid].compactMap { $0 }
        guard sources.count == 1 else { throw ValidationError("give exactly one of --checkpoint, --images, --grid (got \(sources.count))") }
        guard count >= 2 else { throw ValidationError("--count must be at least 2 (a covariance of features), got \(count)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard referenceCount >= 2 else { throw ValidationError("--reference-count must be at least 2, got \(referenceCount)") }
        guard kidSubsets >= 1, kidSubsetSize >= 2 else { throw ValidationError("--kid-subsets must be at least 1 and --kid-subset-size at least 2") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        BLAS.threads = threads
        kernelThreads = threads
        let world = Communicator.world
        defer { Communicator.finalizeIfStarted() }
        do {
            // Check the inputs on rank 0 first, so that a bad feature file fails before anyone samples.
            let evaluator = world.isRoot
                ? try ImageEvaluator(featuresPath: features, referencePath: reference, referenceCount: referenceCount,
                                     kidSubsets: kidSubsets, kidSubsetSize: kidSubsetSize, log: { print("disttrain: " + $0) })
                : nil
            let (pixels, imageCount, shape) = try loadImages(world, networkShape: evaluator?.network.network.inputShape)
            guard world.isRoot, let evaluator, let pixels else { return }
            let result = try evaluator.evaluate(images: pixels.pointer, count: imageCount, sampleShape: shape, seed: seed)
            print("disttrain: " + result.summary)
            print("disttrain: reference: \(evaluator.reference.statistics.count) images, class entropy \(String(format: "%.3f", evaluator.reference.classes.entropy)) (\(evaluator.reference.cachePath))")
            print(result.json)
        } catch {
            failAllRanks(error, communicator: world)
        }
    }

    /// The images to evaluate (on rank 0; the other ranks only help sampling), their count and shape.
    /// `networkShape`: the feature network's input, on rank 0 (a grid is cut into tiles of it).
    private func loadImages(_ world: Communicator, networkShape: [Int]?) throws -> (FloatBuffer?, Int, [Int]) {
        if let checkpoint {
            // Guidance runs each chunk twice through the model; a class-conditional model samples every class equally.
            let chunk = min(batchSize, count)
            let loaded = try CheckpointModel(path: checkpoint, batchCapacity: sampling.guidance == nil ? chunk : 2 * chunk, useEMA: !noEma,
                                             convolutions: convAlgorithm)
            if sampling.guidance != nil && loaded.model.classCount == 0 {
                throw RunFailure("--guidance: \(loaded.architecture.name) is not class-conditional; classifier-free guidance needs a model trained on labels")
            }
            let method = sampling.method(runVariance: loaded.configuration.ddpmVariance)
            let sampler = try loaded.sampler(method, guidance: sampling.guidance)
            let started = DispatchTime.now().uptimeNanoseconds
            let classes: SampleClasses = loaded.model.classCount > 0 ? .balanced(loaded.model.classCount) : .unconditional
            let images = try SampleGeneration.generateIndependentOfRanks(count: count, chunk: chunk, sampler: sampler,
                                                                         method: method,
                                                                         seed: seed, round: 0, communicator: world, classes: classes)
            if world.isRoot {
                print(String(format: "disttrain: sampled %d images in %.1f s", count, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9))
            }
            return (images, count, loaded.model.sampleShape)
        }
        guard world.isRoot, let networkShape else { return (nil, 0, []) }
        if let images {
            let info = try DatasetInfo.inspect(images)
            guard info.sampleShape.count == 3 else { throw IOError(path: images, "/images holds samples of shape \(info.sampleShape), not images [C, H, W]") }
            let shard = try ImageShard(info, rows: [0..<info.count], rank: 0, seed: 0)
            return (shard.samples, info.count, info.sampleShape)
        }
        let tiles = try GridTiles(path: grid!, tileShape: networkShape)
        return (tiles.images, tiles.count, networkShape)
    }
}

/// The tiles of a PNG grid written by `imageGrid` (its `ImageGridLayout`), as images in [−1, 1].
struct GridTiles {
    let images: FloatBuffer
    let count: Int

    init(path: String, tileShape: [Int]) throws {
        let png = try PNGImage.read(path)
        let (c, h, w) = (tileShape[0], tileShape[1], tileShape[2])
        guard png.channels == c else { throw IOError(path: path, "has \(png.channels) channels; the feature network takes \(c)") }
        guard let layout = ImageGridLayout(gridWidth: png.width, gridHeight: png.height, height: h, width: w) else {
            throw IOError(path: path, "is \(png.width)×\(png.height), not a grid of \(h)×\(w) tiles with 2-pixel borders (as `sample` writes)")
        }
        var tiles = layout.rows * layout.columns
        func isBlack(_ n: Int) -> Bool {
            let (top, left) = layout.origin(of: n)
            for y in 0..<h { for x in 0..<w { for k in 0..<c where png[top + y, left + x, k] != 0 { return false } } }
            return true
        }
        while tiles > 0 && isBlack(tiles - 1) { tiles -= 1 }
        guard tiles >= 2 else { throw IOError(path: path, "has \(tiles) image(s); evaluation needs at least 2") }
        images = FloatBuffer(count: tiles * c * h * w)
        for n in 0..<tiles {
            let (top, left) = layout.origin(of: n)
            for k in 0..<c { for y in 0..<h { for x in 0..<w {
                images[((n * c + k) * h + y) * w + x] = Float(png[top + y, left + x, k]) / 127.5 - 1
            } } }
        }
        count = tiles
    }
}
