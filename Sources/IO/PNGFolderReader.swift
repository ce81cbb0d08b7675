import Foundation

/// Reads every `*.png` (any case of the extension; hidden files skipped) in a folder, sorted by name,
/// into [N, C, H, W] uint8: C = 1 when the PNGs are gray, 3 when colour (alpha is composited on white,
/// see `PNGImage`). All must share one size and channel count; the first that does not is named in
/// the error. Subfolders are not searched.
public enum PNGFolderReader {
    public static func files(in folder: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw IOError(path: folder, "no such folder")
        }
        guard isDirectory.boolValue else { throw IOError(path: folder, "is not a folder") }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw IOError(path: folder, "cannot list the folder")
        }
        let pngs = names.filter { !$0.hasPrefix(".") && $0.lowercased().hasSuffix(".png") }.sorted()
        guard !pngs.isEmpty else { throw IOError(path: folder, "folder holds no .png files") }
        return pngs.map { (folder as NSString).appendingPathComponent($0) }
    }

    public static func read(_ folder: String) throws -> DatasetContents {
        let files = try files(in: folder)
        var pixels: [UInt8] = []
        var first: PNGImage? = nil
        for path in files {
            let image = try PNGImage.read(path)
            if let first {
                guard image.width == first.width, image.height == first.height, image.channels == first.channels else {
                    throw IOError(path: path, "is \(describe(image)), but \(files[0]) (the first) is \(describe(first)); every PNG in the folder must have the same size and channels")
                }
            } else {
                first = image
                pixels.reserveCapacity(files.count * image.pixels.count)
            }
            let plane = image.width * image.height, c = image.channels
            for channel in 0..<c {
                for p in 0..<plane { pixels.append(image.pixels[p * c + channel]) }
            }
        }
        let f = first!
        return DatasetContents(shape: [files.count, f.channels, f.height, f.width], pixels: .uint8(pixels), labels: nil,
                               source: "PNG folder \(folder) (\(files.count) files)")
    }

    private static func describe(_ image: PNGImage) -> String {
        "\(image.width)×\(image.height) \(image.channels == 1 ? "gray" : "RGB")"
    }
}
