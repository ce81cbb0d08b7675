import Foundation

/// Reads CIFAR-10 binary batches (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`):
/// records of 1 label byte (0–9) followed by 3072 pixel bytes, the 32×32 R, G and B planes in turn
/// (already CHW). Files are read in the order given; a directory stands for its `data_batch_*.bin`
/// files sorted by name (the test batch is not included).
public enum CIFARReader {
    public static let recordSize = 1 + 3 * 32 * 32

    /// The files `inputs` stand for: files as given, directories expanded to their sorted data_batch_*.bin.
    public static func files(for inputs: [String]) throws -> [String] {
        var files: [String] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
                throw IOError(path: input, "no such file or directory")
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: input)) ?? []
                let batches = names.filter { $0.hasPrefix("data_batch_") && $0.hasSuffix(".bin") }.sorted()
                guard !batches.isEmpty else { throw IOError(path: input, "directory holds no data_batch_*.bin files") }
                files += batches.map { (input as NSString).appendingPathComponent($0) }
            } else {
                files.append(input)
            }
        }
        guard !files.isEmpty else { throw IOError("CIFAR-10: no input files") }
        return files
    }

    /// All records of all files as [N, 3, 32, 32] uint8 with labels [N].
    public static func read(_ inputs: [String]) throws -> DatasetContents {
        let files = try files(for: inputs)
        var pixels: [UInt8] = [], labels: [Int64] = []
        for path in files {
            guard let data = FileManager.default.contents(atPath: path) else { throw IOError(path: path, "cannot read") }
            guard !data.isEmpty, data.count % recordSize == 0 else {
                throw IOError(path: path, "size \(data.count) bytes is not a positive multiple of the CIFAR-10 record (\(recordSize) bytes: 1 label + 3072 pixels)")
            }
            let records = data.count / recordSize
            pixels.reserveCapacity(pixels.count + records * (recordSize - 1))
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                let bytes = raw.bindMemory(to: UInt8.self)
                for r in 0..<records {
                    let label = bytes[r * recordSize]
                    guard label < 10 else {
                        throw IOError(path: path, "record \(r) has label \(label), not a CIFAR-10 class 0–9 (CIFAR-100 files, with 2 label bytes, are not supported)")
                    }
                    labels.append(Int64(label))
                    pixels.append(contentsOf: bytes[(r * recordSize + 1)..<((r + 1) * recordSize)])
                }
            }
        }
        return DatasetContents(shape: [labels.count, 3, 32, 32], pixels: .uint8(pixels), labels: labels,
                               source: "CIFAR-10 binary " + files.joined(separator: ", "))
    }
}
