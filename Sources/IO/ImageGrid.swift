/// Tiles `count` NCHW float images in [−1, 1] into one picture: a grid of `columns` columns
/// (default ⌈√count⌉, so near-square) and ⌈count / columns⌉ rows, with a 2-pixel black border around
/// and between the tiles (torchvision `make_grid` style). Values are clamped to [−1, 1] (NaN counts as −1)
/// and mapped to 0…255 by round((x + 1) · 127.5). Cells after the last image stay black.
/// Size: width = columns·W + 2·(columns + 1), height = rows·H + 2·(rows + 1).
public func imageGrid(images: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                      columns: Int? = nil) throws -> PNGImage {
    guard count > 0 else { throw IOError("image grid: no images to tile") }
    guard channels == 1 || channels == 3 else {
        throw IOError("image grid: \(channels) channels; a PNG grid needs 1 (gray) or 3 (RGB)")
    }
    guard height > 0, width > 0 else { throw IOError("image grid: empty images \(height)×\(width)") }
    let border = 2
    var cols = columns ?? 1
    if columns == nil { while cols * cols < count { cols += 1 } }
    guard cols > 0 else { throw IOError("image grid: columns must be positive, not \(cols)") }
    cols = min(cols, count)
    let rows = (count + cols - 1) / cols
    let gridWidth = cols * width + border * (cols + 1), gridHeight = rows * height + border * (rows + 1)
    var pixels = [UInt8](repeating: 0, count: gridWidth * gridHeight * channels)
    let plane = height * width
    for n in 0..<count {
        let top = border + (n / cols) * (height + border), left = border + (n % cols) * (width + border)
        let image = images + n * channels * plane
        for c in 0..<channels {
            for y in 0..<height {
                let row = ((top + y) * gridWidth + left) * channels + c
                for x in 0..<width {
                    let v = image[c * plane + y * width + x]
                    let clamped: Float = v.isNaN ? -1 : Swift.min(1, Swift.max(-1, v))
                    pixels[row + x * channels] = UInt8(((clamped + 1) * 127.5).rounded())
                }
            }
        }
    }
    return PNGImage(width: gridWidth, height: gridHeight, channels: channels, pixels: pixels)
}

/// Writes `imageGrid(...)` as a PNG (gray when channels == 1, RGB when 3) to `path`.
public func writeImageGrid(path: String, images: UnsafePointer<Float>, count: Int, channels: Int,
                           height: Int, width: Int, columns: Int? = nil) throws {
    do {
        let grid = try imageGrid(images: images, count: count, channels: channels, height: height, width: width,
                                 columns: columns)
        try grid.write(to: path)
    } catch let error as IOError where !error.description.hasPrefix(path) {
        throw IOError(path: path, error.description)
    }
}
