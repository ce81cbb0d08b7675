import CPNG

// why: the PNG_IMAGE_VERSION / PNG_FORMAT_* macros may not import; values from <png.h> (libpng 1.6).
private let pngImageVersion: png_uint_32 = 1
private let pngFormatFlagAlpha: png_uint_32 = 0x01
private let pngFormatFlagColor: png_uint_32 = 0x02

/// An 8-bit image, row-major with interleaved channels (HWC): 1 channel (gray) or 3 (RGB).
///
/// Reading goes through libpng's simplified API (no setjmp): every PNG colour type, bit depth,
/// palette and interlace is accepted. 16-bit files are reduced to 8 bits by libpng; files carrying a
/// non-sRGB gAMA chunk are converted to sRGB encoding by libpng. Gray (with or without alpha) becomes
/// 1 channel, everything else 3 channels. **Alpha is composited on white** in the 8-bit sRGB values,
/// as Pillow's `alpha_composite` on a white canvas does: out = round((c·a + 255·(255 − a)) / 255).
public struct PNGImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// height × width × channels bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "PNGImage: channels must be 1 or 3, not \(channels)")
        precondition(width > 0 && height > 0, "PNGImage: empty image \(width)×\(height)")
        precondition(pixels.count == width * height * channels,
                     "PNGImage: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// The value of channel `c` of the pixel at row `y`, column `x`.
    public subscript(y: Int, x: Int, c: Int) -> UInt8 { pixels[(y * width + x) * channels + c] }

    /// Reads `path`; errors name the file.
    public static func read(_ path: String) throws -> PNGImage {
        var image = png_image()
        image.version = pngImageVersion
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            defer { png_image_free(&image) }
            throw IOError(path: path, "cannot read PNG: \(message(of: image))")
        }
        return try finishRead(&image, name: path)
    }

    /// Decodes a PNG held in memory (e.g. a font's bitmap glyph); errors begin with `name`.
    public static func decode(_ bytes: [UInt8], name: String) throws -> PNGImage {
        var image = png_image()
        image.version = pngImageVersion
        // libpng reads the buffer during finish_read, so the bytes stay pinned until then.
        return try bytes.withUnsafeBytes { buffer in
            guard png_image_begin_read_from_memory(&image, buffer.baseAddress, buffer.count) != 0 else {
                defer { png_image_free(&image) }
                throw IOError(path: name, "cannot read PNG: \(message(of: image))")
            }
            return try finishRead(&image, name: name)
        }
    }

    /// The rest of a read begun by libpng: 8-bit samples of the file's own channels, alpha on white.
    private static func finishRead(_ image: inout png_image, name path: String) throws -> PNGImage {
        let source = image.format
        let color = source & pngFormatFlagColor != 0, alpha = source & pngFormatFlagAlpha != 0
        // Ask for the file's own channels in 8 bits (no colour map); compositing is done here, not by
        // libpng, whose background compositing works in linear light.
        image.format = (color ? pngFormatFlagColor : 0) | (alpha ? pngFormatFlagAlpha : 0)
        let width = Int(image.width), height = Int(image.height)
        let stored = (color ? 3 : 1) + (alpha ? 1 : 0)
        guard width > 0, height > 0, width * height <= 1 << 28 else {
            png_image_free(&image)
            throw IOError(path: path, "PNG of impossible size \(width)×\(height)")
        }
        var raw = [UInt8](repeating: 0, count: width * height * stored)
        let ok = raw.withUnsafeMutableBytes {
            png_image_finish_read(&image, nil, $0.baseAddress, png_int_32(width * stored), nil)
        }
        guard ok != 0 else {
            defer { png_image_free(&image) }
            throw IOError(path: path, "cannot read PNG: \(message(of: image))")
        }
        png_image_free(&image)
        let channels = color ? 3 : 1
        guard alpha else { return PNGImage(width: width, height: height, channels: channels, pixels: raw) }
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        for p in 0..<(width * height) {
            let a = Int(raw[p * stored + channels])
            for c in 0..<channels {
                let v = Int(raw[p * stored + c])
                pixels[p * channels + c] = UInt8((v * a + 255 * (255 - a) + 127) / 255)
            }
        }
        return PNGImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// Writes an 8-bit gray or RGB PNG to `path` (replacing it); errors name the file.
    public func write(to path: String) throws {
        var image = png_image()
        image.version = pngImageVersion
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = channels == 3 ? pngFormatFlagColor : 0
        let ok = pixels.withUnsafeBytes {
            png_image_write_to_file(&image, path, 0, $0.baseAddress, png_int_32(width * channels), nil)
        }
        defer { png_image_free(&image) }
        guard ok != 0 else { throw IOError(path: path, "cannot write PNG: \(PNGImage.message(of: image))") }
    }

    private static func message(of image: png_image) -> String {
        var copy = image.message
        let text = withUnsafeBytes(of: &copy) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "libpng reported an error" : text
    }
}
