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
///   /ema_buffers/<name>                    EMA of the BatchNorm running statistics, mean over the ranks (--ema-buffers)
///   /data_normalization/mean, /variance    float64 [C]: the training set's per-channel statistics (--normalize-data)
///   /state/step, /state/learning_rate
///   /ranks/rng [W, 3]                      every rank's Philox (seed, stream, counter)
///   /ranks/data [W, 2]                     every rank's data position (epoch, cursor)
///   /ranks/buffers [W, n]                  every rank's BatchNorm running statistics (/model holds their mean);
///                                          not for a model whose buffers are all frozen (MyUNet's table)
///   /ranks/ema_buffers [W, n]              every rank's EMA of them (--ema-buffers; /ema_buffers holds their mean)
///   attributes: format, format_version, model, sample_shape, configuration (JSON), created, the data
///   trained on (data_path, data_count, data_sample_shape, data_dtype, data_fingerprint; from version 2)
///   and metadata_checksum over the others (from version 2; see CheckpointMetadata.swift)
/// Every array carries a Fletcher-32 checksum, verified by HDF5 on read. `CheckpointReader` reads it.
enum Checkpoint {
    static let format = "disttrain-checkpoint"
    /// 2 added the data record and metadata_checksum; 1 (without them) is still read.
    static let formatVersion = "2"
    static let readableVersions = [1, 2]

    /// The run state beside the weights.
    struct Contents {
        var step: Int
        var learningRate: Double
        /// One per rank of the run that wrote it, in rank order.
        var ranks: [RankState]
    }

    static func fileName(step: Int) -> String { String(format: "ckpt-%08d.h5", step) }

    /// Complete checkpoints in `directory`, newest first.
    static func all(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("ckpt-") && $0.hasSuffix(".h5") }.sorted(by: >).map { directory + "/" + $0 }
    }

    static func write(directory: String, model: Denoiser, averagedBuffers: FloatBuffer, rankBuffers: FloatBuffer,
                      optimizer: Adam, ema: FloatBuffer?, emaBuffers: (averaged: FloatBuffer, ranks: FloatBuffer)? = nil,
                      normalization: DataNormalization? = nil, metadata: Metadata, contents c: Contents, keep: Int) throws -> String {
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
            if let emaBuffers, model.buffers.count > 0 {
                try writeTensors(file, group: "ema_buffers", table: model.bufferTable, buffer: emaBuffers.averaged)
                try file.write("ranks/ema_buffers", UnsafeBufferPointer(start: emaBuffers.ranks.pointer, count: emaBuffers.ranks.count),
                               shape: [emaBuffers.ranks.count / model.buffers.count, model.buffers.count], checksum: true)
            }
            if let normalization {
                try file.write("data_normalization/mean", normalization.mean, shape: [normalization.channels], checksum: true)
                try file.write("data_normalization/variance", normalization.variance, shape: [normalization.channels], checksum: true)
            }
            try file.write("state/step", [Int64(c.step)], shape: [])
            try file.write("state/learning_rate", [c.learningRate], shape: [])
            try file.write("ranks/rng", c.ranks.flatMap(\.rngRow), shape: [c.ranks.count, RankState.rngColumns], checksum: true)
            try file.write("ranks/data", c.ranks.flatMap(\.dataRow), shape: [c.ranks.count, RankState.dataColumns], checksum: true)
            if model.buffers.count > model.bufferTable.frozenCount {   // a frozen table is the same on every rank: /model has it
                try file.write("ranks/buffers", UnsafeBufferPointer(start: rankBuffers.pointer, count: rankBuffers.count),
                               shape: [rankBuffers.count / model.buffers.count, model.buffers.count], checksum: true)
            }
            try writeAttributes(file, metadata)
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

    /// Each tensor of `table` in `buffer` as `group/<name>` with its shape and a Fletcher-32 checksum.
    static func writeTensors(_ file: HDF5File, group: String, table: ParameterTable, buffer: FloatBuffer) throws {
        for e in table.entries {
            try file.write("\(group)/\(e.name)", UnsafeBufferPointer(start: buffer.pointer + e.offset, count: e.count),
                           shape: e.shape, checksum: true)
        }
    }

    /// Removes temporary files of checkpoints whose writing was interrupted.
    static func removeLeftovers(in directory: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(".ckpt-") && name.hasSuffix(".partial") { unlink(directory + "/" + name) }
    }

    /// A readable checkpoint that is not one this run can continue: another model, sample shape or format.
    struct Mismatch: Error, CustomStringConvertible { let description: String }

    /// A checkpoint whose metadata is missing, unparsable or fails its checksum: treated like arrays that
    /// fail theirs (reported, and the next older checkpoint used).
    struct Damaged: Error, CustomStringConvertible { let description: String }

    /// fsync of a file or directory, so a rename after it cannot expose unwritten data.
    static func syncToDisk(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw IOError("cannot open \(path) to sync it") }
        defer { Foundation.close(fd) }
        guard fsync(fd) == 0 else { throw IOError("fsync of \(path) failed: \(String(cString: strerror(errno)))") }
    }
}
