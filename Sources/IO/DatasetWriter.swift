import Foundation
import Tensor

/// A whole dataset in memory, in the file layout: `shape` is [N, C, H, W] for images (NCHW) or [N, D]
/// for points; `pixels` holds them in C order, uint8 (0…255) or float32 (images in [−1, 1]).
public struct DatasetContents: Sendable {
    public enum Pixels: Sendable, Equatable {
        case uint8([UInt8])
        case float32([Float])
        public var count: Int {
            switch self { case .uint8(let v): v.count; case .float32(let v): v.count }
        }
        /// "uint8" or "float32", as NumPy and `HDF5File.elementType` spell it.
        public var dtype: String {
            switch self { case .uint8: "uint8"; case .float32: "float32" }
        }
    }

    public var shape: [Int]
    public var pixels: Pixels
    public var labels: [Int64]?
    /// Where the data came from, stored as the `source` attribute.
    public var source: String
    /// Further string attributes stored on "/" (e.g. `class_names`).
    public var attributes: [String: String] = [:]
    /// Further float32 datasets of one row per sample, stored as [N, K] and split with the images
    /// (e.g. `params` of the lens simulator); the transforms leave them as they are.
    public var sampleTables: [String: [Float]] = [:]

    public init(shape: [Int], pixels: Pixels, labels: [Int64]?, source: String) {
        precondition(shape.count == 2 || shape.count == 4, "DatasetContents: shape \(shape) is neither [N, D] nor [N, C, H, W]")
        precondition(shape.reduce(1, *) == pixels.count, "DatasetContents: \(pixels.count) values for shape \(shape)")
        precondition(labels == nil || labels!.count == shape[0], "DatasetContents: \(labels!.count) labels for \(shape[0]) samples")
        self.shape = shape; self.pixels = pixels; self.labels = labels; self.source = source
    }

    public var count: Int { shape[0] }
    public var isPoints: Bool { shape.count == 2 }
}

/// Axis order of a rank-4 array read from a .npy file.
public enum ArrayLayout: String, Sendable, CaseIterable {
    /// NHWC when the last dimension is 1 or 3 and the second is not; NCHW otherwise (also when ambiguous).
    case auto
    case nchw
    case nhwc

    /// The layout `auto` resolves to for `shape` (rank 4).
    public static func detect(_ shape: [Int]) -> ArrayLayout {
        let small: Set<Int> = [1, 3]
        return small.contains(shape[3]) && !small.contains(shape[1]) ? .nhwc : .nchw
    }
}

extension DatasetContents {
    /// Images from a .npy array: rank 3 [N, H, W] becomes [N, 1, H, W]; rank 4 is read as `layout`
    /// (NHWC is transposed to NCHW). float32 values must lie in [−1, 1] (within 1e-5, then clamped).
    public init(npy: NPYArray, path: String, layout: ArrayLayout) throws {
        let s = npy.shape
        var shape: [Int], resolved = ArrayLayout.nchw
        if s.count == 3 {
            shape = [s[0], 1, s[1], s[2]]
        } else {
            resolved = layout == .auto ? ArrayLayout.detect(s) : layout
            shape = resolved == .nhwc ? [s[0], s[3], s[1], s[2]] : s
        }
        var pixels = npy.values
        if resolved == .nhwc {
            switch pixels {
            case .uint8(let v): pixels = .uint8(transposeNHWC(v, s))
            case .float32(let v): pixels = .float32(transposeNHWC(v, s))
            }
        }
        if case .float32(var v) = pixels {
            var low = Float.infinity, high = -Float.infinity
            for x in v {
                guard x.isFinite else { throw IOError(path: path, "holds a non-finite value (\(x)); float images must lie in [−1, 1]") }
                low = Swift.min(low, x); high = Swift.max(high, x)
            }
            guard low >= -1 - 1e-5, high <= 1 + 1e-5 else {
                throw IOError(path: path, "float values span [\(low), \(high)]; float images must lie in [−1, 1] (rescale them, e.g. 2·x − 1 for [0, 1] data, or save uint8 0…255)")
            }
            if low < -1 || high > 1 { for i in v.indices { v[i] = Swift.min(1, Swift.max(-1, v[i])) } }
            pixels = .float32(v)
        }
        let layoutText = s.count == 3 ? "" : ", read as \(resolved.rawValue.uppercased())"
        self.init(shape: shape, pixels: pixels, labels: nil,
                  source: "NumPy \(path) (\(npy.dtype) \(s)\(layoutText))")
    }
}

