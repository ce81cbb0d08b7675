import Foundation
import IO
import Models
import Tensor

/// The HDF5 checkpoint (SPEC §4), written by rank 0 only and atomically: a temporary name in the same
/// directory, fsync, rename, fsync of the directory; older ones beyond the last `keep` are removed only
/// after the new one is complete. Layout (readable with h5py):
///   /model/<state_dict name>               parameters and BatchNorm running statistics
///   /optimizer/exp_avg/<name>, /optimizer/exp_avg_sq/<name>, /optimizer/step
///   /ema/<name>                            EMA of the parameters (when enabled)
///   /state/step, /state/learning_rate
///   /ranks/rng [W, 3]                      every rank's Philox (seed, stream, counter)
///   /ranks/data [W, 2]                     every rank's data position (epoch, cursor)
///   /ranks/buffers [W, n]                  every rank's BatchNorm running statistics (/model holds their mean)
///   attributes: format, format_version, model, sample_shape, configuration (JSON), created
/// Every array carries a Fletcher-32 checksum, verified by HDF5 on read.
enum Checkpoint {
    static let format = "disttrain-checkpoint"
    static let formatVersion = "1"

    struct Contents {
        var step: Int
        var learningRate: Double
        var rngStates: [Int64]       // W × 3
        var dataPositions: [Int64]   // W × 2
        var configuration: TrainingConfiguration
    }

    static func fileName(step: Int) -> String { String(format: "ckpt-%08d.h5", step) }

