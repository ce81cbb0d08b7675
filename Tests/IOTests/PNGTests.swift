import Foundation
import Testing
import IO

@Suite struct PNGTests {
    @Test func grayWriteReadRoundTripIsExact() throws {
        let dir = try PrepScratch()
        let pixels: [UInt8] = (0..<(7 * 5)).map { (i: Int) -> UInt8 in UInt8((i * 37 + 11) % 256) }
        let image = PNGImage(width: 7, height: 5, channels: 1, pixels: pixels)
        try image.write(to: dir.file("g.png"))
        let back = try PNGImage.read(dir.file("g.png"))
        #expect(back == image)
    }

    @Test func rgbWriteReadRoundTripIsExact() throws {
        let dir = try PrepScratch()
        let pixels: [UInt8] = (0..<(4 * 6 * 3)).map { (i: Int) -> UInt8 in UInt8((i * 53 + 200) % 256) }
        let image = PNGImage(width: 4, height: 6, channels: 3, pixels: pixels)
        try image.write(to: dir.file("c.png"))
        let back = try PNGImage.read(dir.file("c.png"))
        #expect(back.width == 4 && back.height == 6 && back.channels == 3)
        #expect(back.pixels == pixels)
        let expected: UInt8 = pixels[(5 * 4 + 3) * 3 + 2]
        #expect(back[5, 3, 2] == expected)
    }

    @Test func rgbaIsCompositedOnWhite() throws {
        let dir = try PrepScratch()
        // 2×1 RGBA: a half-transparent orange and a fully transparent pixel.
        let samples: [UInt8] = [200, 100, 0, 128, 10, 20, 30, 0]
        let png = PrepFixtures.handMadePNG(width: 2, height: 1, colorType: 6, samples: samples)
        PrepFixtures.createFile(atPath: dir.file("a.png"), contents: Data(png))
        let image = try PNGImage.read(dir.file("a.png"))
        #expect(image.channels == 3)
        func over(_ v: Double, _ a: Double) -> UInt8 { UInt8(((v * a + 255 * (255 - a)) / 255).rounded()) }
        #expect(image.pixels == [over(200, 128), over(100, 128), over(0, 128), 255, 255, 255])
    }

    @Test func grayAlphaStaysOneChannelOnWhite() throws {
        let dir = try PrepScratch()
        let png = PrepFixtures.handMadePNG(width: 3, height: 1, colorType: 4, samples: [0, 255, 0, 0, 100, 51])
        PrepFixtures.createFile(atPath: dir.file("ga.png"), contents: Data(png))
        let image = try PNGImage.read(dir.file("ga.png"))
        #expect(image.channels == 1)
        let blended = UInt8(((100.0 * 51 + 255 * 204) / 255).rounded())
        #expect(image.pixels == [0, 255, blended])
    }

    @Test func paletteIsExpandedToRGB() throws {
        let dir = try PrepScratch()
        let palette: [UInt8] = [10, 20, 30, 250, 128, 7]
        let png = PrepFixtures.handMadePNG(width: 3, height: 1, colorType: 3, samples: [1, 0, 1], palette: palette)
        PrepFixtures.createFile(atPath: dir.file("p.png"), contents: Data(png))
        let image = try PNGImage.read(dir.file("p.png"))
        #expect(image.channels == 3 && image.width == 3)
        #expect(image.pixels == [250, 128, 7, 10, 20, 30, 250, 128, 7])
    }

    @Test func missingAndDamagedFilesNameTheFile() throws {
        let dir = try PrepScratch()
        let missing = dir.file("nope.png")
        #expect { try PNGImage.read(missing) } throws: { "\($0)".contains(missing) }
        let damaged = dir.file("bad.png")
        PrepFixtures.createFile(atPath: damaged, contents: Data("not a png at all".utf8))
        #expect { try PNGImage.read(damaged) } throws: { "\($0)".contains(damaged) }
        let unwritable = dir.file("no/such/dir/x.png")
        #expect { try PNGImage(width: 1, height: 1, channels: 1, pixels: [0]).write(to: unwritable) } throws: { "\($0)".contains(unwritable) }
    }
}
