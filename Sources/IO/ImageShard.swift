import Foundation
import Tensor

/// What a dataset file holds: `/images` [N, C, H, W] (or [N, D] points), uint8 or float32.
public struct DatasetInfo: Sendable, Equatable {
    public let path: String
    public let count: Int
    /// Shape of one sample: [C, H, W], or [D] for points.
    public let sampleShape: [Int]
    public let elementType: String
    public let hasLabels: Bool

    public var sampleCount: Int { sampleShape.reduce(1, *) }

    /// Reads and checks the layout without loading the pixels; errors name the file and dataset.
    public static func inspect(_ path: String) throws -> DatasetInfo {
        let file = try HDF5File.open(path)
        guard file.contains("images") else { throw HDF5Error("\(path): no /images dataset (expected [N, C, H, W])") }
        let shape = try file.shape(of: "images")
        guard shape.count == 4 || shape.count == 2 else {
            throw HDF5Error("\(path): /images has \(shape.count) dimensions \(shape); expected 4 ([N, C, H, W]) or 2 ([N, D] points)")
        }
        let type = try file.elementType(of: "images")
        guard type == "uint8" || type == "float32" else {
            throw HDF5Error("\(path): /images is \(type); supported are uint8 (0…255) and float32 (in [−1, 1])")
        }
        guard shape[0] > 0 else { throw HDF5Error("\(path): /images holds no images") }
        guard shape.dropFirst().allSatisfy({ $0 > 0 }), shape.reduce(1, { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }) < 1 << 40 else {
            throw HDF5Error("\(path): /images claims an impossible shape \(shape)")
        }
        // why: a header can claim any size; check it against what the file holds before anything is allocated.
        let elementBytes = type == "uint8" ? 1 : 4
        let logical = shape.reduce(elementBytes, *)
        let stored = try file.storage(of: "images")
        if stored.contiguous && stored.bytes < logical {
            throw HDF5Error("\(path): /images claims \(shape) (\(logical) bytes) but the file holds only \(stored.bytes) bytes of it")
        }
        let hasLabels = file.contains("labels")
        if hasLabels {
            let labels = try file.shape(of: "labels")
            guard labels.count == 1 || (labels.count == 2 && labels[1] == 1) else {
                throw HDF5Error("\(path): /labels has shape \(labels); expected [\(shape[0])], one label per image")
            }
            guard labels.first == shape[0] else {
                throw HDF5Error("\(path): /labels has \(labels.first ?? 0) entries for \(shape[0]) images")
            }
            let labelType = try file.elementType(of: "labels")
            guard labelType.hasPrefix("int") || labelType.hasPrefix("uint") else {
                throw HDF5Error("\(path): /labels is \(labelType); class labels must be integers (0…K−1)")
            }
        }
        return DatasetInfo(path: path, count: shape[0], sampleShape: Array(shape.dropFirst()), elementType: type, hasLabels: hasLabels)
    }
}

/// One rank's contiguous shard of a dataset, held in memory as floats in [−1, 1] (with its `/labels`
/// when the file has them), served in a fresh order every epoch. The order of epoch e on rank r depends only on (seed, e, r), so the position
/// (epoch, cursor) is all a checkpoint needs to resume the same sequence.
public final class ImageShard {
    public let info: DatasetInfo
    /// Global index of the shard's first sample, and how many it holds.
    public let first, count: Int
    public let samples: FloatBuffer
    /// The shard's class labels, when the dataset has `/labels`.
    public let labels: [Int32]?
    /// What `nextBatch` reports for a sample of a dataset without labels.
    public static let noLabel: Int32 = -1
    public let seed: UInt64, rank: Int
    public private(set) var epoch = 0
    /// Samples of this epoch's order already served.
    public private(set) var cursor = 0
    private var order: [Int32]

    /// Reads rows [rank·N/W, (rank+1)·N/W) of `/images`: only this rank's hyperslab is read from disk.
    public convenience init(_ info: DatasetInfo, rank: Int, worldSize: Int, seed: UInt64) throws {
        let first = info.count * rank / worldSize
        try self.init(info, rows: [first..<(info.count * (rank + 1) / worldSize)], rank: rank, seed: seed)
    }

