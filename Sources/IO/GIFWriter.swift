import CGIF
import Foundation

/// Writes `frames` as a looping animated GIF (GIF89a) to `path`, through giflib.
///
/// Every frame must have the size and channels of the first. One global palette of 256 colours:
/// - gray frames (1 channel) use 256 grays, index = value, so gray pixels are stored exactly;
/// - RGB frames (3 channels) are quantised to the nearest colour of a fixed 8×8×4 cube (3 bits of red,
///   3 of green, 2 of blue; levels spread evenly over 0…255), without dithering: the same colour maps
///   to the same index in every frame, so nothing flickers between frames.
/// The NETSCAPE2.0 extension makes viewers loop forever; each frame shows for `delay` hundredths of a
/// second, the last for `lastDelay`. `scale` > 1 magnifies every pixel to scale × scale (nearest),
/// since 32×32 samples are too small to see at 1:1. The file appears complete or not at all (written
/// under a temporary name, then renamed); errors name it.
public func writeAnimatedGIF(path: String, frames: [PNGImage], delay: Int = 30, lastDelay: Int = 200, scale: Int = 1) throws {
    guard let first = frames.first else { throw IOError(path: path, "an animated GIF needs at least one frame") }
    guard scale >= 1 else { throw IOError(path: path, "GIF scale must be at least 1, not \(scale)") }
    for (i, f) in frames.enumerated() where f.width != first.width || f.height != first.height || f.channels != first.channels {
        throw IOError(path: path, "GIF frame \(i) is \(f.width)×\(f.height)×\(f.channels), frame 0 \(first.width)×\(first.height)×\(first.channels)")
    }
    let width = first.width * scale, height = first.height * scale
    guard width <= 65535, height <= 65535 else { throw IOError(path: path, "GIF of \(width)×\(height) exceeds 65535 pixels a side") }

    try replaceAtomically(path) { temporary in
        try writeGIF(temporary, named: path, frames: frames, width: width, height: height, delay: delay, lastDelay: lastDelay, scale: scale)
    }
}

private func writeGIF(_ temporary: String, named path: String, frames: [PNGImage], width: Int, height: Int,
                      delay: Int, lastDelay: Int, scale: Int) throws {
    // why not EGifOpenFileName: it creates files readable by their owner only (0600); this honours the umask
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
    guard descriptor >= 0 else { throw IOError(path: path, "cannot create GIF: \(String(cString: strerror(errno)))") }
    var status: Int32 = 0
    guard let gif = EGifOpenFileHandle(descriptor, &status) else {
        close(descriptor)
        throw IOError(path: path, "cannot create GIF: \(gifError(status))")
    }
    var open = true
    func fail(_ what: String) -> IOError {
        let code = gif.pointee.Error
        if open { EGifCloseFile(gif, nil); open = false }
        return IOError(path: path, "cannot write GIF (\(what)): \(gifError(code))")
    }

    let palette: GIFPalette = frames[0].channels == 1 ? .grays : .cube884
    guard let colorMap = palette.colors.withUnsafeBufferPointer({ GifMakeMapObject(256, $0.baseAddress) }) else {
        throw fail("palette")
    }
    defer { GifFreeMapObject(colorMap) }   // why: EGifPutScreenDesc keeps its own copy
    EGifSetGifVersion(gif, true)   // why: delays and looping are GIF89a extensions
    guard EGifPutScreenDesc(gif, Int32(width), Int32(height), 8, 0, colorMap) == GIF_OK else { throw fail("screen descriptor") }

    // NETSCAPE2.0 application extension: sub-block 1 = loop count (little-endian), 0 = forever.
    let application = Array("NETSCAPE2.0".utf8), loop: [UInt8] = [1, 0, 0]
    guard EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) == GIF_OK,
          EGifPutExtensionBlock(gif, Int32(application.count), application) == GIF_OK,
          EGifPutExtensionBlock(gif, Int32(loop.count), loop) == GIF_OK,
          EGifPutExtensionTrailer(gif) == GIF_OK else { throw fail("looping extension") }

    var row = [GifPixelType](repeating: 0, count: width)
    for (i, frame) in frames.enumerated() {
        var control = GraphicsControlBlock(DisposalMode: DISPOSE_DO_NOT, UserInputFlag: false,
                                           DelayTime: Int32(i == frames.count - 1 ? lastDelay : delay),
                                           TransparentColor: NO_TRANSPARENT_COLOR)
        var extensionBytes = [GifByteType](repeating: 0, count: 4)
        let length = EGifGCBToExtension(&control, &extensionBytes)
        guard EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, Int32(length), extensionBytes) == GIF_OK,
              EGifPutImageDesc(gif, 0, 0, Int32(width), Int32(height), false, nil) == GIF_OK else { throw fail("frame \(i)") }
        let indices = palette.indices(of: frame)
        for y in 0..<height {
            let source = (y / scale) * frame.width
            for x in 0..<width { row[x] = indices[source + x / scale] }
            guard EGifPutLine(gif, &row, Int32(width)) == GIF_OK else { throw fail("frame \(i), row \(y)") }
        }
    }
    open = false
    guard EGifCloseFile(gif, &status) == GIF_OK else { throw IOError(path: path, "cannot write GIF: \(gifError(status))") }
}

/// The one global palette of a GIF this program writes, and the mapping of pixels to its indices.
enum GIFPalette {
    /// 256 grays, index = value.
    case grays
    /// Index = r·32 + g·4 + b for levels r, g ∈ 0…7 and b ∈ 0…3; level k of n stands for round(k·255/(n−1)).
    case cube884

    var colors: [GifColorType] {
        switch self {
        case .grays: return (0..<256).map { GifColorType(Red: UInt8($0), Green: UInt8($0), Blue: UInt8($0)) }
        case .cube884:
            return (0..<256).map { GifColorType(Red: Self.level($0 >> 5, of: 8), Green: Self.level(($0 >> 2) & 7, of: 8), Blue: Self.level($0 & 3, of: 4)) }
        }
    }

    /// Palette index of every pixel of `image`, row-major.
    func indices(of image: PNGImage) -> [GifPixelType] {
        switch self {
        case .grays: return image.pixels
        case .cube884:
            return (0..<(image.width * image.height)).map { p in
                let r = Self.nearest(image.pixels[3 * p], of: 8), g = Self.nearest(image.pixels[3 * p + 1], of: 8)
                let b = Self.nearest(image.pixels[3 * p + 2], of: 4)
                return GifPixelType(r << 5 | g << 2 | b)
            }
        }
    }

    private static func level(_ k: Int, of n: Int) -> UInt8 { UInt8((Double(k * 255) / Double(n - 1)).rounded()) }
    private static func nearest(_ v: UInt8, of n: Int) -> Int { Int((Double(v) * Double(n - 1) / 255).rounded()) }
}

private func gifError(_ code: Int32) -> String {
    guard let text = GifErrorString(code) else { return "giflib error \(code)" }
    return String(cString: text)
}
