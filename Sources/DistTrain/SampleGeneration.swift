import Foundation
import IO
import Models
import Tensor

/// Sampling spread over the ranks: each draws an equal share with its own noise stream, rank 0
/// gathers them and writes the files.
enum SampleGeneration {
    /// Returns [W·share, sample…] on rank 0 (the first `count` are the samples), nil elsewhere. Sample i is
    /// conditioned on `classes.label(of: i)`.
    static func generate(count: Int, sampler: DiffusionSampler, method: DiffusionSampler.Method, seed: UInt64,
                         round: Int, communicator: Communicator, classes: SampleClasses = .unconditional,
                         afterFirstBatch: () -> Void = {}) throws -> FloatBuffer? {
        let model = sampler.model
        let share = (count + communicator.size - 1) / communicator.size
        let width = model.sampleCount
        let mine = FloatBuffer(count: share * width)
        var rng = Philox(seed: seed, stream: RandomStream.sampling(round: round, rank: communicator.rank))
        var done = 0
        while done < share {
            let n = min(sampler.batchCapacity, share - done)
            label(sampler, first: communicator.rank * share + done, n, of: count, classes)
            sampler.sample(into: mine.pointer + done * width, batch: n, method: method, rng: &rng)
            if done == 0 { afterFirstBatch() }
            done += n
        }
        let all = communicator.isRoot ? FloatBuffer(count: share * width * communicator.size) : nil
        communicator.gather(mine.pointer, count: share * width, into: all?.pointer)
        return all
    }

    /// Like `generate`, but the same samples whatever the number of ranks (what an evaluation needs to be
    /// comparable across jobs): the `count` samples are cut into chunks of `chunk`, chunk k drawn from its
    /// own stream (RandomStream.evaluation) by whichever rank holds it, the ranks holding consecutive
    /// chunks. Returns the samples in order on rank 0 (its first `count`), nil elsewhere.
    static func generateIndependentOfRanks(count: Int, chunk: Int, sampler: DiffusionSampler, method: DiffusionSampler.Method,
                                           seed: UInt64, round: Int, communicator: Communicator,
                                           classes: SampleClasses = .unconditional) throws -> FloatBuffer? {
        let model = sampler.model, width = model.sampleCount
        precondition(chunk >= 1 && chunk <= sampler.batchCapacity, "chunk \(chunk) outside 1...\(sampler.batchCapacity)")
        let chunks = (count + chunk - 1) / chunk, perRank = (chunks + communicator.size - 1) / communicator.size
        let share = perRank * chunk
        let mine = FloatBuffer(count: share * width)
        let first = communicator.rank * perRank
        for k in first..<min(first + perRank, chunks) {
            let n = min(chunk, count - k * chunk)
            var rng = Philox(seed: seed, stream: RandomStream.evaluation(round: round, chunk: k))
            label(sampler, first: k * chunk, n, of: count, classes)
            sampler.sample(into: mine.pointer + (k - first) * chunk * width, batch: n, method: method, rng: &rng)
        }
        let all = communicator.isRoot ? FloatBuffer(count: share * width * communicator.size) : nil
        communicator.gather(mine.pointer, count: share * width, into: all?.pointer)
        return all
    }

    /// The labels of samples first..<first + n of `count` into the sampler's conditioning.
    private static func label(_ sampler: DiffusionSampler, first: Int, _ n: Int, of count: Int, _ classes: SampleClasses) {
        for i in 0..<n { sampler.conditioning.labels[i] = classes.label(of: first + i, count: count) }
    }

    /// Writes `<base>.h5` (/images float32 in [−1, 1]) and, for images, the grid `<base>.png`.
    /// Returns the path a person would look at.
    static func save(_ images: FloatBuffer, count: Int, sampleShape: [Int], to base: String, columns: Int? = nil) throws -> String {
        let file = try HDF5File.create(base + ".h5")
        try file.write("images", UnsafeBufferPointer(start: images.pointer, count: count * sampleShape.reduce(1, *)),
                       shape: [count] + sampleShape)
        try file.close()
        guard sampleShape.count == 3 else { return base + ".h5" }
        try writeImageGrid(path: base + ".png", images: images.pointer, count: count,
                           channels: sampleShape[0], height: sampleShape[1], width: sampleShape[2], columns: columns)
        return base + ".png"
    }
}