private func transposeNHWC<T>(_ v: [T], _ s: [Int]) -> [T] {
    let (n, h, w, c) = (s[0], s[1], s[2], s[3])
    guard let first = v.first else { return v }
    var out = [T](repeating: first, count: v.count)
    for i in 0..<n {
        for y in 0..<h {
            for x in 0..<w {
                let from = ((i * h + y) * w + x) * c
                for k in 0..<c { out[((i * c + k) * h + y) * w + x] = v[from + k] }
            }
        }
    }
    return out
}

/// A permutation of 0..<count by Fisher–Yates with Philox(seed, stream) words.
func seededPermutation(count: Int, seed: UInt64, stream: UInt64) -> [Int] {
    var order = Array(0..<count)
    var g = Philox(seed: seed, stream: stream)
    var block = SIMD4<UInt32>(), used = 4
    var i = count - 1
    while i > 0 {
        if used == 4 { block = g.nextBlock(); used = 0 }
        let j = Int((UInt64(block[used]) &* UInt64(i + 1)) >> 32)
        used += 1
        order.swapAt(i, j)
        i -= 1
    }
    return order
}

/// How `DatasetWriter` changes the data on the way to the file.
public struct DatasetOptions: Sendable {
    /// Pixels of black padding on each side (0 for uint8, −1 for float32): 2 turns 28×28 into 32×32.
    public var pad: Int
    /// 1 or 3, or nil to keep the source's channels. Gray → 3 repeats the plane; RGB → 1 is the luminance
    /// round(0.299 R + 0.587 G + 0.114 B) (exact integer arithmetic for uint8).
    public var channels: Int?
    /// Fraction f in [0, 1) held out: after a seeded shuffle of all N indices, the last ⌈f·N⌉ go to
    /// `heldoutPath`, the rest to the main file; each file keeps the source's order.
    public var heldoutFraction: Double
    /// Defaults to the output path with `-heldout` before `.h5`.
    public var heldoutPath: String?
    public var seed: UInt64
    /// Side S of the square images written, resampled after the padding (see `ImageResize`: area
    /// averaging to shrink, bilinear to grow); nil keeps the size. The images must be square by then.
    public var resize: Int?

    public init(pad: Int = 0, channels: Int? = nil, heldoutFraction: Double = 0, heldoutPath: String? = nil, seed: UInt64 = 0,
                resize: Int? = nil) {
        self.pad = pad; self.channels = channels; self.heldoutFraction = heldoutFraction
        self.heldoutPath = heldoutPath; self.seed = seed; self.resize = resize
    }
}

/// What `DatasetWriter.write` produced; `description` is the one-line summary the command prints.
public struct DatasetSummary: Sendable, CustomStringConvertible {
    public let path: String
    /// Shape of the main file's /images.
    public let shape: [Int]
    public let dtype: String
    public let hasLabels: Bool
    public let heldoutPath: String?
    public let heldoutCount: Int
    /// Set when float32 images all lie in [0, 1], which is probably not the intended [−1, 1].
    public let note: String?

    public var count: Int { shape[0] }

    public var description: String {
        let kind = (shape.count == 2 ? "point" : "image") + (count == 1 ? "" : "s")
        let tail = Array(shape.dropFirst())
        var line = "prepared \(count) \(kind) of shape \(tail) (\(dtype)\(hasLabels ? ", with labels" : "")) → \(path)"
        if let heldoutPath { line += "; held out \(heldoutCount) → \(heldoutPath)" }
        if let note { line += " (\(note))" }
        return line
    }
}