    /// Reads the rows `rows` of `/images` (ascending runs, e.g. one rank's part of a training split),
    /// one hyperslab per run; `first` is the first run's start. The shard's sample i is the i-th of them.
    public init(_ info: DatasetInfo, rows: [Range<Int>], rank: Int, seed: UInt64) throws {
        precondition(rows.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= info.count }, "rows outside 0..<\(info.count)")
        self.info = info; self.seed = seed; self.rank = rank
        first = rows.first?.lowerBound ?? 0
        count = rows.reduce(0) { $0 + $1.count }
        let width = info.sampleCount
        let bytes = Double(count) * Double(width) * 4
        let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        guard bytes < 0.8 * physical else {
            throw HDF5Error(String(format: "%@: this rank's %d samples need %.1f GB in memory, more than this machine's %.1f GB; use more ranks or a smaller dataset",
                                   info.path, count, bytes / 1e9, physical / 1e9))
        }
        samples = FloatBuffer(count: count * width)
        let file = try HDF5File.open(info.path)
        // Each run's rows, at the run's place in the shard.
        func readRuns<T: HDF5Element>(_ name: String, into out: UnsafeMutablePointer<T>, width: Int) throws {
            var at = 0
            for run in rows {
                try file.readRows(name, start: run.lowerBound, count: run.count, into: out + at * width)
                at += run.count
            }
        }
        if info.elementType == "uint8" {
            let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: max(count * width, 1))
            defer { bytes.deallocate() }
            try readRuns("images", into: bytes, width: width)
            for i in 0..<(count * width) { samples[i] = Float(bytes[i]) / 127.5 - 1 }
        } else {
            try readRuns("images", into: samples.pointer, width: width)
            // Images must be in [−1, 1]; points (toy sets) may have any finite coordinates.
            let limit: Float = info.sampleShape.count == 3 ? 1 : .greatestFiniteMagnitude
            for i in 0..<(count * width) where !(samples[i] >= -limit && samples[i] <= limit) {
                throw HDF5Error("\(info.path): /images value \(samples[i]) at sample \(Self.row(i / width, of: rows)) is \(info.sampleShape.count == 3 ? "outside [−1, 1]" : "not finite")")
            }
        }
        if info.hasLabels {
            var values = [Int32](repeating: 0, count: count)
            try values.withUnsafeMutableBufferPointer { try readRuns("labels", into: $0.baseAddress!, width: 1) }
            if let i = values.firstIndex(where: { $0 < 0 }) {
                throw HDF5Error("\(info.path): /labels holds the negative class \(values[i]) at image \(Self.row(i, of: rows)); classes are 0…K−1")
            }
            labels = values
        } else {
            labels = nil
        }
        order = Array(0..<Int32(count))
        shuffle()
    }

    /// The file row of the shard's sample `i`.
    static func row(_ i: Int, of rows: [Range<Int>]) -> Int {
        var i = i
        for run in rows {
            if i < run.count { return run.lowerBound + i }
            i -= run.count
        }
        return -1
    }

    /// Moves to (epoch, cursor), as saved in a checkpoint.
    public func seek(epoch: Int, cursor: Int) {
        self.epoch = epoch
        shuffle()
        self.cursor = min(cursor, count)
    }

    /// Copies the next `batch` samples into `out` [batch, sample…] and their labels into `labels`
    /// (`noLabel` without /labels), starting a new epoch (a new order) when fewer than `batch` remain
    /// in this one. Returns true when it started a new epoch.
    @discardableResult
    public func nextBatch(_ batch: Int, into out: UnsafeMutablePointer<Float>, labels labelsOut: UnsafeMutablePointer<Int32>? = nil) -> Bool {
        precondition(batch <= count, "batch \(batch) larger than the shard's \(count) samples")
        var wrapped = false
        if cursor + batch > count {
            epoch += 1; cursor = 0; shuffle(); wrapped = true
        }
        let width = info.sampleCount
        for n in 0..<batch {
            (out + n * width).update(from: samples.pointer + Int(order[cursor + n]) * width, count: width)
            labelsOut?[n] = labels?[Int(order[cursor + n])] ?? Self.noLabel
        }
        cursor += batch
        return wrapped
    }

    /// Fisher–Yates with this epoch's own random stream.
    private func shuffle() {
        var rng = Philox(seed: seed, stream: RandomStream.shuffle(epoch: epoch, rank: rank))
        for i in 0..<count { order[i] = Int32(i) }
        var i = count - 1, j: Int32 = 0
        while i > 0 {
            rng.fillIntegers(&j, count: 1, below: i + 1)
            order.swapAt(i, Int(j))
            i -= 1
        }
    }
}
