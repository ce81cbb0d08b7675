import Foundation

/// Reads a folder of PNGs into [N, C, H, W] uint8: C = 1 when the PNGs are gray, 3 when colour (alpha
/// is composited on white, see `PNGImage`). All must share one size and channel count; the first that
/// does not is named in the error. Files are `*.png` in any case; hidden entries are skipped.
///
/// Either the PNGs lie in the folder itself (no labels; subfolders are then ignored), or the folder
/// holds only class subfolders of PNGs: the subfolders sorted by name are classes 0…K−1, /labels gives
/// each image its class and the `class_names` attribute lists the names as a JSON array. Images go
/// in class order, then by name. A folder with both is refused (which images would be unlabelled?).
public enum PNGFolderReader {
    /// The PNG files directly in `folder`, sorted by name (possibly none).
    public static func files(in folder: String) throws -> [String] {
        try entries(of: folder).filter { $0.lowercased().hasSuffix(".png") && !isDirectory(folder, $0) }
            .map { (folder as NSString).appendingPathComponent($0) }
    }

    /// The class subfolders of `folder` (non-hidden directories), sorted by name.
    public static func classFolders(in folder: String) throws -> [String] {
        try entries(of: folder).filter { isDirectory(folder, $0) }
    }

    public static func read(_ folder: String) throws -> DatasetContents {
        let top = try files(in: folder)
        let classes = try classFolders(in: folder)
        let classFiles = try classes.map { try files(in: (folder as NSString).appendingPathComponent($0)) }
        if !top.isEmpty {
            if let k = classFiles.firstIndex(where: { !$0.isEmpty }) {
                throw IOError(path: folder, "holds both .png files (\((top[0] as NSString).lastPathComponent), …) and class subfolders of PNGs (\(classes[k]), …); put every image in a class subfolder, or none")
            }
            var data = try readImages(top)
            data.source = "PNG folder \(folder) (\(top.count) files)"
            return data
        }
        guard !classes.isEmpty else { throw IOError(path: folder, "folder holds no .png files and no class subfolders") }
        if let k = classFiles.firstIndex(where: \.isEmpty) {
            let sub = (folder as NSString).appendingPathComponent(classes[k])
            throw IOError(path: sub, "class folder holds no .png files; every class subfolder of \(folder) needs at least one")
        }
        var data = try readImages(classFiles.flatMap { $0 })
        data.labels = classFiles.enumerated().flatMap { k, files in [Int64](repeating: Int64(k), count: files.count) }
        data.attributes["class_names"] = jsonArray(classes)
        data.source = "PNG folder \(folder) (\(data.count) files in \(classes.count) class folders: \(classes.joined(separator: ", ")))"
        return data
    }

    /// Non-hidden names in `folder`, sorted.
    private static func entries(of folder: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw IOError(path: folder, "no such folder")
        }
        guard isDirectory.boolValue else { throw IOError(path: folder, "is not a folder") }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw IOError(path: folder, "cannot list the folder")
        }
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }

    private static func isDirectory(_ folder: String, _ name: String) -> Bool {
        var isDirectory: ObjCBool = false
        let path = (folder as NSString).appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func readImages(_ files: [String]) throws -> DatasetContents {
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
        return DatasetContents(shape: [files.count, f.channels, f.height, f.width], pixels: .uint8(pixels), labels: nil, source: "")
    }

    private static func describe(_ image: PNGImage) -> String {
        "\(image.width)×\(image.height) \(image.channels == 1 ? "gray" : "RGB")"
    }

    /// `["a", "b"]`, with JSON string escapes.
    static func jsonArray(_ names: [String]) -> String {
        let data = try! JSONEncoder().encode(names)   // why: [String] always encodes
        return String(decoding: data, as: UTF8.self)
    }
}