/// Writes the dataset layout (SPEC §4): `/images` [N, C, H, W] uint8 or float32 ([N, D] float32 for
/// points), optional `/labels` [N] int64, and attributes on "/": `format` = "disttrain-dataset",
/// `version` = "1", `source`, `split` ("all", or "train"/"heldout" with the counts, fraction and seed).
/// Each file is written under a temporary name in its directory (created if missing) and renamed at the
/// end, so a failure never leaves a partial dataset behind.
public enum DatasetWriter {
    public static let format = "disttrain-dataset"
    public static let version = "1"
    static let splitStream: UInt64 = 6 << 56

    /// `out` with `-heldout` before its `.h5` / `.hdf5` extension (appended when there is none).
    public static func defaultHeldoutPath(for out: String) -> String {
        for ext in [".h5", ".hdf5"] where out.hasSuffix(ext) { return String(out.dropLast(ext.count)) + "-heldout" + ext }
        return out + "-heldout"
    }

    /// ⌈fraction · count⌉ (0 for a fraction of 0).
    public static func heldoutCount(fraction: Double, of count: Int) -> Int {
        fraction > 0 ? Int((fraction * Double(count) - 1e-9).rounded(.up)) : 0
    }

    /// The split `--heldout fraction` with `--seed seed` makes of `count` samples: all indices shuffled
    /// with the seed, the last `heldoutCount` held out; both parts ascending. `classifier` holds out
    /// the same rows of a file that `prepare --heldout` would have written to a second one.
    public static func heldoutSplit(count: Int, fraction: Double, seed: UInt64) -> (train: [Int], heldout: [Int]) {
        let order = seededPermutation(count: count, seed: seed, stream: splitStream)
        let heldout = heldoutCount(fraction: fraction, of: count)
        return (order[..<(count - heldout)].sorted(), order[(count - heldout)...].sorted())
    }

    /// Channel conversion, then padding, then resizing.
    public static func transform(_ data: DatasetContents, pad: Int, channels: Int?, resize: Int? = nil) throws -> DatasetContents {
        var d = data
        if d.isPoints {
            guard pad == 0 else { throw IOError("\(d.source): points cannot be padded") }
            guard channels == nil else { throw IOError("\(d.source): points have no channels to convert") }
            guard resize == nil else { throw IOError("\(d.source): points cannot be resized (--resize)") }
            return d
        }
        guard pad >= 0, pad <= 4096 else { throw IOError("\(d.source): padding \(pad) is out of range 0…4096") }
        let (n, c, h, w) = (d.shape[0], d.shape[1], d.shape[2], d.shape[3])
        if let target = channels, target != c {
            guard target == 1 || target == 3, c == 1 || c == 3 else {
                throw IOError("\(d.source): cannot convert \(c) channels to \(target) (only gray ↔ RGB)")
            }
            switch d.pixels {
            case .uint8(let v):
                d.pixels = .uint8(convertChannels(v, images: n, from: c, to: target, plane: h * w) { (r: UInt8, g: UInt8, b: UInt8) -> UInt8 in
                    let y: Int = 299 * Int(r) + 587 * Int(g) + 114 * Int(b) + 500
                    return UInt8(y / 1000)
                })
            case .float32(let v):
                d.pixels = .float32(convertChannels(v, images: n, from: c, to: target, plane: h * w) { (r: Float, g: Float, b: Float) -> Float in
                    let y: Double = 0.299 * Double(r) + 0.587 * Double(g) + 0.114 * Double(b)
                    return Float(Swift.min(1, Swift.max(-1, y)))
                })
            }
            d.shape = [n, target, h, w]
        }
        if pad > 0 {
            let rows = d.shape[0] * d.shape[1]
            switch d.pixels {
            case .uint8(let v): d.pixels = .uint8(padPlanes(v, planes: rows, h: h, w: w, pad: pad, fill: 0))
            case .float32(let v): d.pixels = .float32(padPlanes(v, planes: rows, h: h, w: w, pad: pad, fill: -1))
            }
            d.shape = [d.shape[0], d.shape[1], h + 2 * pad, w + 2 * pad]
        }
        if let size = resize { d = try resized(d, to: size) }
        return d
    }

