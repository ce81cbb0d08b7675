import Foundation
import Testing
import IO

@Suite struct ImageGridTests {
    @Test func gridSizeBorderAndKnownPixels() throws {
        let dir = try PrepScratch()
        // 5 RGB images of 3×4 (H×W): image n, channel c, pixel p = (n + c + p) / 10 − 1 (some beyond ±1).
        let (n, c, h, w) = (5, 3, 3, 4)
        var images = [Float](repeating: 0, count: n * c * h * w)
        for i in images.indices { images[i] = Float(i % 23) / 10 - 1 }
        images[4 * c * h * w + 0] = 0      // image 4, red, (0, 0)
        images[4 * c * h * w + h * w + 1] = 2.5   // image 4, green, (0, 1): clamped to 1
        images[4 * c * h * w + 2 * h * w + w] = -7  // image 4, blue, (1, 0): clamped to −1
        let path = dir.file("grid.png")
        try images.withUnsafeBufferPointer {
            try writeImageGrid(path: path, images: $0.baseAddress!, count: n, channels: c, height: h, width: w)
        }
        let grid = try PNGImage.read(path)
        // ⌈√5⌉ = 3 columns, 2 rows, 2-pixel borders.
        #expect(grid.width == 3 * w + 2 * 4 && grid.height == 2 * h + 2 * 3 && grid.channels == 3)
        // Image 4 sits in row 1, column 1: top = 2 + (3 + 2), left = 2 + (4 + 2).
        let top = 7, left = 8
        #expect(grid[top, left, 0] == 128)        // round((0 + 1) · 127.5) = 128
        #expect(grid[top, left + 1, 1] == 255)
        #expect(grid[top + 1, left, 2] == 0)
        // Image 0's pixel (2, 3), green: value index 1·12 + 2·4 + 3 = 23 → 23 % 23 = 0 → −1 → 0.
        #expect(grid[2 + 2, 2 + 3, 1] == 0)
        // Image 1's pixel (1, 2), red: index 36 + 6 = 42 → 42 % 23 = 19 → 0.9 → round(1.9 · 127.5) = 242.
        #expect(grid[2 + 1, 2 + 6 + 2, 0] == UInt8(((Float(19) / 10 - 1 + 1) * 127.5).rounded()))
        // Borders and the empty sixth cell are black.
        #expect(grid[0, 0, 0] == 0 && grid[1, 10, 2] == 0 && grid[top - 1, left, 0] == 0)
        #expect(grid[top, 2 + 2 * (w + 2) + 1, 0] == 0)
    }

    @Test func grayGridWithExplicitColumns() throws {
        let dir = try PrepScratch()
        let images: [Float] = [-1, 1, 0, 0.5, /* image 1 */ 1, 1, 1, 1, /* image 2 */ -1, -1, -1, .nan]
        let path = dir.file("gray.png")
        try images.withUnsafeBufferPointer {
            try writeImageGrid(path: path, images: $0.baseAddress!, count: 3, channels: 1, height: 2, width: 2, columns: 1)
        }
        let grid = try PNGImage.read(path)
        #expect(grid.channels == 1 && grid.width == 2 + 4 && grid.height == 3 * 2 + 2 * 4)
        #expect(grid[2, 2, 0] == 0 && grid[2, 3, 0] == 255 && grid[3, 2, 0] == 128 && grid[3, 3, 0] == 191)
        #expect(grid[6, 2, 0] == 255 && grid[11, 3, 0] == 0)
    }

    @Test func badArgumentsThrowNamingTheFile() throws {
        let dir = try PrepScratch()
        let path = dir.file("g.png")
        let one: [Float] = [0, 0, 0, 0]
        #expect { try one.withUnsafeBufferPointer { try writeImageGrid(path: path, images: $0.baseAddress!, count: 1, channels: 4, height: 1, width: 1) } }
            throws: { "\($0)".contains(path) }
        #expect { try one.withUnsafeBufferPointer { try writeImageGrid(path: path, images: $0.baseAddress!, count: 0, channels: 1, height: 1, width: 1) } }
            throws: { "\($0)".contains(path) }
    }
}
