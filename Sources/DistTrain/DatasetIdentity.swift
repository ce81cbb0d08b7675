import Foundation
import IO

/// What a run was trained on, as a checkpoint records it: the file (absolute path), the number and
/// shape of its samples, their element type, and a fingerprint of their contents. Cheap for any size:
/// only `fingerprintRows` rows spread evenly over /images are read (hyperslab reads).
struct DatasetIdentity: Equatable, CustomStringConvertible {
    var path: String
    var count: Int
    var sampleShape: [Int]
    var elementType: String
    /// FNV-1a 64 (hex) of "count;shape;dtype;" and the stored bytes of rows i·N/R, i < R = min(N, fingerprintRows).
    var fingerprint: String

    static let fingerprintRows = 32

    /// Reads the fingerprint rows of a dataset already checked by `DatasetInfo.inspect`.
    init(_ info: DatasetInfo) throws {
        path = Self.absolute(info.path)
        count = info.count
        sampleShape = info.sampleShape
        elementType = info.elementType
        var hash = FNV1a64()
        hash.add("\(count);\(sampleShape.map(String.init).joined(separator: ","));\(elementType);")
        let file = try HDF5File.open(info.path)
        let rows = min(count, Self.fingerprintRows), width = info.sampleCount
        for i in 0..<rows {
            let row = i * count / rows
            if elementType == "uint8" {
                var bytes = [UInt8](repeating: 0, count: width)
                try bytes.withUnsafeMutableBufferPointer { try file.readRows("images", start: row, count: 1, into: $0.baseAddress!) }
                hash.add(bytes)
            } else {
                var floats = [Float](repeating: 0, count: width)
                try floats.withUnsafeMutableBufferPointer { try file.readRows("images", start: row, count: 1, into: $0.baseAddress!) }
                for f in floats { hash.add(f.bitPattern) }
            }
        }
        fingerprint = hash.hex
    }

    init(path: String, count: Int, sampleShape: [Int], elementType: String, fingerprint: String) {
        self.path = path; self.count = count; self.sampleShape = sampleShape
        self.elementType = elementType; self.fingerprint = fingerprint
    }

    /// The names of the properties that differ ("path", "count", "sample shape", "dtype", "contents").
    func differences(from other: DatasetIdentity) -> [String] {
        var names: [String] = []
        if path != other.path { names.append("path") }
        if count != other.count { names.append("count") }
        if sampleShape != other.sampleShape { names.append("sample shape") }
        if elementType != other.elementType { names.append("dtype") }
        if fingerprint != other.fingerprint { names.append("contents (fingerprint)") }
        return names
    }

    var description: String {
        "\(path) (\(count) samples of [\(sampleShape.map(String.init).joined(separator: ", "))], \(elementType), fingerprint \(fingerprint))"
    }

    /// why: the same file named relative to another directory, or through a symbolic link, is the same data.
    static func absolute(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// 64-bit FNV-1a: tiny, stable across platforms, and easy to recompute in Python.
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }
    mutating func add(_ text: String) { add(text.utf8) }
    mutating func add(_ word: UInt32) { add((0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) }) }

    var hex: String { String(format: "%016llx", value) }
}