    /// Every image resampled to size × size; refuses a size below 1 and images that are not square.
    static func resized(_ data: DatasetContents, to size: Int) throws -> DatasetContents {
        var d = data
        let (n, c, h, w) = (d.shape[0], d.shape[1], d.shape[2], d.shape[3])
        guard size >= 1 else { throw IOError("\(d.source): --resize must be at least 1, got \(size)") }
        guard h == w else {
            throw IOError("\(d.source): --resize \(size) makes square images, but these are \(h) high and \(w) wide after padding; resizing them would distort them")
        }
        switch d.pixels {
        case .uint8(let v): d.pixels = .uint8(ImageResize.resize(v, planes: n * c, height: h, width: w, toHeight: size, width: size))
        case .float32(let v): d.pixels = .float32(ImageResize.resize(v, planes: n * c, height: h, width: w, toHeight: size, width: size))
        }
        d.shape = [n, c, size, size]
        return d
    }

    /// Transforms `data` by `options` and writes it to `out` (and the held-out part to its own file).
    @discardableResult
    public static func write(_ data: DatasetContents, to out: String, options: DatasetOptions = .init()) throws -> DatasetSummary {
        let f = options.heldoutFraction
        guard f >= 0, f < 1 else { throw IOError(path: out, "held-out fraction \(f) is outside [0, 1)") }
        let d = try transform(data, pad: options.pad, channels: options.channels, resize: options.resize)
        let n = d.count
        guard n > 0 else { throw IOError("\(d.source): holds no samples") }
        for (name, values) in d.sampleTables where values.isEmpty || values.count % n != 0 {
            throw IOError("\(d.source): table \(name) has \(values.count) values, not a row per sample of \(n)")
        }
        let heldout = heldoutCount(fraction: f, of: n)
        guard heldout < n else {
            throw IOError(path: out, "held-out fraction \(f) of \(n) samples leaves none for training")
        }
        let heldoutPath = heldout > 0 ? (options.heldoutPath ?? defaultHeldoutPath(for: out)) : nil
        if let heldoutPath, standardized(heldoutPath) == standardized(out) {
            throw IOError(path: out, "the held-out file must differ from the output")
        }
        var note: String? = nil
        if !d.isPoints, case .float32(let v) = d.pixels, let low = v.min(), low >= 0 {
            note = "note: every float value is ≥ 0; disttrain reads float32 images as [−1, 1]"
        }

        var parts: [(path: String, indices: [Int]?, split: String)] = []
        if let heldoutPath {
            let split = heldoutSplit(count: n, fraction: f, seed: options.seed)
            let detail = "of \(n) samples (held-out fraction \(f), shuffle seed \(options.seed))"
            parts.append((out, split.train, "train: \(n - heldout) \(detail)"))
            parts.append((heldoutPath, split.heldout, "heldout: \(heldout) \(detail)"))
        } else {
            parts.append((out, nil, "all"))
        }

        var temporaries: [(temporary: String, final: String)] = []
        do {
            for part in parts {
                let temporary = try temporaryPath(for: part.path)
                temporaries.append((temporary, part.path))
                try writeFile(d, rows: part.indices, to: temporary, split: part.split, finalPath: part.path)
            }
            for t in temporaries {
                guard rename(t.temporary, t.final) == 0 else {
                    throw IOError(path: t.final, "cannot rename \(t.temporary) to it: \(String(cString: strerror(errno)))")
                }
            }
        } catch {
            for t in temporaries { unlink(t.temporary) }
            throw error
        }
        let sampleShape = Array(d.shape.dropFirst())
        return DatasetSummary(path: out, shape: [n - heldout] + sampleShape, dtype: d.pixels.dtype,
                              hasLabels: d.labels != nil, heldoutPath: heldoutPath, heldoutCount: heldout, note: note)
    }

