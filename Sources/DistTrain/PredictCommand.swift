import ArgumentParser
import Foundation
import IO
import Models
import Tensor

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run the denoiser (eval mode) on /x [N, C, H, W] float32 and /t [N] (integer timesteps; for a continuous schedule, float times in [0, 1]) (and, for a class-conditional model, /labels [N]: −1 for none); write /eps.",
        discussion: "With --normalize-data the model works on normalised images: /x is x_t in that space, as training fed it.")

    @Option(help: "Checkpoint file.")
    var checkpoint: String
    @Option(help: "HDF5 file with /x and /t.")
    var input: String
    @Option(help: "HDF5 file to write (/eps).")
    var out: String
    @Flag(help: "Use the EMA weights when the checkpoint has them.")
    var ema = false
    @Option(help: "Samples per forward pass.")
    var batchSize: Int = 64

    func run() throws {
        do {
            let file = try HDF5File.open(input)
            let shape = try file.shape(of: "x"), tShape = try file.shape(of: "t")
            guard tShape == [shape.first ?? -1] else {
                throw IOError(path: input, "/t has shape \(tShape); expected [\(shape.first ?? 0)] for /x of shape \(shape)")
            }
            let loaded = try CheckpointModel(path: checkpoint, batchCapacity: max(1, min(batchSize, shape[0])), useEMA: ema)
            let model = loaded.model
            guard Array(shape.dropFirst()) == model.sampleShape else {
                throw IOError(path: input, "/x holds samples of shape \(Array(shape.dropFirst())); the checkpoint's model takes \(model.sampleShape)")
            }
            let n = shape[0], width = model.sampleCount
            let x = try file.read("x", as: Float.self).values
            let time = try Self.times(in: file, path: input, schedule: loaded.schedule)
            let labels = try Self.labels(in: file, path: input, count: n, classCount: model.classCount)
            var eps = [Float](repeating: 0, count: n * width)
            let conditioning = Conditioning(capacity: model.batchCapacity)
            var done = 0
            while done < n {
                let b = min(model.batchCapacity, n - done)
                for i in 0..<b { conditioning.labels[i] = labels[done + i] }
                switch time {
                case .timesteps(let t):
                    for i in 0..<b { conditioning.timesteps[i] = t[done + i] }
                    conditioning.deriveContinuousTime(for: loaded.schedule, batch: b)
                case .continuous(let t):
                    for i in 0..<b {
                        conditioning.setContinuousTime(t[done + i], noise: loaded.schedule.signalAndNoise(at: t[done + i]).noise, sample: i)
                    }
                }
                x.withUnsafeBufferPointer { xp in eps.withUnsafeMutableBufferPointer { ep in
                    model.forward(input: xp.baseAddress! + done * width, conditioning: conditioning,
                                  output: ep.baseAddress! + done * width, batch: b)
                } }
                done += b
            }
            let output = try HDF5File.create(out)
            try output.write("eps", eps, shape: shape)
            try output.close()
            print("disttrain: wrote /eps \(shape) to \(out)")
        } catch let error as ValidationError {
            throw error
        } catch {
            throw RunFailure("\(error)")
        }
    }

    /// `/t` as the schedule reads it: integer timesteps of a discrete schedule, or diffusion times in
    /// [0, 1] (floats) of a continuous one, whose model is given the noise variance there.
    enum Times { case timesteps([Int32]), continuous([Double]) }

    static func times(in file: HDF5File, path: String, schedule: NoiseSchedule) throws -> Times {
        let type = try file.elementType(of: "t")
        if schedule.isContinuous {
            guard type.hasPrefix("float") else {
                throw IOError(path: path, "/t is \(type); the checkpoint's \(schedule.kind.rawValue) schedule is continuous: give diffusion times in [0, 1] as floats")
            }
            let t = try file.read("t", as: Double.self).values
            if let bad = t.first(where: { !($0 >= 0 && $0 <= 1) }) {
                throw IOError(path: path, "/t holds \(bad), outside the \(schedule.kind.rawValue) schedule's times 0…1")
            }
            return .continuous(t)
        }
        guard type.hasPrefix("int") || type.hasPrefix("uint") else {
            throw IOError(path: path, "/t is \(type); the checkpoint's \(schedule.kind.rawValue) schedule takes integer timesteps")
        }
        let t = try file.read("t", as: Int32.self).values, range = schedule.timestepRange
        if let bad = t.first(where: { !range.contains(Int($0)) }) {
            throw IOError(path: path, "/t holds timestep \(bad), outside the checkpoint's schedule's \(range.lowerBound)…\(range.upperBound)")
        }
        return .timesteps(t)
    }

    /// A class-conditional model's `/labels` [N] (integers 0…K−1, −1 for none); no labels, or an
    /// unconditional model: none.
    static func labels(in file: HDF5File, path: String, count: Int, classCount: Int) throws -> [Int32] {
        guard file.contains("labels") else { return [Int32](repeating: Conditioning.noLabel, count: count) }
        guard classCount > 0 else { throw IOError(path: path, "/labels given, but the checkpoint's model is not class-conditional") }
        let shape = try file.shape(of: "labels"), type = try file.elementType(of: "labels")
        guard shape == [count], type.hasPrefix("int") || type.hasPrefix("uint") else {
            throw IOError(path: path, "/labels is \(type) \(shape); expected integers [\(count)], one class (or −1 for none) per sample")
        }
        let labels = try file.read("labels", as: Int32.self).values
        if let bad = labels.first(where: { $0 < -1 || Int($0) >= classCount }) {
            throw IOError(path: path, "/labels holds class \(bad), outside 0…\(classCount - 1) (−1: none)")
        }
        return labels
    }
}
