import CZlib
import Foundation
import IO

// Fixtures for the prepare tests, written by the tests themselves (gzip IDX, .npy, CIFAR, PNG by hand).

/// A fresh directory removed when the value is released.
final class PrepScratch {
    let path: String
    init() throws {
        setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1)
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("disttrain-prep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    /// Names in the directory (hidden ones too: a leftover temporary would show up).
    func listing(_ sub: String = "") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: sub.isEmpty ? path : file(sub))) ?? []).sorted()
    }
}

enum PrepFixtures {
    static func createFile(atPath path: String, contents: Data) {
        precondition(FileManager.default.createFile(atPath: path, contents: contents), "cannot create \(path)")
    }

    /// An IDX ubyte file: 0 0 8 rank, big-endian sizes, data; gzip-compressed through zlib when `gzip`.
    static func writeIDX(_ path: String, shape: [Int], bytes: [UInt8], gzip: Bool = true) {
        var out: [UInt8] = [0, 0, 8, UInt8(shape.count)]
        for n in shape { out += [UInt8(n >> 24 & 255), UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)] }
        out += bytes
        if gzip {
            let f = gzopen(path, "wb")!
            let written = out.withUnsafeBytes { gzwrite(f, $0.baseAddress, UInt32($0.count)) }
            precondition(Int(written) == out.count)
            gzclose(f)
        } else {
            createFile(atPath: path, contents: Data(out))
        }
    }

    /// A .npy file with `descr`, `shape` and raw little-endian `body`, format version `major`.
    static func writeNPY(_ path: String, descr: String, shape: [Int], body: [UInt8], fortran: Bool = false, major: UInt8 = 1) {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shapeText), }"
        let prefix = major == 1 ? 10 : 12
        while (prefix + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let n = header.utf8.count
        out += major == 1 ? [UInt8(n & 255), UInt8(n >> 8)] : [UInt8(n & 255), UInt8(n >> 8 & 255), UInt8(n >> 16 & 255), UInt8(n >> 24)]
        out += Array(header.utf8) + body
        createFile(atPath: path, contents: Data(out))
    }

    static func littleEndian(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    static func littleEndian(_ values: [Double]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    /// A PNG built by hand (8-bit, no interlace), of colour type 0 gray, 2 RGB, 3 palette (`palette`:
    /// RGB triples), 4 gray+alpha or 6 RGBA.
    static func handMadePNG(width: Int, height: Int, colorType: UInt8, samples: [UInt8], palette: [UInt8] = []) -> [UInt8] {
        let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(colorType)]!
        precondition(samples.count == width * height * channels)
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        var out: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
        func chunk(_ type: String, _ data: [UInt8]) {
            let body = Array(type.utf8) + data
            let crc = body.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
            out += be32(data.count) + body + be32(Int(crc))
        }
        chunk("IHDR", be32(width) + be32(height) + [8, colorType, 0, 0, 0])
        if colorType == 3 { chunk("PLTE", palette) }
        var raw: [UInt8] = []
        for y in 0..<height { raw.append(0); raw += samples[(y * width * channels)..<((y + 1) * width * channels)] }
        var length = compressBound(UInt(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(length))
        precondition(compress(&compressed, &length, raw, UInt(raw.count)) == Z_OK)
        chunk("IDAT", Array(compressed[..<Int(length)]))
        chunk("IEND", [])
        return out
    }

    /// A minimal TrueType font holding only CBLC and CBDT: one strike of `ppem`, glyph IDs 1…n with one
    /// index subtable of index format 1 and image format 17 (small metrics, length, PNG); a nil glyph
    /// has no bitmap (a zero-length entry).
    static func bitmapFont(glyphs: [[UInt8]?], ppem: UInt8 = 16) -> [UInt8] {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 255), UInt8(v & 255)] }
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        var cbdt: [UInt8] = be16(3) + be16(0)
        var offsets = [0]
        for glyph in glyphs {
            if let png = glyph { cbdt += [16, 16, 0, 16, 16] + be32(png.count) + png }   // height, width, bearings, advance
            offsets.append(cbdt.count - 4)
        }
        let n = glyphs.count
        var cblc: [UInt8] = be16(3) + be16(0) + be32(1)
        let arrayOffset = 8 + 48
        let subtable = be16(1) + be16(17) + be32(4) + offsets.flatMap(be32)   // imageDataOffset 4: past CBDT's header
        cblc += be32(arrayOffset) + be32(8 + subtable.count) + be32(1) + be32(0)
        cblc += [UInt8](repeating: 0, count: 24)                              // hori and vert line metrics
        cblc += be16(1) + be16(n) + [ppem, ppem, 32, 1]
        cblc += be16(1) + be16(n) + be32(8) + subtable
        // Table directory: version 1.0, 2 tables, then the tables in tag order.
        let cbdtOffset = 12 + 2 * 16, cblcOffset = cbdtOffset + cbdt.count
        var font: [UInt8] = be32(0x0001_0000) + be16(2) + be16(32) + be16(1) + be16(0)
        font += Array("CBDT".utf8) + be32(0) + be32(cbdtOffset) + be32(cbdt.count)
        font += Array("CBLC".utf8) + be32(0) + be32(cblcOffset) + be32(cblc.count)
        return font + cbdt + cblc
    }

    /// CIFAR-10 records: label byte then 3072 pixel bytes, record r's pixel i = (r·7 + i) mod 256.
    static func cifarRecords(labels: [UInt8], offset: Int = 0) -> [UInt8] {
        var out: [UInt8] = []
        for (r, label) in labels.enumerated() {
            out.append(label)
            for i in 0..<3072 { out.append(UInt8(((r + offset) * 7 + i) % 256)) }
        }
        return out
    }
}

/// The parts of a written dataset file the tests check.
struct WrittenDataset {
    let shape: [Int]
    let dtype: String
    let bytes: [UInt8]
    let floats: [Float]
    let labels: [Int64]?
    let attributes: [String: String]
    let labelType: String?

    init(_ path: String) throws {
        let file = try HDF5File.open(path)
        shape = try file.shape(of: "images")
        dtype = try file.elementType(of: "images")
        bytes = dtype == "uint8" ? try file.read("images", as: UInt8.self).values : []
        floats = dtype == "float32" ? try file.read("images", as: Float.self).values : []
        labels = file.contains("labels") ? try file.read("labels", as: Int64.self).values : nil
        var a: [String: String] = [:]
        for name in ["format", "version", "source", "split", "class_names"] { a[name] = file.attribute(name) }
        attributes = a
        labelType = file.contains("labels") ? try file.elementType(of: "labels") : nil
    }
}