    private static func standardized(_ path: String) -> String { (path as NSString).standardizingPath }

    private static func temporaryPath(for path: String) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw IOError(path: path, "is a directory, not a file name")
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw IOError(path: path, "cannot create its directory \(directory)")
            }
        }
        let name = (path as NSString).lastPathComponent
        return ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(".\(name).tmp-\(getpid())")
    }

    private static func writeFile(_ d: DatasetContents, rows: [Int]?, to temporary: String, split: String, finalPath: String) throws {
        let sampleShape = Array(d.shape.dropFirst())
        let rowSize = sampleShape.reduce(1, *)
        let count = rows?.count ?? d.count
        do {
            let file = try HDF5File.create(temporary)
            switch d.pixels {
            case .uint8(let v): try file.write("images", select(v, rows: rows, rowSize: rowSize), shape: [count] + sampleShape)
            case .float32(let v): try file.write("images", select(v, rows: rows, rowSize: rowSize), shape: [count] + sampleShape)
            }
            if let labels = d.labels { try file.write("labels", select(labels, rows: rows, rowSize: 1), shape: [count]) }
            for (name, values) in d.sampleTables.sorted(by: { $0.key < $1.key }) {
                let columns = values.count / d.count
                try file.write(name, select(values, rows: rows, rowSize: columns), shape: [count, columns])
            }
            try file.setAttribute("format", format)
            try file.setAttribute("version", version)
            try file.setAttribute("source", d.source)
            try file.setAttribute("split", split)
            for (name, value) in d.attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(name, value) }
            try file.close()
        } catch let error as HDF5Error {
            throw IOError(path: finalPath, "cannot write the dataset (\(error))")
        }
    }

    private static func select<T>(_ v: [T], rows: [Int]?, rowSize: Int) -> [T] {
        guard let rows else { return v }
        guard let first = v.first else { return [] }
        var out = [T](repeating: first, count: rows.count * rowSize)
        v.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (k, r) in rows.enumerated() {
                    (dst.baseAddress! + k * rowSize).update(from: src.baseAddress! + r * rowSize, count: rowSize)
                }
            }
        }
        return out
    }
}

private func padPlanes<T>(_ v: [T], planes: Int, h: Int, w: Int, pad: Int, fill: T) -> [T] {
    let ph = h + 2 * pad, pw = w + 2 * pad
    var out = [T](repeating: fill, count: planes * ph * pw)
    v.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            for p in 0..<planes {
                for y in 0..<h {
                    (dst.baseAddress! + (p * ph + y + pad) * pw + pad).update(from: src.baseAddress! + (p * h + y) * w, count: w)
                }
            }
        }
    }
    return out
}

/// Gray → RGB repeats the plane; RGB → gray applies `luminance` to each (R, G, B).
private func convertChannels<T>(_ v: [T], images n: Int, from c: Int, to target: Int, plane: Int,
                                luminance: (T, T, T) -> T) -> [T] {
    guard let first = v.first else { return v }
    var out = [T](repeating: first, count: n * target * plane)
    v.withUnsafeBufferPointer { srcBuffer in
        out.withUnsafeMutableBufferPointer { dstBuffer in
            let src = srcBuffer.baseAddress!, dst = dstBuffer.baseAddress!
            for i in 0..<n {
                let from = src + i * c * plane, to = dst + i * target * plane
                if target == 3 {
                    for k in 0..<3 { (to + k * plane).update(from: from, count: plane) }
                } else {
                    for p in 0..<plane { to[p] = luminance(from[p], from[plane + p], from[2 * plane + p]) }
                }
            }
        }
    }
    return out
}

