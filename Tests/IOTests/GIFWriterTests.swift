import Foundation
import IO
import Testing
import TestSupport

@Suite struct GIFWriterTests {
    /// Three 5×4 gray frames; pixel p of frame f = (37·p + 80·f) mod 256.
    static func grayFrames() -> [PNGImage] {
        (0..<3).map { f in PNGImage(width: 5, height: 4, channels: 1, pixels: (0..<20).map { UInt8((37 * $0 + 80 * f) % 256) }) }
    }

    @Test func grayFramesReadBackExactlyWithLoopingAndDelays() throws {
        let dir = try PrepScratch()
        let path = dir.file("a.gif")
        try writeAnimatedGIF(path: path, frames: Self.grayFrames(), delay: 30, lastDelay: 200)
        let gif = try GIFProbe(path)
        #expect(gif.width == 5 && gif.height == 4)
        #expect(gif.frames.count == 3)
        #expect(gif.globalPaletteSize == 256)
        for (f, frame) in Self.grayFrames().enumerated() {
            #expect(gif.frames[f].map(\.r) == frame.pixels, "frame \(f)")
            #expect(gif.frames[f].allSatisfy { $0.r == $0.g && $0.g == $0.b })
        }
        #expect(gif.delays == [30, 30, 200])
        #expect(gif.loopCount == 0)
        #expect(dir.listing() == ["a.gif"])   // no temporary left beside it
        // Permissions as for any file this process creates (giflib's own open would make it 0600).
        PrepFixtures.createFile(atPath: dir.file("plain"), contents: Data())
        let mode = { (name: String) in try FileManager.default.attributesOfItem(atPath: dir.file(name))[.posixPermissions] as? Int }
        #expect(try mode("a.gif") == mode("plain"))
    }

    @Test func scaleMagnifiesEveryPixel() throws {
        let dir = try PrepScratch()
        let path = dir.file("big.gif")
        try writeAnimatedGIF(path: path, frames: Self.grayFrames(), scale: 3)
        let gif = try GIFProbe(path)
        #expect(gif.width == 15 && gif.height == 12)
        let source = Self.grayFrames()[1]
        for y in 0..<12 { for x in 0..<15 { #expect(gif.frames[1][y * 15 + x].r == source[y / 3, x / 3, 0]) } }
    }

    /// The cube's own colours survive exactly; others go to the nearest level of each channel.
    @Test func rgbFramesUseTheFixedColourCube() throws {
        let dir = try PrepScratch()
        let path = dir.file("c.gif")
        let pixels: [UInt8] = [0, 0, 0, 255, 255, 255, 255, 0, 85, 36, 146, 170,   // on the cube (levels 255·k/7, 255·k/3)
                               20, 130, 100, 250, 5, 200]                           // off it
        try writeAnimatedGIF(path: path, frames: [PNGImage(width: 3, height: 2, channels: 3, pixels: pixels)])
        let gif = try GIFProbe(path)
        let got = gif.frames[0].flatMap { [$0.r, $0.g, $0.b] }
        #expect(Array(got[0..<12]) == Array(pixels[0..<12]))
        // 20 → level 1 of 8 (36), 130 → 4 (146), 100 → 1 of 4 (85); 250 → 7 (255), 5 → 0, 200 → 2 of 4 (170).
        #expect(Array(got[12...]) == [36, 146, 85, 255, 0, 170])
        #expect(gif.delays == [200])
    }

    @Test func framesOfDifferentSizesAreRefusedAndNothingIsWritten() throws {
        let dir = try PrepScratch()
        let path = dir.file("bad.gif")
        let frames = [PNGImage(width: 2, height: 2, channels: 1, pixels: [0, 1, 2, 3]), PNGImage(width: 1, height: 1, channels: 1, pixels: [9])]
        #expect(throws: IOError.self) { try writeAnimatedGIF(path: path, frames: frames) }
        #expect(throws: IOError.self) { try writeAnimatedGIF(path: path, frames: []) }
        #expect(dir.listing().isEmpty)
    }
}
