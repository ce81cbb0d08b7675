import Foundation
import IO
import Testing

/// `/labels` travel with their images through the shard's shuffled order.
@Suite struct ImageShardLabelTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    @Test func everyBatchCarriesTheLabelsOfItsImages() throws {
        let path = NSTemporaryDirectory() + "/labels-\(getpid()).h5"
        defer { unlink(path) }
        // Image i is filled with the value i (as uint8) and labelled 100 + i.
        let count = 12
        let file = try HDF5File.create(path)
        try file.write("images", (0..<count).flatMap { [UInt8](repeating: UInt8($0), count: 4) }, shape: [count, 1, 2, 2])
        try file.write("labels", (0..<count).map { Int64(100 + $0) }, shape: [count])
        try file.close()
        let info = try DatasetInfo.inspect(path)
        #expect(info.hasLabels)
        // Rank 1 of 2: images 6..<12.
        let shard = try ImageShard(info, rank: 1, worldSize: 2, seed: 3)
        var seen: [Int32] = []
        var images = [Float](repeating: 0, count: 3 * 4), labels = [Int32](repeating: 0, count: 3)
        for _ in 0..<2 {
            shard.nextBatch(3, into: &images, labels: &labels)
            for n in 0..<3 {
                let index = Int(((images[n * 4] + 1) * 127.5).rounded())
                #expect(labels[n] == Int32(100 + index), "image \(index) came with label \(labels[n])")
            }
            seen += labels
        }
        #expect(Set(seen) == Set((106..<112).map(Int32.init)), "one epoch of rank 1's shard: \(seen)")
        #expect(seen != (106..<112).map(Int32.init), "the order is shuffled")
    }

    @Test func aDatasetWithoutLabelsServesNoLabel() throws {
        let path = NSTemporaryDirectory() + "/nolabels-\(getpid()).h5"
        defer { unlink(path) }
        let file = try HDF5File.create(path)
        try file.write("images", [UInt8](repeating: 9, count: 4 * 4), shape: [4, 1, 2, 2])
        try file.close()
        let shard = try ImageShard(try DatasetInfo.inspect(path), rank: 0, worldSize: 1, seed: 0)
        var images = [Float](repeating: 0, count: 8), labels: [Int32] = [5, 5]
        shard.nextBatch(2, into: &images, labels: &labels)
        #expect(labels == [ImageShard.noLabel, ImageShard.noLabel])
    }

    @Test func labelsOfAnotherShapeAreRefusedNamingIt() throws {
        let path = NSTemporaryDirectory() + "/badlabels-\(getpid()).h5"
        defer { unlink(path) }
        let file = try HDF5File.create(path)
        try file.write("images", [UInt8](repeating: 9, count: 4 * 4), shape: [4, 1, 2, 2])
        try file.write("labels", [Int64](repeating: 1, count: 8), shape: [4, 2])
        try file.close()
        #expect(throws: HDF5Error.self) { try DatasetInfo.inspect(path) }
        do { _ = try DatasetInfo.inspect(path) } catch { #expect("\(error)".contains("/labels has shape [4, 2]")) }
    }
}
