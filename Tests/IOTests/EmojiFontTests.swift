import Foundation
import Testing
import IO

@Suite struct EmojiFontTests {
    static let realFontInstalled = FileManager.default.fileExists(atPath: EmojiFontReader.notoColorEmoji)

    /// Glyph 1: 3 wide × 2 high RGBA (one transparent pixel); glyph 2: no bitmap; glyph 3: 2 wide × 3 high gray.
    static let rgba: [UInt8] = [255, 0, 0, 255, 0, 255, 0, 255, 9, 9, 9, 0,
                                0, 0, 255, 255, 100, 100, 100, 255, 200, 0, 0, 255]
    static let gray: [UInt8] = [10, 20, 30, 40, 50, 60]
    static func font() -> [UInt8] {
        PrepFixtures.bitmapFont(glyphs: [PrepFixtures.handMadePNG(width: 3, height: 2, colorType: 6, samples: rgba), nil,
                                         PrepFixtures.handMadePNG(width: 2, height: 3, colorType: 0, samples: gray)])
    }

    @Test func handMadeFontGlyphsAreCentredOnWhiteSquares() throws {
        let dir = try PrepScratch()
        PrepFixtures.createFile(atPath: dir.file("f.ttf"), contents: Data(Self.font()))
        let font = try ColorBitmapFont.read(dir.file("f.ttf"))
        #expect(font.glyphs.map(\.id) == [1, 3] && font.ppem == 16)
        #expect(font.glyphs.allSatisfy { $0.imageFormat == 17 })
        let d = try EmojiFontReader.read(dir.file("f.ttf"))
        #expect(d.shape == [2, 3, 3, 3] && d.labels == nil)
        guard case .uint8(let v) = d.pixels else { Issue.record("not uint8"); return }
        // Glyph 1 is 2 high on a side of 3: rows 0–1 (the odd margin goes below), row 2 white.
        let red: [UInt8] = [255, 0, 255, 0, 100, 200, 255, 255, 255]
        let green: [UInt8] = [0, 255, 255, 0, 100, 0, 255, 255, 255]
        let blue: [UInt8] = [0, 0, 255, 255, 100, 0, 255, 255, 255]
        #expect(Array(v[0..<27]) == red + green + blue)
        // Glyph 3 is 2 wide: columns 0–1, column 2 white; gray repeated into R, G and B.
        let plane: [UInt8] = [10, 20, 255, 30, 40, 255, 50, 60, 255]
        #expect(Array(v[27..<54]) == plane + plane + plane)
    }

    @Test func prepareWritesResizedRGB() throws {
        let dir = try PrepScratch()
        PrepFixtures.createFile(atPath: dir.file("f.ttf"), contents: Data(Self.font()))
        let summary = try prepareDataset(.emoji(dir.file("f.ttf")), out: dir.file("e.h5"), options: DatasetOptions(resize: 6))
        #expect(summary.shape == [2, 3, 6, 6] && !summary.hasLabels)
        let d = try WrittenDataset(dir.file("e.h5"))
        #expect(d.shape == [2, 3, 6, 6] && d.dtype == "uint8")
        #expect(d.attributes["source"]?.contains("2 bitmap glyphs") == true)
    }

    @Test func damagedFontsAreOneErrorNamingTheFile() throws {
        let dir = try PrepScratch()
        let good = Self.font()
        var wrongPNG = good
        // Corrupt the first glyph's PNG signature (CBDT starts at 44; its record at 48, the PNG at 57).
        wrongPNG[58] = 0
        let cases: [(String, [UInt8], String)] = [
            ("garbage.ttf", Array("this is not a font at all, just text".utf8), "not a TrueType font"),
            ("empty.ttf", [], "truncated"),
            ("cut.ttf", Array(good.prefix(good.count - 20)), "truncated"),
            ("header.ttf", Array(good.prefix(30)), "truncated"),
            ("png.ttf", wrongPNG, "glyph 1"),
        ]
        for (name, bytes, phrase) in cases {
            let path = dir.file(name)
            PrepFixtures.createFile(atPath: path, contents: Data(bytes))
            #expect { try prepareDataset(.emoji(path), out: dir.file("x.h5")) } throws: { "\($0)".contains(path) && "\($0)".contains(phrase) }
        }
        #expect { try prepareDataset(.emoji(dir.file("missing.ttf")), out: dir.file("x.h5")) } throws: { "\($0)".contains("no such file") }
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.h5")))
    }

    @Test(.enabled(if: realFontInstalled)) func notoColorEmojiHasOnePNGPerBitmapGlyph() throws {
        let path = EmojiFontReader.notoColorEmoji
        let font = try ColorBitmapFont.read(path)
        // Independent count: the PNG signatures in the file (one per glyph bitmap).
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var signatures = 0
        for i in 0..<(bytes.count - 8) where bytes[i] == 0x89 && Array(bytes[i..<(i + 8)]) == signature { signatures += 1 }
        #expect(font.glyphs.count == signatures)
        #expect(font.glyphs.count > 1000)
        #expect(font.glyphs.allSatisfy { $0.imageFormat == 17 })
        let first = try PNGImage.decode(font.glyphs[0].png, name: "glyph")
        #expect(first.channels == 3 && first.width > 64 && first.height > 64)
    }
}
