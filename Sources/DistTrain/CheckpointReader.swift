import Foundation
import IO
import Models
import Tensor

/// An open checkpoint whose attributes have been checked and decoded; `load` then reads its arrays.
/// Opening throws `Checkpoint.Mismatch` for a sound file this build cannot continue (not a disttrain
/// checkpoint, an unknown format version or model), `Checkpoint.Damaged` for metadata that is missing,
/// unparsable or fails `metadata_checksum`, and an HDF5 error for a file that cannot be opened.
final class CheckpointReader {
    let path: String
    let version: Int
    let metadata: Checkpoint.Metadata
    private let file: HDF5File

    init(_ path: String) throws {
        self.path = path
        let file = try HDF5File.open(path)
        guard file.attribute("format") == Checkpoint.format else { throw Checkpoint.Mismatch(description: "\(path) is not a disttrain checkpoint") }
        let versionText = file.attribute("format_version") ?? "none"
        guard let version = Int(versionText), Checkpoint.readableVersions.contains(version) else {
            throw Checkpoint.Mismatch(description: "\(path) has checkpoint format version \(versionText); this build reads versions \(Checkpoint.readableVersions.map(String.init).joined(separator: " and "))")
        }
        self.version = version
        func damaged(_ what: String) -> Checkpoint.Damaged { Checkpoint.Damaged(description: "\(path): \(what)") }
        func required(_ name: String) throws -> String {
            guard let value = file.attribute(name) else { throw damaged("no \(name) attribute") }
            return value
        }

        let modelName = try required("model")
        guard let model = ModelArchitecture.named(modelName) else {
            throw Checkpoint.Mismatch(description: "\(path) holds model '\(modelName)', which this build does not know (it knows \(ModelArchitecture.all.map(\.name).joined(separator: ", ")))")
        }
        let shapeText = try required("sample_shape")
        guard let sampleShape = Checkpoint.parseShape(shapeText) else { throw damaged("sample_shape attribute '\(shapeText)' is not a list of positive integers") }
        let json = try required("configuration")
        do { _ = try JSONSerialization.jsonObject(with: Data(json.utf8)) } catch {
            throw damaged("configuration attribute is not valid JSON: \(Self.describe(error))")
        }
        let configuration: TrainingConfiguration
        do { configuration = try TrainingConfiguration.from(json: json) } catch {
            throw damaged("configuration attribute does not describe a run: \(Self.describe(error))")
        }
        guard configuration.model == model else {
            throw damaged("the configuration says model \(configuration.model.name), the model attribute \(model.name)")
        }
        var data: DatasetIdentity?
        if version >= 2 {
            let countText = try required("data_count"), dataShapeText = try required("data_sample_shape")
            guard let count = Int(countText), count > 0 else { throw damaged("data_count attribute '\(countText)' is not a positive integer") }
            guard let dataShape = Checkpoint.parseShape(dataShapeText) else {
                throw damaged("data_sample_shape attribute '\(dataShapeText)' is not a list of positive integers")
            }
            data = DatasetIdentity(path: try required("data_path"), count: count, sampleShape: dataShape,
                                   elementType: try required("data_dtype"), fingerprint: try required("data_fingerprint"))
        }
        // Last, so that a value that cannot be parsed is reported as such; this catches the rest.
        if let stored = file.attribute("metadata_checksum") {
            let computed = Checkpoint.metadataChecksum { file.attribute($0) }
            guard stored == computed else {
                throw damaged("metadata_checksum \(stored) does not match the attributes (\(computed)): they were altered or damaged")
            }
        } else if version >= 2 {
            throw damaged("no metadata_checksum attribute")
        }
        metadata = Checkpoint.Metadata(model: model, sampleShape: sampleShape, configuration: configuration, data: data)
        self.file = file
    }

    /// Throws `Checkpoint.Mismatch` unless this checkpoint holds `model` for samples of `sampleShape`.
    func requireMatch(model: ModelArchitecture, sampleShape: [Int], options: ModelOptions = ModelOptions()) throws {
        guard metadata.model == model, metadata.sampleShape == sampleShape else {
            throw Checkpoint.Mismatch(description: "\(path) holds model \(metadata.model.name) for samples of shape [\(Checkpoint.shapeText(metadata.sampleShape))], not \(model.name) for [\(Checkpoint.shapeText(sampleShape))]")
        }
        let saved = metadata.configuration.modelOptions
        guard saved == options else {
            throw Checkpoint.Mismatch(description: "\(path) holds \(model.name) with options [\(saved.commandLine)], not [\(options.commandLine)]")
        }
    }

    var containsEMA: Bool { file.contains("ema") }
    var containsEMABuffers: Bool { file.contains("ema_buffers") }

