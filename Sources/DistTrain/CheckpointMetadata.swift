import Foundation
import IO
import Models

extension Checkpoint {
    /// What a checkpoint's attributes say: the model it holds, the configuration of its run, and
    /// (from format version 2) the data it was trained on.
    struct Metadata {
        var model: ModelArchitecture
        var sampleShape: [Int]
        var configuration: TrainingConfiguration
        /// nil for version 1, which did not record it.
        var data: DatasetIdentity?
    }

    /// The root attributes `metadata_checksum` covers, in the order they are hashed.
    static let checkedAttributes = ["format", "format_version", "model", "sample_shape", "configuration", "created",
                                    "data_path", "data_count", "data_sample_shape", "data_dtype", "data_fingerprint"]

    /// FNV-1a 64 (hex) of "name=value\n" for each present attribute of `checkedAttributes`, in that order.
    static func metadataChecksum(_ value: (String) -> String?) -> String {
        var hash = FNV1a64()
        for name in checkedAttributes {
            if let v = value(name) { hash.add("\(name)=\(v)\n") }
        }
        return hash.hex
    }

    /// Writes every attribute, the checksum last.
    static func writeAttributes(_ file: HDF5File, _ m: Metadata) throws {
        guard let data = m.data else { preconditionFailure("a checkpoint written now records its data") }
        let values: [String: String] = [
            "format": format, "format_version": formatVersion, "model": m.model.name,
            "sample_shape": shapeText(m.sampleShape), "configuration": m.configuration.json(),
            "created": ISO8601DateFormatter().string(from: Date()),
            "data_path": data.path, "data_count": String(data.count), "data_sample_shape": shapeText(data.sampleShape),
            "data_dtype": data.elementType, "data_fingerprint": data.fingerprint,
        ]
        for name in checkedAttributes { try file.setAttribute(name, values[name]!) }
        try file.setAttribute("metadata_checksum", metadataChecksum { values[$0] })
    }

    static func shapeText(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: ",") }

    /// "1,8,8" → [1, 8, 8]; nil unless it is a non-empty list of positive integers.
    static func parseShape(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return parts.compactMap { $0 }
    }
}
