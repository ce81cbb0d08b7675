import ArgumentParser
import Foundation
import IO
import Models
import Tensor

/// One forward/backward on a given batch, with the gradient allreduce of training: for checking the
/// distributed arithmetic (N ranks × b against 1 rank × N·b) or comparing with another framework.
struct GradientsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradients",
        abstract: "Loss and rank-averaged gradients of one given batch (x0, t, ε) at the seed's initial weights.",
        discussion: """
            --input holds /x0 [N, C, H, W] (or [N, D]) float32, /t [N] integer timesteps and /eps like /x0. \
            With W ranks each takes N/W consecutive rows. Rank 0 writes /loss, /grads/<name> and \
            /buffers/<name> (BatchNorm running statistics after the step) to --out.
            """)

    @Option(help: "Model.")
    var model: ModelArchitecture = .cnn
    @OptionGroup(title: "Model size")
    var modelSize: ModelSizeOptions
    @Option(help: "HDF5 file with /x0, /t, /eps.")
    var input: String
    @Option(help: "HDF5 file to write.")
    var out: String
    @Option(help: "Seed of the initial weights.")
    var seed: UInt64 = 0
    @Flag(help: "Synchronise BatchNorm statistics over the ranks.")
    var syncBn = false

    func run() throws {
        let world = Communicator.world
        defer { Communicator.finalizeIfStarted() }
        do {
            let file = try HDF5File.open(input)
            let shape = try file.shape(of: "x0")
            guard shape[0] % world.size == 0 else { throw RunFailure("\(input): \(shape[0]) rows do not split over \(world.size) ranks") }
            let batch = shape[0] / world.size, sampleShape = Array(shape.dropFirst())
            let first = world.rank * batch
            if let problem = model.validate(sampleShape, options: modelSize.options) { throw RunFailure("\(input): \(problem)") }
            let net = model.build(sampleShape, batch, options: modelSize.options)
            net.initialize(seed: seed)
            if syncBn { net.reduceStatistics = { world.allreduceSum($0, count: $1) } }
            let allreducer = GradientAllreducer(communicator: world, table: net.parameterTable, gradients: net.gradients,
                                                bucketBytes: 1 << 20, overlap: true)
            let trainer = TrainingStep(model: net, schedule: NoiseSchedule(.linear), seed: seed, rank: world.rank, batch: batch,
                                       ranks: MPIRankGroup(communicator: world, allreducer: allreducer, watchdog: nil))
            try file.readRows("x0", start: first, count: batch, into: trainer.images.pointer)
            try file.readRows("eps", start: first, count: batch, into: trainer.loss.noise.pointer)
            try file.readRows("t", start: first, count: batch, into: trainer.loss.conditioning.timesteps)
            // The training step without its update: the given x0, t and ε, the gradient sum, the mean.
            let loss = trainer.computeGradients(drawNoise: false, loadBatch: { _ in }).loss
            let scale = trainer.gradientScale
            for i in 0..<net.gradients.count { net.gradients[i] *= scale }
            guard world.isRoot else { return }
            let output = try HDF5File.create(out)
            try output.write("loss", [loss], shape: [])
            for e in net.parameterTable.entries {
                try output.write("grads/\(e.name)", UnsafeBufferPointer(start: net.gradients.pointer + e.offset, count: e.count), shape: e.shape)
            }
            for e in net.bufferTable.entries {
                try output.write("buffers/\(e.name)", UnsafeBufferPointer(start: net.buffers.pointer + e.offset, count: e.count), shape: e.shape)
            }
            try output.close()
        } catch {
            failAllRanks(error, communicator: world)
        }
    }
}
