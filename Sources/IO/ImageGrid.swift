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
    var cols = columns ?? 1
    if columns == nil { while cols * cols < count { cols += 1 } }
    guard cols > 0 else { throw IOError("image grid: columns must be positive, not \(cols)") }
    cols = min(cols, count)
    let layout = ImageGridLayout(columns: cols, rows: (count + cols - 1) / cols, height: height, width: width)
    let gridWidth = layout.gridWidth, gridHeight = layout.gridHeight
    var pixels = [UInt8](repeating: 0, count: gridWidth * gridHeight * channels)
    let plane = height * width
    for n in 0..<count {
        let (top, left) = layout.origin(of: n)
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

/// Where `imageGrid` puts its tiles: `columns` × `rows` cells of height × width, with a border of
/// `border` pixels around and between them, filled row by row.
public struct ImageGridLayout: Equatable {
    public static let border = 2
    public let columns, rows, height, width: Int

    public init(columns: Int, rows: Int, height: Int, width: Int) {
        self.columns = columns; self.rows = rows; self.height = height; self.width = width
    }

    /// The layout of a grid picture of gridWidth × gridHeight pixels with tiles of height × width; nil
    /// when the picture is not such a grid.
    public init?(gridWidth: Int, gridHeight: Int, height: Int, width: Int) {
        let b = Self.border
        guard gridWidth > b, gridHeight > b, (gridWidth - b) % (width + b) == 0, (gridHeight - b) % (height + b) == 0 else { return nil }
        self.init(columns: (gridWidth - b) / (width + b), rows: (gridHeight - b) / (height + b), height: height, width: width)
    }

    public var gridWidth: Int { columns * width + Self.border * (columns + 1) }
    public var gridHeight: Int { rows * height + Self.border * (rows + 1) }

    /// The top-left pixel of cell n.
    public func origin(of n: Int) -> (top: Int, left: Int) {
        (Self.border + (n / columns) * (height + Self.border), Self.border + (n % columns) * (width + Self.border))
    }
}
