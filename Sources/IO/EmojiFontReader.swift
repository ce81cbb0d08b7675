/// A colour emoji font's bitmap glyphs as RGB images: each PNG (`ColorBitmapFont`) decoded, its alpha
/// composited on white (`PNGImage`), and centred on a white square whose side is the largest glyph
/// side, so that the glyphs keep the relative sizes the font draws them at. [N, 3, M, M] uint8, in
/// glyph-ID order, no labels; `DatasetOptions.resize` then brings them to the size wanted.
public enum EmojiFontReader {
    /// Where Debian's `fonts-noto-color-emoji` installs the font.
    public static let notoColorEmoji = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
    /// The side `prepare --source emoji` resizes to unless told otherwise.
    public static let defaultSize = 64

    public static func read(_ path: String) throws -> DatasetContents {
        let font = try ColorBitmapFont.read(path)
        let images = try font.glyphs.map { glyph in
            try PNGImage.decode(glyph.png, name: "\(path): glyph \(glyph.id)")
        }
        let side = images.reduce(0) { Swift.max($0, $1.width, $1.height) }
        let plane = side * side
        var pixels = [UInt8](repeating: 255, count: images.count * 3 * plane)
        pixels.withUnsafeMutableBufferPointer { out in
            for (n, image) in images.enumerated() {
                // Centred; an odd margin puts the extra pixel below and to the right.
                let top = (side - image.height) / 2, left = (side - image.width) / 2
                let k = image.channels, step = k == 3 ? 1 : 0   // gray glyphs repeat their one channel
                image.pixels.withUnsafeBufferPointer { hwc in
                    for y in 0..<image.height {
                        for x in 0..<image.width {
                            let from = (y * image.width + x) * k, to = (top + y) * side + left + x
                            for c in 0..<3 { out[(n * 3 + c) * plane + to] = hwc[from + c * step] }
                        }
                    }
                }
            }
        }
        let formats = Set(font.glyphs.map(\.imageFormat)).sorted().map(String.init).joined(separator: ", ")
        return DatasetContents(shape: [images.count, 3, side, side], pixels: .uint8(pixels), labels: nil,
                               source: "emoji font \(path) (\(images.count) bitmap glyphs of the \(font.ppem)-ppem CBDT strike, image format \(formats), on white \(side)×\(side))")
    }
}
