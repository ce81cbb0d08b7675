import Foundation

/// A NumPy array read from a .npy file: uint8, or float32 (float64 files are converted).
public struct NPYArray: Sendable {
    public let shape: [Int]
    /// The dtype as the header spells it ('|u1', '<f4', '<f8').
    public let dtype: String
    public let values: DatasetContents.Pixels
}

/// Reads NumPy .npy files, format versions 1.0, 2.0 and 3.0 (the header length is 2 bytes in v1, 4 in
/// v2 and v3; v3 headers are UTF-8). Accepted dtypes: '|u1' (also '<u1', '>u1'), '<f4' and '<f8'
/// (converted to float32). C order only; shapes of rank 3 ([N, H, W]) or 4 ([N, C, H, W] / [N, H, W, C]).
public enum NPYReader {
    public static func read(_ path: String) throws -> NPYArray {
        guard FileManager.default.fileExists(atPath: path) else { throw IOError(path: path, "no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw IOError(path: path, "cannot read") }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw IOError(path: path, "not a NumPy .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8; headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw IOError(path: path, "truncated .npy header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }; headerStart = 12
        default:
            throw IOError(path: path, ".npy format version \(major).\(bytes[7]) is not supported (1, 2 or 3)")
        }
        guard bytes.count >= headerStart + headerLength else { throw IOError(path: path, "truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<headerStart + headerLength], as: UTF8.self)
        guard let descr = stringValue(of: "descr", in: header) else {
            throw IOError(path: path, "the .npy header has no 'descr': \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard let fortran = rawValue(of: "fortran_order", in: header) else {
            throw IOError(path: path, "the .npy header has no 'fortran_order'")
        }
        if fortran.hasPrefix("True") {
            throw IOError(path: path, "the array is stored in Fortran order (fortran_order: True); only C order is supported — save it with np.save(path, np.ascontiguousarray(x))")
        }
        guard fortran.hasPrefix("False") else { throw IOError(path: path, "unreadable fortran_order '\(fortran)'") }
        guard let shape = shapeValue(in: header) else { throw IOError(path: path, "the .npy header has no readable 'shape'") }
        guard shape.count == 3 || shape.count == 4 else {
            throw IOError(path: path, "shape \(shape) has rank \(shape.count); expected 3 ([N, H, W]) or 4 ([N, C, H, W] or [N, H, W, C])")
        }
        let itemSize: Int
        switch descr {
        case "|u1", "<u1", ">u1", "u1": itemSize = 1
        case "<f4": itemSize = 4
        case "<f8": itemSize = 8
        default:
            throw IOError(path: path, "dtype '\(descr)' is not supported; use uint8 ('|u1'), float32 ('<f4') or float64 ('<f8')")
        }
        let (count, overflow) = shape.reduce((1, false)) { acc, n in
            let r = acc.0.multipliedReportingOverflow(by: n); return (r.partialValue, acc.1 || r.overflow)
        }
        guard !overflow, count < 1 << 36 else { throw IOError(path: path, "impossible shape \(shape)") }
        let start = headerStart + headerLength, available = bytes.count - start
        guard available == count * itemSize else {
            throw IOError(path: path, available < count * itemSize
                ? "truncated: shape \(shape) of '\(descr)' needs \(count * itemSize) data bytes, the file holds \(available)"
                : "holds \(available) data bytes, more than the \(count * itemSize) its shape \(shape) of '\(descr)' needs")
        }
        let values: DatasetContents.Pixels = bytes.withUnsafeBytes { raw in
            let body = UnsafeRawBufferPointer(rebasing: raw[start...])
            switch itemSize {
            case 1: return .uint8(Array(body))
            case 4: return .float32((0..<count).map {
                Float(bitPattern: UInt32(littleEndian: body.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) })
            default: return .float32((0..<count).map {
                Float(Double(bitPattern: UInt64(littleEndian: body.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) })
            }
        }
        return NPYArray(shape: shape, dtype: descr, values: values)
    }

    /// The text after `'key':` (or `"key":`), leading spaces dropped.
    private static func rawValue(of key: String, in header: String) -> Substring? {
        for quoted in ["'\(key)'", "\"\(key)\""] {
            if let range = header.range(of: quoted) {
                var rest = header[range.upperBound...].drop { $0 == " " }
                guard rest.first == ":" else { return nil }
                rest = rest.dropFirst().drop { $0 == " " }
                return rest
            }
        }
        return nil
    }

    private static func stringValue(of key: String, in header: String) -> String? {
        guard let rest = rawValue(of: key, in: header), let quote = rest.first, quote == "'" || quote == "\"" else { return nil }
        let body = rest.dropFirst()
        guard let end = body.firstIndex(of: quote) else { return nil }
        return String(body[..<end])
    }

    private static func shapeValue(in header: String) -> [Int]? {
        guard let rest = rawValue(of: "shape", in: header), rest.first == "(", let end = rest.firstIndex(of: ")") else { return nil }
        var shape: [Int] = []
        for part in rest[rest.index(after: rest.startIndex)..<end].split(separator: ",") {
            let text = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if text.isEmpty { continue }
            guard let n = Int(text), n >= 0 else { return nil }
            shape.append(n)
        }
        return shape
    }
}
