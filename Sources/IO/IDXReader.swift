import CZlib
import Foundation

/// An IDX array (the MNIST / Fashion-MNIST file format) of unsigned bytes.
public struct IDXArray: Sendable, Equatable {
    public let shape: [Int]
    public let bytes: [UInt8]
}

/// Reads IDX files, gzip-compressed or plain (zlib's gzread passes uncompressed files through).
///
/// Layout: 2 zero bytes, a type code (0x08 = unsigned byte, the only one accepted), the number of
/// dimensions, that many big-endian 32-bit sizes, then the values in C order. Images are [N, H, W],
/// labels [N].
public enum IDXReader {
    public static func read(_ path: String) throws -> IDXArray {
        guard FileManager.default.fileExists(atPath: path) else { throw IOError(path: path, "no such file") }
        guard let file = gzopen(path, "rb") else {
            throw IOError(path: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(file) }
        func readExactly(_ count: Int, into buffer: UnsafeMutableRawPointer) throws -> Int {
            var done = 0
            while done < count {
                let chunk = UInt32(min(count - done, 1 << 24))
                let got = gzread(file, buffer + done, chunk)
                if got < 0 {
                    var code: Int32 = 0
                    let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
                    throw IOError(path: path, "cannot read IDX data (\(message)); the file is damaged or truncated")
                }
                if got == 0 { break }
                done += Int(got)
            }
            return done
        }
        var magic = [UInt8](repeating: 0, count: 4)
        guard try readExactly(4, into: &magic) == 4 else { throw IOError(path: path, "truncated IDX header") }
        guard magic[0] == 0, magic[1] == 0 else {
            throw IOError(path: path, "not an IDX file (magic bytes \(magic.map { String($0) }.joined(separator: " ")))")
        }
        guard magic[2] == 0x08 else {
            throw IOError(path: path, String(format: "IDX element type 0x%02X is not supported; only unsigned bytes (0x08)", magic[2]))
        }
        let rank = Int(magic[3])
        guard (1...4).contains(rank) else { throw IOError(path: path, "IDX rank \(rank) is not supported (1 to 4)") }
        var sizes = [UInt8](repeating: 0, count: 4 * rank)
        guard try readExactly(4 * rank, into: &sizes) == 4 * rank else { throw IOError(path: path, "truncated IDX header") }
        let shape = (0..<rank).map { d in sizes[4 * d..<4 * d + 4].reduce(0) { $0 << 8 | Int($1) } }
        let (count, overflow) = shape.reduce((1, false)) { acc, n in
            let r = acc.0.multipliedReportingOverflow(by: n); return (r.partialValue, acc.1 || r.overflow)
        }
        guard !overflow, count < 1 << 36 else { throw IOError(path: path, "impossible IDX shape \(shape)") }
        var bytes = [UInt8](repeating: 0, count: count)
        let got = try bytes.withUnsafeMutableBytes { try readExactly(count, into: $0.baseAddress!) }
        guard got == count else {
            throw IOError(path: path, "truncated: shape \(shape) needs \(count) data bytes, the file holds \(got)")
        }
        var extra: UInt8 = 0
        guard try readExactly(1, into: &extra) == 0 else {
            throw IOError(path: path, "holds more data than its shape \(shape) describes")
        }
        return IDXArray(shape: shape, bytes: bytes)
    }

    /// Images [N, H, W] as [N, 1, H, W] uint8, with labels [N] from `labels` when given.
    public static func readImages(_ path: String, labels labelPath: String? = nil) throws -> DatasetContents {
        let images = try read(path)
        guard images.shape.count == 3 else {
            throw IOError(path: path, "IDX images must have 3 dimensions [N, H, W], not \(images.shape)")
        }
        var labels: [Int64]? = nil
        if let labelPath {
            let array = try read(labelPath)
            guard array.shape.count == 1 else {
                throw IOError(path: labelPath, "IDX labels must have 1 dimension [N], not \(array.shape)")
            }
            guard array.shape[0] == images.shape[0] else {
                throw IOError(path: labelPath, "\(array.shape[0]) labels for the \(images.shape[0]) images of \(path)")
            }
            labels = array.bytes.map { Int64($0) }
        }
        let n = images.shape[0], h = images.shape[1], w = images.shape[2]
        var source = "IDX \(path)"
        if let labelPath { source += " with labels \(labelPath)" }
        return DatasetContents(shape: [n, 1, h, w], pixels: .uint8(images.bytes), labels: labels, source: source)
    }
}
