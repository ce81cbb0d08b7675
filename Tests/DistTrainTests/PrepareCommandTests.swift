import Foundation
import IO
import Testing

/// `disttrain prepare` as users run it, on the real data the Debian packages install (each test is
/// skipped when its package is missing; scripts/setup.sh installs both).
@Suite struct PrepareCommandTests {
    static let fashionMNISTInstalled = FileManager.default.fileExists(atPath: FashionMNIST.trainImages)
    static let emojiInstalled = FileManager.default.fileExists(atPath: EmojiFontReader.notoColorEmoji)

    @Test(.enabled(if: fashionMNISTInstalled)) func fashionMNISTUnpaddedIsNative28WithLabels() throws {
        let dir = try BinaryRunner.temporaryDirectory("prepare-fm28")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try BinaryRunner.run(["prepare", "--pad", "0", "--out", "data/fashion-mnist-28.h5"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let f = try HDF5File.open(dir + "/data/fashion-mnist-28.h5")
        #expect(try f.shape(of: "images") == [60_000, 1, 28, 28])
        #expect(try f.elementType(of: "images") == "uint8")
        let labels = try f.read("labels", as: Int64.self).values
        #expect(labels.count == 60_000)
        #expect(Set(labels) == Set(0..<10))
    }

    @Test(.enabled(if: emojiInstalled)) func emojiIsEveryBitmapGlyphAt64AndDeterministic() throws {
        let dir = try BinaryRunner.temporaryDirectory("prepare-emoji")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let glyphs = try ColorBitmapFont.read(EmojiFontReader.notoColorEmoji).glyphs.count
        var runs: [[UInt8]] = []
        for name in ["a.h5", "b.h5"] {
            let r = try BinaryRunner.run(["prepare", "--source", "emoji", "--out", name], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let f = try HDF5File.open(dir + "/" + name)
            #expect(try f.shape(of: "images") == [glyphs, 3, 64, 64])
            #expect(try f.elementType(of: "images") == "uint8")
            #expect(!f.contains("labels"))
            runs.append(try f.read("images", as: UInt8.self).values)
        }
        #expect(runs[0] == runs[1])
        let pixels = runs[0]
        #expect(Set(pixels).count > 200)
        // Most glyphs are not one flat colour, and the corners are the white background.
        let plane = 64 * 64
        var flat = 0
        for n in 0..<glyphs {
            let red = pixels[(n * 3) * plane..<(n * 3 + 1) * plane]
            if red.min() == red.max() { flat += 1 }
        }
        #expect(flat < glyphs / 100)
        #expect(pixels[0] == 255 && pixels[plane - 1] == 255)
        // --resize overrides the default.
        let small = try BinaryRunner.run(["prepare", "--source", "emoji", "--resize", "16", "--out", "c.h5"], in: dir)
        #expect(small.status == 0, "\(small.stderr)")
        #expect(try HDF5File.open(dir + "/c.h5").shape(of: "images") == [glyphs, 3, 16, 16])
    }

    @Test func damagedFontIsOneErrorNamingTheFileAndNoOutput() throws {
        let dir = try BinaryRunner.temporaryDirectory("prepare-bad-font")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes: [UInt8] = [0, 1, 0, 0, 0, 13]   // a TrueType header claiming 13 tables, cut short
        bytes += [UInt8](repeating: 7, count: 40)
        #expect(FileManager.default.createFile(atPath: dir + "/bad.ttf", contents: Data(bytes)))
        let r = try BinaryRunner.run(["prepare", "--source", "emoji", "--input", "bad.ttf", "--out", "e.h5"], in: dir)
        #expect(r.status != 0)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("bad.ttf") && r.stderr.contains("truncated"), "\(r.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(left == ["bad.ttf"])
    }

    @Test func resizeBelowOneIsRefusedNamingTheOption() throws {
        let r = try BinaryRunner.run(["prepare", "--source", "png-folder", "--input", ".", "--out", "x.h5", "--resize", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--resize must be in 1…4096, got 0"), "\(r.stderr)")
        let points = try BinaryRunner.run(["prepare", "--source", "two-moons", "--out", "x.h5", "--resize", "8"])
        #expect(points.status != 0)
        #expect(points.stderr.contains("--resize does not apply"), "\(points.stderr)")
    }
}
