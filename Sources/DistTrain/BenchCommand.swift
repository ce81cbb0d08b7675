import ArgumentParser
import Foundation
import Models
import Tensor

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time full training steps of a model against this machine's sgemm peak.",
        discussion: """
            The last line printed (by rank 0) is one JSON object with the figures. FLOPs count 6 × forward MACs. \
            Under `mpirun -np N` every rank runs the step with the real bucketed gradient allreduce, and \
            img_per_s counts the images of all ranks; the per-rank figures and the exposed allreduce time show \
            the weak scaling.
            """)

    @Option(help: "Model to time (at its reference sample shape: 3×32×32 images, or 2-D points).")
    var model: ModelArchitecture = .cnnLarge
    @Option(help: "Which of the model's instances (`disttrain models`) to time. Default: its first, the reference.")
    var instance: String?
    @OptionGroup(title: "Model size (over the instance's)")
    var modelSize: ModelSizeOptions
    @Option(help: "Images per step (per rank).")
    var batchSize: Int = 8
    @Option(help: "Threads for OpenBLAS and the other kernels.")
    var threads: Int = 1
    @Option(help: "Timed steps (after the warm-up).")
    var steps: Int = 5
    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 1
    @Option(help: "Random seed.")
    var seed: UInt64 = 0
    @Option(help: ArgumentHelp("MiB of im2col columns built per chunk of images (tuning).", visibility: .hidden))
    var columnsMb: Int?
    @Option(help: "Gradient allreduce bucket size in MiB (with several ranks).")
    var bucketMb: Double = 4
    @Flag(help: "Allreduce after backward instead of overlapping it (with several ranks).")
    var noOverlap = false
    @Option(help: "Convolution algorithm per layer: auto (Winograd F(4×4) or F(2×2) where it is faster, im2col + sgemm elsewhere), im2col, winograd (every 3×3 stride-1 layer), winograd-f2, winograd-f4. The same function to rounding. Recorded in checkpoints; sample and predict use it too.")
    var convAlgorithm: ConvolutionChoice = .auto
    @Flag(help: "Instead of training steps, time each distinct 3×3 stride-1 convolution of the model alone in every algorithm.")
    var perLayer = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        let chosen = try benchedInstance
        if let problem = model.validate(chosen.sampleShape, options: chosen.options) { throw ValidationError(problem) }
    }

    func run() throws {
        BLAS.threads = threads
        kernelThreads = threads
        if let columnsMb { convolutionColumnsBudgetBytes = columnsMb << 20 }
        let world = Communicator.world
        defer { Communicator.finalizeIfStarted() }
        let peak = SgemmPeak.measure()
        if world.isRoot { print(String(format: "sgemm peak: %.1f GFLOP/s at %d thread(s) (%@)", peak, threads, BLAS.configuration)) }
        if perLayer {
            let rows = ConvolutionBench(model: model, batch: batchSize, repeats: steps).run()
            guard world.isRoot else { return }
            for line in ConvolutionBench.describe(rows) { print(line) }
            let result: [String: Any] = ["model": model.name, "batch": batchSize, "threads": threads,
                                         "sgemm_peak_gflops": round4(peak), "layers": ConvolutionBench.json(rows)]
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
            return
        }

        let net = try benchedModel()
        if world.isRoot && !net.convolutionPlan.isEmpty { print("convolutions: \(net.convolutionPlan.summary)") }
        net.initialize(seed: seed)
        let allreducer = GradientAllreducer(communicator: world, table: net.parameterTable, gradients: net.gradients,
                                            bucketBytes: Int(bucketMb * 1_048_576), overlap: !noOverlap)
        let ranks = MPIRankGroup(communicator: world, allreducer: allreducer, watchdog: nil)
        let trainer = TrainingStep(model: net, schedule: NoiseSchedule(.linear), seed: seed, rank: world.rank, batch: batchSize, ranks: ranks)
        if world.isRoot && world.size > 1 { print(allreducer.summary) }
        var dataRNG = Philox(seed: seed, stream: 99 + UInt64(world.rank))
        dataRNG.fillUniform(trainer.images.pointer, count: trainer.images.count, low: -1, high: 1)

        /// One training step as `train` runs it, on the same batch every time.
        func step() -> Double { trainer.run(learningRate: 1e-4, loadBatch: { _ in }).loss }

        for _ in 0..<warmup { _ = step() }
        world.barrier()
        var seconds: [Double] = [], waits: [Double] = []
        for s in 0..<steps {
            let start = DispatchTime.now().uptimeNanoseconds
            let loss = step()
            // The slowest rank sets the pace of a data-parallel step.
            let elapsed = world.allreduceMax(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            seconds.append(elapsed); waits.append(allreducer.exposedSeconds)
            if world.isRoot {
                print(String(format: "step %d  loss %.4f  %.3f s  %.2f img/s  allreduce wait %.3f s", s + 1, loss, elapsed,
                             Double(batchSize * world.size) / elapsed, allreducer.exposedSeconds))
            }
        }
        let rss = world.allreduceMax(peakResidentMegabytes())
        guard world.isRoot else { return }
        let median = seconds.sorted()[seconds.count / 2]
        let imagesPerSecond = Double(batchSize * world.size) / median
        let gflops = 6 * Double(net.multiplyAccumulatesPerSample) * imagesPerSecond / 1e9
        let result: [String: Any] = [
            "model": model.name, "instance": try benchedInstance.name, "conv_algorithm": convAlgorithm.rawValue, "batch": batchSize, "threads": threads, "steps": steps, "ranks": world.size,
            "median_step_s": round4(median), "img_per_s": round4(imagesPerSecond),
            "img_per_s_per_rank": round4(imagesPerSecond / Double(world.size)), "gflops": round4(gflops),
            "sgemm_peak_gflops": round4(peak), "peak_fraction": round4(gflops / (peak * Double(world.size))),
            "allreduce_wait_s": round4(waits.sorted()[waits.count / 2]),
            "peak_rss_mb": round4(rss), "workspace_mb": round4(Double(net.workspaceCount * 4) / 1_048_576), "parameters": net.parameterTable.totalCount,
        ]
        let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }

    /// The instance asked for, with the size options given on top.
    private var benchedInstance: ModelInstance {
        get throws {
            let chosen = try instance.map { name in
                guard let found = model.instances.first(where: { $0.name == name }) else {
                    throw ValidationError("--instance \(name): \(model.name) has the instances \(model.instances.map(\.name).joined(separator: ", "))")
                }
                return found
            } ?? model.instances[0]
            return ModelInstance(chosen.name, sampleShape: chosen.sampleShape, options: chosen.options.overridden(by: modelSize.options))
        }
    }

    /// The instance, validated in `validate()`.
    private func benchedModel() throws -> Denoiser {
        model.build(try benchedInstance, batchCapacity: batchSize, convolutions: convAlgorithm)
    }

    private func round4(_ x: Double) -> Double { (x * 1e4).rounded() / 1e4 }
}

/// Peak resident memory of this process so far, in MiB.
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024   // Linux reports KiB
}
