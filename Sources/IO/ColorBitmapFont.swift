import Foundation

/// The PNG bitmap glyphs of a colour font's CBLC/CBDT tables (as Noto Color Emoji ships them), read
/// from the TrueType table directory by hand: no font library is needed for bitmaps stored as PNG.
///
/// Layout (OpenType spec, big-endian): the table directory lists the tables' offsets; CBLC holds
/// bitmap strikes (one per pixel size), each with index subtables mapping glyph ranges to offsets into
/// CBDT; CBDT holds each glyph as image format 17 (small metrics, length, PNG), 18 (big metrics,
/// length, PNG) or 19 (length, PNG). Index formats 1 to 5 are read; a glyph with no data is skipped.
/// Every offset is checked against the file, so a damaged font is one error naming the file.
public struct ColorBitmapFont: Sendable {
    public struct Glyph: Sendable {
        public let id: Int
        /// CBDT image format: 17, 18 or 19.
        public let imageFormat: Int
        public let png: [UInt8]
    }

    public let path: String
    /// Pixels per em of the strike read (the largest the font has).
    public let ppem: Int
    /// The strike's bitmap glyphs in glyph-ID order.
    public let glyphs: [Glyph]

    public static func read(_ path: String) throws -> ColorBitmapFont {
        guard FileManager.default.fileExists(atPath: path) else { throw IOError(path: path, "no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw IOError(path: path, "cannot read the file") }
        return try parse([UInt8](data), path: path)
    }

    /// Parses font bytes; errors name `path`.
    public static func parse(_ bytes: [UInt8], path: String) throws -> ColorBitmapFont {
        let file = FontBytes(bytes: bytes, path: path)
        let tables = try tableDirectory(file)
        guard let cblc = tables["CBLC"], let cbdt = tables["CBDT"] else {
            throw IOError(path: path, "has no CBLC/CBDT tables (colour bitmap glyphs); tables: \(tables.keys.sorted().joined(separator: " "))")
        }
        let major = try file.u16(cblc.offset, "CBLC version")
        guard major == 2 || major == 3 else { throw IOError(path: path, "CBLC version \(major) is not 2 or 3") }
        let strikes = try file.u32(cblc.offset + 4, "CBLC numSizes")
        guard strikes > 0 else { throw IOError(path: path, "CBLC holds no bitmap strikes") }
        guard strikes < 256 else { throw IOError(path: path, "CBLC claims \(strikes) strikes; the table is damaged") }
        // Each BitmapSize record is 48 bytes; ppemY is at 45. Read the largest strike.
        var best = 0, bestPPEM = -1
        for s in 0..<strikes {
            let ppem = try file.u8(cblc.offset + 8 + 48 * s + 45, "BitmapSize ppemY")
            if ppem > bestPPEM { best = s; bestPPEM = ppem }
        }
        let record = cblc.offset + 8 + 48 * best
        let arrayOffset = try cblc.offset + file.u32(record, "indexSubTableArrayOffset")
        let subtables = try file.u32(record + 8, "numberOfIndexSubTables")
        var found: [Int: Glyph] = [:]
        for k in 0..<subtables {
            let entry = arrayOffset + 8 * k
            let first = try file.u16(entry, "firstGlyphIndex"), last = try file.u16(entry + 2, "lastGlyphIndex")
            guard first <= last else { throw IOError(path: path, "CBLC index subtable \(k) has glyphs \(first)…\(last)") }
            let header = try arrayOffset + file.u32(entry + 4, "additionalOffsetToIndexSubtable")
            for (id, range) in try glyphRanges(file, header: header, first: first, last: last) {
                let imageFormat = try file.u16(header + 2, "imageFormat")
                let png = try glyphPNG(file, at: cbdt.offset + range.lowerBound, end: cbdt.offset + range.upperBound,
                                       imageFormat: imageFormat, glyph: id)
                found[id] = Glyph(id: id, imageFormat: imageFormat, png: png)
            }
        }
        guard !found.isEmpty else { throw IOError(path: path, "the CBLC strike of \(bestPPEM) ppem holds no glyph bitmaps") }
        return ColorBitmapFont(path: path, ppem: bestPPEM, glyphs: found.keys.sorted().map { found[$0]! })
    }

    /// Tag → (offset, length) of every table, each checked to lie inside the file.
    static func tableDirectory(_ file: FontBytes) throws -> [String: (offset: Int, length: Int)] {
        let version = try file.u32(0, "sfnt version")
        guard version == 0x0001_0000 || version == 0x7472_7565 else {   // 1.0 or 'true'
            let hint = version == 0x4F54_544F ? " (a CFF 'OTTO' font has no CBDT bitmaps)" : version == 0x7474_6366 ? " (a font collection; pass a single font)" : ""
            throw IOError(path: file.path, String(format: "not a TrueType font (sfnt version 0x%08X)", UInt32(version)) + hint)
        }
        let count = try file.u16(4, "numTables")
        var tables: [String: (offset: Int, length: Int)] = [:]
        for i in 0..<count {
            let record = 12 + 16 * i
            let tag = String(decoding: try file.slice(record, 4, "table record"), as: UTF8.self)
            let offset = try file.u32(record + 8, "table offset"), length = try file.u32(record + 12, "table length")
            _ = try file.slice(offset, length, "table \(tag)")
            tables[tag] = (offset, length)
        }
        return tables
    }

    /// Each glyph of an index subtable with data, as its byte range relative to the start of CBDT.
    static func glyphRanges(_ file: FontBytes, header: Int, first: Int, last: Int) throws -> [(Int, Range<Int>)] {
        let indexFormat = try file.u16(header, "indexFormat")
        let imageData = try file.u32(header + 4, "imageDataOffset")
        let n = last - first + 1
        var ranges: [(Int, Range<Int>)] = []
        func add(_ id: Int, _ start: Int, _ end: Int) throws {
            guard start <= end else { throw IOError(path: file.path, "CBLC offsets of glyph \(id) run backwards") }
            if end > start { ranges.append((id, (imageData + start)..<(imageData + end))) }
        }
        switch indexFormat {
        case 1, 3:   // offsets[n + 1], 32- or 16-bit
            let wide = indexFormat == 1
            let offsets = try (0...n).map { i in try wide ? file.u32(header + 8 + 4 * i, "sbitOffsets") : file.u16(header + 8 + 2 * i, "sbitOffsets") }
            for i in 0..<n { try add(first + i, offsets[i], offsets[i + 1]) }
        case 2:      // every glyph imageSize bytes, in order
            let size = try file.u32(header + 8, "imageSize")
            for i in 0..<n { try add(first + i, i * size, (i + 1) * size) }
        case 4:      // numGlyphs, then (glyphID, offset) pairs, one past the end
            let count = try glyphCount(file, header + 8)
            let pairs = try (0...count).map { i in try (file.u16(header + 12 + 4 * i, "glyphArray"), file.u16(header + 14 + 4 * i, "glyphArray")) }
            for i in 0..<count { try add(pairs[i].0, pairs[i].1, pairs[i + 1].1) }
        case 5:      // imageSize, big metrics (8 bytes), numGlyphs, glyph IDs
            let size = try file.u32(header + 8, "imageSize")
            let count = try glyphCount(file, header + 20)
            for i in 0..<count { try add(file.u16(header + 24 + 2 * i, "glyphIdArray"), i * size, (i + 1) * size) }
        default:
            throw IOError(path: file.path, "CBLC index format \(indexFormat) is not one of 1…5")
        }
        return ranges
    }

    /// A subtable's numGlyphs, at most the 65,536 glyph IDs there can be.
    static func glyphCount(_ file: FontBytes, _ offset: Int) throws -> Int {
        let count = try file.u32(offset, "numGlyphs")
        guard count <= 65_536 else { throw IOError(path: file.path, "CBLC index subtable claims \(count) glyphs; the table is damaged") }
        return count
    }

    /// The PNG bytes of a glyph record in CBDT, after its metrics and length.
    static func glyphPNG(_ file: FontBytes, at start: Int, end: Int, imageFormat: Int, glyph: Int) throws -> [UInt8] {
        let metrics: Int
        switch imageFormat {
        case 17: metrics = 5   // smallGlyphMetrics
        case 18: metrics = 8   // bigGlyphMetrics
        case 19: metrics = 0   // metrics are in CBLC
        default:
            throw IOError(path: file.path, "glyph \(glyph) uses CBDT image format \(imageFormat); only the PNG formats 17, 18 and 19 are read")
        }
        let length = try file.u32(start + metrics, "CBDT dataLen of glyph \(glyph)")
        guard start + metrics + 4 + length <= end else {
            throw IOError(path: file.path, "CBDT record of glyph \(glyph) claims \(length) PNG bytes, more than its \(end - start - metrics - 4)")
        }
        return Array(try file.slice(start + metrics + 4, length, "PNG of glyph \(glyph)"))
    }
}

/// Big-endian reads from a font's bytes, each checked against the end of the file.
struct FontBytes {
    let bytes: [UInt8]
    let path: String

    func slice(_ offset: Int, _ count: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else {
            throw IOError(path: path, "truncated or damaged font: \(what) (\(count) bytes at offset \(offset)) lies outside the file's \(bytes.count) bytes")
        }
        return bytes[offset..<(offset + count)]
    }

    func u8(_ offset: Int, _ what: String) throws -> Int { Int(try slice(offset, 1, what).first!) }
    func u16(_ offset: Int, _ what: String) throws -> Int { try slice(offset, 2, what).reduce(0) { $0 << 8 | Int($1) } }
    func u32(_ offset: Int, _ what: String) throws -> Int { try slice(offset, 4, what).reduce(0) { $0 << 8 | Int($1) } }
}