    /// Complete checkpoints in `directory`, newest first.
    static func all(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("ckpt-") && $0.hasSuffix(".h5") }.sorted(by: >).map { directory + "/" + $0 }
    }

    static func write(directory: String, model: Denoiser, averagedBuffers: FloatBuffer, rankBuffers: FloatBuffer,
                      modelKind: String, optimizer: Adam, ema: FloatBuffer?, contents c: Contents, keep: Int) throws -> String {
        let final = directory + "/" + fileName(step: c.step)
        let temporary = directory + "/." + fileName(step: c.step) + ".partial"
        do {
            let file = try HDF5File.create(temporary)
            try writeTensors(file, group: "model", table: model.parameterTable, buffer: model.parameters)
            try writeTensors(file, group: "model", table: model.bufferTable, buffer: averagedBuffers)
            CrashPoint.check("checkpoint", step: c.step)
            try writeTensors(file, group: "optimizer/exp_avg", table: model.parameterTable, buffer: optimizer.firstMoment)
            try writeTensors(file, group: "optimizer/exp_avg_sq", table: model.parameterTable, buffer: optimizer.secondMoment)
            try file.write("optimizer/step", [Int64(optimizer.step)], shape: [])
            if let ema { try writeTensors(file, group: "ema", table: model.parameterTable, buffer: ema) }
            try file.write("state/step", [Int64(c.step)], shape: [])
            try file.write("state/learning_rate", [c.learningRate], shape: [])
            try file.write("ranks/rng", c.rngStates, shape: [c.rngStates.count / 3, 3], checksum: true)
            try file.write("ranks/data", c.dataPositions, shape: [c.dataPositions.count / 2, 2], checksum: true)
            if model.buffers.count > 0 {
                try file.write("ranks/buffers", UnsafeBufferPointer(start: rankBuffers.pointer, count: rankBuffers.count),
                               shape: [rankBuffers.count / model.buffers.count, model.buffers.count], checksum: true)
            }
            try file.setAttribute("format", format)
            try file.setAttribute("format_version", formatVersion)
            try file.setAttribute("model", modelKind)
            try file.setAttribute("sample_shape", model.sampleShape.map(String.init).joined(separator: ","))
            try file.setAttribute("configuration", c.configuration.json())
            try file.setAttribute("created", ISO8601DateFormatter().string(from: Date()))
            try file.close()
            try syncToDisk(temporary)
            guard rename(temporary, final) == 0 else { throw IOError("cannot rename \(temporary) to \(final): \(String(cString: strerror(errno)))") }
            try syncToDisk(directory)
        } catch {
            unlink(temporary)
            throw IOError("checkpoint \(final) not written (the previous one is intact): \(error)")
        }
        for old in all(in: directory).dropFirst(max(keep, 1)) { unlink(old) }
        return final
    }

    private static func writeTensors(_ file: HDF5File, group: String, table: ParameterTable, buffer: FloatBuffer) throws {
        for e in table.entries {
            try file.write("\(group)/\(e.name)", UnsafeBufferPointer(start: buffer.pointer + e.offset, count: e.count),
                           shape: e.shape, checksum: true)
        }
    }

    private static func readTensors(_ file: HDF5File, group: String, table: ParameterTable, buffer: FloatBuffer) throws {
        for e in table.entries {
            let name = "\(group)/\(e.name)"
            let shape = try file.shape(of: name)
            guard shape == e.shape else { throw IOError("\(file.path): \(name) has shape \(shape), the model expects \(e.shape)") }
            try file.readRows(name, start: 0, count: e.shape[0], into: buffer.pointer + e.offset)
        }
    }

    /// Removes temporary files of checkpoints whose writing was interrupted.
    static func removeLeftovers(in directory: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(".ckpt-") && name.hasSuffix(".partial") { unlink(directory + "/" + name) }
    }

    /// A readable checkpoint that is not one this run can continue: another model, sample shape or format.
    struct Mismatch: Error, CustomStringConvertible { let description: String }

    /// Checks that `path` is a checkpoint of this model, without loading weights. Throws `Mismatch`
    /// for a sound file of something else, another error for a file that cannot be read.
    static func validate(_ path: String, modelKind: String, sampleShape: [Int]) throws -> HDF5File {
        let file = try HDF5File.open(path)
        guard file.attribute("format") == format else { throw Mismatch(description: "\(path) is not a disttrain checkpoint") }
        guard let version = file.attribute("format_version"), version == formatVersion else {
            throw Mismatch(description: "\(path) has checkpoint format version \(file.attribute("format_version") ?? "none"); this build reads version \(formatVersion)")
        }
        let model = file.attribute("model") ?? "?"
        let shape = file.attribute("sample_shape") ?? "?"
        let expected = sampleShape.map(String.init).joined(separator: ",")
        guard model == modelKind, shape == expected else {
            throw Mismatch(description: "\(path) holds model \(model) for samples of shape [\(shape)], not \(modelKind) for [\(expected)]")
        }
        return file
    }

    static func configuration(of file: HDF5File) throws -> TrainingConfiguration {
        guard let json = file.attribute("configuration") else { throw IOError("\(file.path): no configuration attribute") }
        return try TrainingConfiguration.from(json: json)
    }

    /// Loads weights, buffers, optimizer state and EMA into place and returns the run state. With a
    /// `rank`, that rank's own BatchNorm statistics replace the average (to continue a run exactly).
    static func load(_ file: HDF5File, model: Denoiser, optimizer: Adam?, ema: FloatBuffer?, rank: Int? = nil) throws -> Contents {
        try readTensors(file, group: "model", table: model.parameterTable, buffer: model.parameters)
        try readTensors(file, group: "model", table: model.bufferTable, buffer: model.buffers)
        if let rank, model.buffers.count > 0, file.contains("ranks/buffers") {
            let shape = try file.shape(of: "ranks/buffers")
            guard shape.count == 2, shape[1] == model.buffers.count, rank < shape[0] else {
                throw IOError(path: file.path, "/ranks/buffers has shape \(shape); expected [ranks, \(model.buffers.count)]")
            }
            try file.readRows("ranks/buffers", start: rank, count: 1, into: model.buffers.pointer)
        }
        if let optimizer {
            try readTensors(file, group: "optimizer/exp_avg", table: model.parameterTable, buffer: optimizer.firstMoment)
            try readTensors(file, group: "optimizer/exp_avg_sq", table: model.parameterTable, buffer: optimizer.secondMoment)
            optimizer.step = Int(try file.read("optimizer/step", as: Int64.self).values[0])
        }
        if let ema {
            if file.contains("ema") {
                try readTensors(file, group: "ema", table: model.parameterTable, buffer: ema)
            } else {
                ema.copy(from: model.parameters)
            }
        }
        return Contents(step: Int(try file.read("state/step", as: Int64.self).values[0]),
                        learningRate: try file.read("state/learning_rate", as: Double.self).values[0],
                        rngStates: try file.read("ranks/rng", as: Int64.self).values,
                        dataPositions: try file.read("ranks/data", as: Int64.self).values,
                        configuration: try configuration(of: file))
    }

    /// fsync of a file or directory, so a rename after it cannot expose unwritten data.
    private static func syncToDisk(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw IOError("cannot open \(path) to sync it") }
        defer { Foundation.close(fd) }
        guard fsync(fd) == 0 else { throw IOError("fsync of \(path) failed: \(String(cString: strerror(errno)))") }
    }
}