/// An input the `prepare` command (and the trainer, on first use) can convert.
public enum DatasetSource: Sendable {
    /// IDX images [N, H, W] (gzip or plain), labels [N] optional.
    case idx(images: String, labels: String?)
    case npy(String, layout: ArrayLayout)
    /// CIFAR-10 binary batch files, or directories of data_batch_*.bin.
    case cifar10([String])
    /// A folder of PNGs, or of class subfolders of PNGs (labelled by the sorted subfolder names).
    case pngFolder(String)
    /// A colour emoji font's PNG bitmap glyphs (CBDT), on white, centred on squares.
    case emoji(String)
    case toy(ToySet, count: Int, noise: Double, seed: UInt64)
    /// Synthetic strong-lensing images (`LensSimulator`), with their parameters as /params.
    case lenses(count: Int, size: Int, seed: UInt64, threads: Int = 1)

    public func load() throws -> DatasetContents {
        switch self {
        case .idx(let images, let labels): try IDXReader.readImages(images, labels: labels)
        case .npy(let path, let layout): try DatasetContents(npy: NPYReader.read(path), path: path, layout: layout)
        case .cifar10(let inputs): try CIFARReader.read(inputs)
        case .pngFolder(let folder): try PNGFolderReader.read(folder)
        case .emoji(let font): try EmojiFontReader.read(font)
        case .toy(let set, let count, let noise, let seed): try set.generate(count: count, noise: noise, seed: seed)
        case .lenses(let count, let size, let seed, let threads):
            try LensSimulator.generate(count: count, size: size, seed: seed, threads: threads)
        }
    }
}

/// Loads `source`, converts it by `options` and writes the dataset file(s).
@discardableResult
public func prepareDataset(_ source: DatasetSource, out: String, options: DatasetOptions = .init()) throws -> DatasetSummary {
    try DatasetWriter.write(source.load(), to: out, options: options)
}

/// Fashion-MNIST as Debian's `dataset-fashion-mnist` package installs it.
public enum FashionMNIST {
    public static let directory = "/usr/share/datasets/fashion-mnist"
    public static let trainImages = directory + "/train-images-idx3-ubyte.gz"
    public static let trainLabels = directory + "/train-labels-idx1-ubyte.gz"
    /// Where the trainer looks for (and builds) its default dataset.
    public static let defaultOutput = "data/fashion-mnist-32.h5"

    /// The labels file beside an images file (`…-images-idx3-…` → `…-labels-idx1-…`) when it exists.
    public static func labels(besideImages images: String) -> String? {
        let name = (images as NSString).lastPathComponent
        guard name.contains("images-idx3") else { return nil }
        let candidate = ((images as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent(name.replacingOccurrences(of: "images-idx3", with: "labels-idx1"))
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }
}

/// Fashion-MNIST (IDX, gzip) → the dataset layout, by default padded 28×28 → 32×32, 1 channel, labels.
@discardableResult
public func prepareFashionMNIST(images: String = FashionMNIST.trainImages, labels: String? = FashionMNIST.trainLabels,
                                out: String = FashionMNIST.defaultOutput, pad: Int = 2, channels: Int = 1,
                                heldoutFraction: Double = 0, heldoutPath: String? = nil, seed: UInt64 = 0) throws -> DatasetSummary {
    var data = try IDXReader.readImages(images, labels: labels)
    data.source = "Fashion-MNIST " + data.source
    return try DatasetWriter.write(data, to: out, options: DatasetOptions(
        pad: pad, channels: channels, heldoutFraction: heldoutFraction, heldoutPath: heldoutPath, seed: seed))
}

/// The trainer's default dataset: Fashion-MNIST's 60,000 training images from the Debian package,
/// padded to 32×32, 1 channel, with labels, written to `out` (data/fashion-mnist-32.h5).
@discardableResult
public func prepareDefaultFashionMNIST(out: String = FashionMNIST.defaultOutput) throws -> DatasetSummary {
    try prepareFashionMNIST(out: out)
}
