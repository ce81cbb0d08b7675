import ArgumentParser
import Foundation
import IO
import Models
import Tensor

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate samples from a checkpoint (spread over the ranks under mpirun).")

    @Option(help: "Checkpoint file (ckpt-XXXXXXXX.h5).")
    var checkpoint: String
    @Option(help: "Number of samples.")
    var count: Int = 16
    @OptionGroup(title: "Sampling")
    var sampling: SamplerOptions
    @Option(name: .customLong("class"), help: "Class-conditional models: the class of every sample (K), one grid row per listed class (K1,K2,…; the samples split equally), or none (unconditional). Default: one row per class.")
    var classes: String?
    @Option(help: "Seed of the sampling noise.")
    var seed: UInt64 = 0
    @Option(help: "Output PNG grid (images) — the samples are also written beside it as .h5.")
    var out: String = "samples.png"
    @Flag(help: "Use the live weights even when the checkpoint has EMA weights.")
    var noEma = false
    @Flag(help: "Also write the denoising trajectory of the first samples as <out>-trajectory.png (one row per recorded step) and <out>-trajectory.gif (one frame per recorded step); single rank.")
    var trajectory = false
    @Option(help: "Samples per batch on each rank.")
    var batchSize: Int = 64
    @Option(help: "Threads per rank for the matrix products and the kernels.")
    var threads: Int = 1
    @Option(help: "Convolution algorithm (default: the checkpoint's run's; see train --help).")
    var convAlgorithm: ConvolutionChoice?

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        BLAS.threads = threads
        let world = Communicator.world
        defer { Communicator.finalizeIfStarted() }
        do {
            // Guidance runs each batch twice through the model.
            let perBatch = min(batchSize, count), guided = sampling.guidance != nil
            let loaded = try CheckpointModel(path: checkpoint, batchCapacity: guided ? 2 * perBatch : perBatch, useEMA: !noEma,
                                             convolutions: convAlgorithm)
            let name = loaded.architecture.name
            let chosen = try SampleClassesArgument.parse(classes, classCount: loaded.model.classCount, model: name)
            if guided && loaded.model.classCount == 0 {
                throw RunFailure("--guidance: \(name) is not class-conditional; classifier-free guidance needs a model trained on labels")
            }
            let total = chosen.sampleCount(requested: count)
            if total != count && world.isRoot { print("disttrain: \(total) samples: the same number in each of the grid's rows") }
            let method = sampling.method(runVariance: loaded.configuration.ddpmVariance)
            let samplerObject = try loaded.sampler(method, guidance: sampling.guidance)
            let base = out.hasSuffix(".png") ? String(out.dropLast(4)) : out
            if trajectory && world.isRoot { try writeTrajectory(samplerObject, method: method, base: base, classes: chosen) }
            let start = DispatchTime.now().uptimeNanoseconds
            let images = try SampleGeneration.generate(count: total, sampler: samplerObject, method: method, seed: seed,
                                                       round: 0, communicator: world, classes: chosen)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            guard world.isRoot, let images else { return }
            let written = try SampleGeneration.save(images, count: total, sampleShape: loaded.model.sampleShape, to: base,
                                                    columns: chosen.gridColumns(count: total))
            print("disttrain: wrote \(total) samples to \(written) (sampling took \(String(format: "%.3f", seconds)) s)")
        } catch {
            failAllRanks(error, communicator: world)
        }
    }

    /// Eight snapshots of up to 8 samples along the reverse process: `<base>-trajectory.png` with one row
    /// per snapshot, and `<base>-trajectory.gif` with one frame per snapshot.
    private func writeTrajectory(_ sampler: DiffusionSampler, method: DiffusionSampler.Method, base: String,
                                 classes: SampleClasses) throws {
        let model = sampler.model
        guard model.sampleShape.count == 3 else { return }
        let n = min(8, sampler.batchCapacity), width = model.sampleCount
        for i in 0..<n { sampler.conditioning.labels[i] = classes.label(of: i, count: n) }
        let x = FloatBuffer(count: n * width), frames = FloatBuffer(count: 8 * n * width)
        let schedule = sampler.schedule, total = schedule.timesteps
        var rng = Philox(seed: seed, stream: RandomStream.sampling(round: 1 << 20, rank: 0))
        var frame = 0
        let marks: Set<Int> = {
            if case .ddim(let steps, _) = method {
                let ts = schedule.ddimTimesteps(steps: steps)
                return Set((0..<8).map { ts[min(ts.count - 1, $0 * ts.count / 8)] })
            }
            return Set((0..<8).map { schedule.lastTimestep - $0 * total / 8 })
        }()
        sampler.sample(into: x.pointer, batch: n, method: method, rng: &rng) { t, current in
            guard frame < 8, marks.contains(t) || t == schedule.firstTimestep else { return }
            for i in 0..<(n * width) { frames[frame * n * width + i] = min(max(current[i], -1), 1) }
            frame += 1
        }
        let shape = model.sampleShape
        try writeImageGrid(path: base + "-trajectory.png", images: frames.pointer, count: frame * n,
                           channels: shape[0], height: shape[1], width: shape[2], columns: n)
        // The same snapshots as an animation: one frame per recorded step, each the grid of the n samples.
        let grids = try (0..<frame).map { f in
            try imageGrid(images: frames.pointer + f * n * width, count: n, channels: shape[0], height: shape[1], width: shape[2],
                          columns: n > 4 ? (n + 1) / 2 : n)
        }
        // why the zoom: at 1:1 a grid of 32×32 samples is a thumbnail in a GIF viewer
        let zoom = max(1, Int((256.0 / Double(grids[0].width)).rounded(.up)))
        try writeAnimatedGIF(path: base + "-trajectory.gif", frames: grids, scale: zoom)
    }
}
