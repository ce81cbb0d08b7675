import Foundation
import Testing
import IO

@Suite struct PrepareClassFolderTests {
    /// A 2×2 gray PNG of value v.
    static func write(_ v: UInt8, to path: String) throws {
        try PNGImage(width: 2, height: 2, channels: 1, pixels: [v, v, v, v]).write(to: path)
    }

    static func makeClasses(in dir: PrepScratch) throws {
        for name in ["root/dog", "root/ant", "root/cat", "root/.hidden"] {
            try FileManager.default.createDirectory(atPath: dir.file(name), withIntermediateDirectories: true)
        }
        try write(31, to: dir.file("root/dog/b.png")); try write(30, to: dir.file("root/dog/a.png"))
        try write(10, to: dir.file("root/ant/x.png"))
        try write(21, to: dir.file("root/cat/2.PNG")); try write(20, to: dir.file("root/cat/1.png"))
        try write(99, to: dir.file("root/.hidden/z.png"))
        PrepFixtures.createFile(atPath: dir.file("root/README"), contents: Data("x".utf8))
    }

    @Test func classSubfoldersBecomeSortedLabelsAndNames() throws {
        let dir = try PrepScratch()
        try Self.makeClasses(in: dir)
        let summary = try prepareDataset(.pngFolder(dir.file("root")), out: dir.file("d.h5"))
        #expect(summary.shape == [5, 1, 2, 2] && summary.hasLabels)
        let d = try WrittenDataset(dir.file("d.h5"))
        // Classes by name (ant 0, cat 1, dog 2), then files by name; the hidden folder is skipped.
        #expect(d.labels == [0, 1, 1, 2, 2] && d.labelType == "int64")
        let firstPixels = stride(from: 0, to: d.bytes.count, by: 4).map { d.bytes[$0] }
        #expect(firstPixels == [10, 20, 21, 30, 31])
        #expect(d.attributes["class_names"] == #"["ant","cat","dog"]"#)
        #expect(d.attributes["source"]?.contains("3 class folders: ant, cat, dog") == true)
    }

    @Test func loosePNGsBesideClassFoldersAndEmptyClassesAreRefused() throws {
        let dir = try PrepScratch()
        try Self.makeClasses(in: dir)
        try Self.write(5, to: dir.file("root/loose.png"))
        #expect { try prepareDataset(.pngFolder(dir.file("root")), out: dir.file("x.h5")) }
            throws: { "\($0)".contains(dir.file("root")) && "\($0)".contains("both") }
        try FileManager.default.removeItem(atPath: dir.file("root/loose.png"))
        try FileManager.default.createDirectory(atPath: dir.file("root/bee"), withIntermediateDirectories: true)
        #expect { try prepareDataset(.pngFolder(dir.file("root")), out: dir.file("x.h5")) }
            throws: { "\($0)".contains(dir.file("root/bee")) && "\($0)".contains("no .png files") }
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.h5")))
    }

    @Test func flatFolderIgnoresSubfoldersWithoutPNGs() throws {
        let dir = try PrepScratch()
        try FileManager.default.createDirectory(atPath: dir.file("flat/empty"), withIntermediateDirectories: true)
        try Self.write(7, to: dir.file("flat/a.png"))
        try prepareDataset(.pngFolder(dir.file("flat")), out: dir.file("d.h5"))
        let d = try WrittenDataset(dir.file("d.h5"))
        #expect(d.shape == [1, 1, 2, 2] && d.labels == nil && d.attributes["class_names"] == nil)
    }
}