    /// The per-channel statistics of a run trained with --normalize-data (nil without them).
    func dataNormalization() throws -> DataNormalization? {
        guard file.contains("data_normalization") else { return nil }
        let mean = try file.read("data_normalization/mean", as: Double.self), variance = try file.read("data_normalization/variance", as: Double.self)
        guard mean.shape.count == 1, mean.shape == variance.shape, mean.shape[0] == metadata.sampleShape.first, metadata.sampleShape.count == 3,
              variance.values.allSatisfy({ $0 >= 0 && $0.isFinite }), mean.values.allSatisfy(\.isFinite) else {
            throw IOError(path: path, "/data_normalization holds mean \(mean.shape) and variance \(variance.shape); expected finite [C] of images [\(Checkpoint.shapeText(metadata.sampleShape))], variances not negative")
        }
        return DataNormalization(mean: mean.values, variance: variance.values)
    }

    /// Loads weights, buffers, optimizer state and EMA into place and returns the run state. With a
    /// `rank`, that rank's own BatchNorm statistics (and their EMA) replace the average (to continue a run
    /// exactly). An EMA the file lacks starts as a copy of the weights (or statistics).
    func load(into model: Denoiser, optimizer: Adam?, ema: FloatBuffer?, emaBuffers: FloatBuffer? = nil, rank: Int? = nil) throws -> Checkpoint.Contents {
        try readTensors(group: "model", table: model.parameterTable, buffer: model.parameters)
        try readTensors(group: "model", table: model.bufferTable, buffer: model.buffers)
        if let rank, model.buffers.count > 0, file.contains("ranks/buffers") {
            let shape = try file.shape(of: "ranks/buffers")
            guard shape.count == 2, shape[1] == model.buffers.count, rank < shape[0] else {
                throw IOError(path: path, "/ranks/buffers has shape \(shape); expected [ranks, \(model.buffers.count)]")
            }
            try file.readRows("ranks/buffers", start: rank, count: 1, into: model.buffers.pointer)
        }
        if let emaBuffers {
            if !containsEMABuffers {
                emaBuffers.copy(from: model.buffers)
            } else if let rank, model.buffers.count > 0, file.contains("ranks/ema_buffers") {
                let shape = try file.shape(of: "ranks/ema_buffers")
                guard shape.count == 2, shape[1] == model.buffers.count, rank < shape[0] else {
                    throw IOError(path: path, "/ranks/ema_buffers has shape \(shape); expected [ranks, \(model.buffers.count)]")
                }
                try file.readRows("ranks/ema_buffers", start: rank, count: 1, into: emaBuffers.pointer)
            } else {
                try readTensors(group: "ema_buffers", table: model.bufferTable, buffer: emaBuffers)
            }
        }
        if let optimizer {
            try readTensors(group: "optimizer/exp_avg", table: model.parameterTable, buffer: optimizer.firstMoment)
            try readTensors(group: "optimizer/exp_avg_sq", table: model.parameterTable, buffer: optimizer.secondMoment)
            optimizer.step = Int(try file.read("optimizer/step", as: Int64.self).values[0])
        }
        if let ema {
            if file.contains("ema") {
                try readTensors(group: "ema", table: model.parameterTable, buffer: ema)
            } else {
                ema.copy(from: model.parameters)
            }
        }
        return Checkpoint.Contents(step: Int(try scalar("state/step", as: Int64.self)),
                                   learningRate: try scalar("state/learning_rate", as: Double.self),
                                   ranks: try rankStates())
    }

    private func scalar<T: HDF5Element>(_ name: String, as type: T.Type) throws -> T {
        guard let value = try file.read(name, as: T.self).values.first else { throw IOError(path: path, "/\(name) is empty") }
        return value
    }

    /// /ranks/rng [W, 3] and /ranks/data [W, 2], W the configuration's number of ranks.
    private func rankStates() throws -> [RankState] {
        let ranks = metadata.configuration.worldSize
        let rng = try file.read("ranks/rng", as: Int64.self), data = try file.read("ranks/data", as: Int64.self)
        guard rng.shape == [ranks, RankState.rngColumns], data.shape == [ranks, RankState.dataColumns] else {
            throw IOError(path: path, "/ranks/rng has shape \(rng.shape) and /ranks/data \(data.shape); the run had \(ranks) rank(s), so expected [\(ranks), 3] and [\(ranks), 2]")
        }
        return (0..<ranks).map { r in
            RankState(rngRow: rng.values[(3 * r)..<(3 * r + 3)], dataRow: data.values[(2 * r)..<(2 * r + 2)])
        }
    }

    private func readTensors(group: String, table: ParameterTable, buffer: FloatBuffer) throws {
        for e in table.entries {
            let name = "\(group)/\(e.name)"
            let shape = try file.shape(of: name)
            guard shape == e.shape else { throw IOError("\(path): \(name) has shape \(shape), the model expects \(e.shape)") }
            try file.readRows(name, start: 0, count: e.shape[0], into: buffer.pointer + e.offset)
        }
    }

    /// A decoding error as one line: where in the JSON, and what.
    static func describe(_ error: Error) -> String {
        if let e = error as? DecodingError {
            switch e {
            case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c):
                let at = c.codingPath.map(\.stringValue).joined(separator: ".")
                let cause = c.underlyingError.map { " (\(describe($0)))" } ?? ""
                return (at.isEmpty ? "" : "\(at): ") + c.debugDescription + cause
            @unknown default: return "\(error)"
            }
        }
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? "\(error)"
    }
}
