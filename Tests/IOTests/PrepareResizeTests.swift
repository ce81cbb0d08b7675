import Foundation
import Testing
import IO

@Suite struct PrepareResizeTests {
    /// 4×4, pixel (y, x) = 16·y + 4·x, whose 2×2 blocks have integer means.
    static let ramp: [UInt8] = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60]

    @Test func halvingGivesTheBlockMeans() {
        let out = ImageResize.resize(Self.ramp, planes: 1, height: 4, width: 4, toHeight: 2, width: 2)
        // Block (0, 0): 0, 4, 16, 20 → 10; (0, 1): 8, 12, 24, 28 → 18; one row of blocks down adds 32.
        #expect(out == [10, 18, 42, 50])
    }

    @Test func halvingRoundsHalfUp() {
        let out = ImageResize.resize([0, 1, 0, 0, 1, 1, 1, 1] as [UInt8], planes: 2, height: 2, width: 2, toHeight: 1, width: 1)
        #expect(out == [0, 1])   // 0.25 → 0, 1 → 1
        let half = ImageResize.resize([0, 1, 1, 0] as [UInt8], planes: 1, height: 2, width: 2, toHeight: 1, width: 1)
        #expect(half == [1])     // 0.5 → 1
    }

    @Test func ownSizeIsUnchanged() {
        let values: [UInt8] = (0..<75).map { (i: Int) -> UInt8 in UInt8(i * 97 % 256) }
        #expect(ImageResize.resize(values, planes: 3, height: 5, width: 5, toHeight: 5, width: 5) == values)
        let floats: [Float] = [-1, 0.25, 0.5, 1]
        #expect(ImageResize.resize(floats, planes: 1, height: 2, width: 2, toHeight: 2, width: 2) == floats)
    }

    @Test func fractionalShrinkWeighsPartlyCoveredPixels() {
        // 3 → 2 along a row: outputs cover [0, 1.5) and [1.5, 3): (a + b/2)/1.5 and (b/2 + c)/1.5.
        let out = ImageResize.resize([30, 60, 90] as [UInt8], planes: 1, height: 1, width: 3, toHeight: 1, width: 2)
        #expect(out == [40, 80])
    }

    @Test func growingIsBilinearWithAlignedCentres() {
        // 2 → 4: sources at −¼, ¼, ¾, 1¼ in source pixels, clamped at the edges.
        let out = ImageResize.resize([0, 100] as [UInt8], planes: 1, height: 1, width: 2, toHeight: 1, width: 4)
        #expect(out == [0, 25, 75, 100])
        let floats = ImageResize.resize([-1, 1] as [Float], planes: 1, height: 2, width: 1, toHeight: 4, width: 1)
        #expect(floats == [-1, -0.5, 0.5, 1])
    }

    @Test func prepareResizesAfterPadding() throws {
        let dir = try PrepScratch()
        PrepFixtures.writeIDX(dir.file("i.gz"), shape: [2, 2, 2], bytes: [40, 40, 40, 40, 8, 8, 8, 8])
        // Padding 1 makes 4×4 (the image in the middle, black around), halved to 2×2: each block
        // holds one image pixel and three black ones.
        let summary = try prepareDataset(.idx(images: dir.file("i.gz"), labels: nil), out: dir.file("d.h5"),
                                         options: DatasetOptions(pad: 1, resize: 2))
        #expect(summary.shape == [2, 1, 2, 2])
        let d = try WrittenDataset(dir.file("d.h5"))
        #expect(d.bytes == [10, 10, 10, 10, 2, 2, 2, 2])
    }

    @Test func nonSquareAndZeroSizeAreRefusedNamingTheOption() throws {
        let dir = try PrepScratch()
        PrepFixtures.writeIDX(dir.file("i.gz"), shape: [1, 3, 2], bytes: [1, 2, 3, 4, 5, 6])
        #expect { try prepareDataset(.idx(images: dir.file("i.gz"), labels: nil), out: dir.file("x.h5"), options: DatasetOptions(resize: 2)) }
            throws: { "\($0)".contains("--resize") && "\($0)".contains("3 high and 2 wide") }
        #expect { try prepareDataset(.idx(images: dir.file("i.gz"), labels: nil), out: dir.file("x.h5"), options: DatasetOptions(pad: 1, resize: 0)) }
            throws: { "\($0)".contains("--resize must be at least 1") }
        #expect(dir.listing() == ["i.gz"])
    }
}
