import Foundation
import Testing
import IO

@Suite struct PrepareSourcesTests {
    /// 6 gray 3×2 images, image n pixel p = 10·n + p; labels 9 − n.
    static let idxImages: [UInt8] = (0..<6).flatMap { n in (0..<6).map { UInt8(10 * n + $0) } }
    static let idxLabels: [UInt8] = (0..<6).map { UInt8(9 - $0) }

    @Test func gzipIDXWithPaddingRepeatedChannelsAndLabels() throws {
        let dir = try PrepScratch()
        PrepFixtures.writeIDX(dir.file("img.gz"), shape: [6, 3, 2], bytes: Self.idxImages)
        PrepFixtures.writeIDX(dir.file("lab.gz"), shape: [6], bytes: Self.idxLabels)
        let summary = try prepareDataset(.idx(images: dir.file("img.gz"), labels: dir.file("lab.gz")), out: dir.file("d.h5"),
                                         options: DatasetOptions(pad: 1, channels: 3))
        #expect(summary.shape == [6, 3, 5, 4] && summary.dtype == "uint8" && summary.hasLabels && summary.heldoutPath == nil)
        let d = try WrittenDataset(dir.file("d.h5"))
        #expect(d.shape == [6, 3, 5, 4] && d.dtype == "uint8")
        #expect(d.labels == Self.idxLabels.map(Int64.init) && d.labelType == "int64")
        #expect(d.attributes["format"] == "disttrain-dataset" && d.attributes["version"] == "1" && d.attributes["split"] == "all")
        #expect(d.attributes["source"]?.contains(dir.file("img.gz")) == true)
        for n in 0..<6 {
            for c in 0..<3 {
                for y in 0..<5 {
                    for x in 0..<4 {
                        let inside = (1...3).contains(y) && (1...2).contains(x)
                        let expected: UInt8 = inside ? UInt8(10 * n + (y - 1) * 2 + (x - 1)) : 0
                        #expect(d.bytes[((n * 3 + c) * 5 + y) * 4 + x] == expected)
                    }
                }
            }
        }
        // Only the dataset is left in the directory: no temporary file.
        #expect(dir.listing() == ["d.h5", "img.gz", "lab.gz"])
    }

    @Test func plainIDXAndFashionMNISTDefaults() throws {
        let dir = try PrepScratch()
        let pixels = (0..<(2 * 28 * 28)).map { UInt8($0 % 251) }
        PrepFixtures.writeIDX(dir.file("train-images-idx3-ubyte"), shape: [2, 28, 28], bytes: pixels, gzip: false)
        PrepFixtures.writeIDX(dir.file("train-labels-idx1-ubyte"), shape: [2], bytes: [3, 7], gzip: false)
        #expect(FashionMNIST.labels(besideImages: dir.file("train-images-idx3-ubyte")) == dir.file("train-labels-idx1-ubyte"))
        let out = dir.file("sub/fm.h5")   // the directory is created
        let summary = try prepareFashionMNIST(images: dir.file("train-images-idx3-ubyte"),
                                              labels: dir.file("train-labels-idx1-ubyte"), out: out)
        #expect(summary.shape == [2, 1, 32, 32])
        let d = try WrittenDataset(out)
        #expect(d.shape == [2, 1, 32, 32] && d.labels == [3, 7])
        #expect(d.bytes[(1 * 32 + 2) * 32 + 2] == pixels[784])       // image 1, (0, 0) → (2, 2)
        #expect(d.bytes[(0 * 32 + 29) * 32 + 29] == pixels[27 * 28 + 27])
        #expect(d.bytes[(0 * 32 + 30) * 32 + 29] == 0 && d.bytes[1 * 32 + 5] == 0)
        #expect(d.attributes["source"]?.hasPrefix("Fashion-MNIST") == true)
    }

    @Test func fashionMNISTUnpaddedKeeps28WithLabels() throws {
        let dir = try PrepScratch()
        let pixels = (0..<(3 * 28 * 28)).map { UInt8($0 % 253) }
        PrepFixtures.writeIDX(dir.file("train-images-idx3-ubyte.gz"), shape: [3, 28, 28], bytes: pixels)
        PrepFixtures.writeIDX(dir.file("train-labels-idx1-ubyte.gz"), shape: [3], bytes: [9, 0, 4])
        let summary = try prepareFashionMNIST(images: dir.file("train-images-idx3-ubyte.gz"),
                                              labels: dir.file("train-labels-idx1-ubyte.gz"), out: dir.file("fm28.h5"), pad: 0)
        #expect(summary.shape == [3, 1, 28, 28] && summary.hasLabels)
        let d = try WrittenDataset(dir.file("fm28.h5"))
        #expect(d.shape == [3, 1, 28, 28] && d.dtype == "uint8")
        #expect(d.labels == [9, 0, 4] && d.labelType == "int64")
        #expect(d.bytes == pixels)
    }

    @Test func truncatedAndMissingIDXNameTheFile() throws {
        let dir = try PrepScratch()
        PrepFixtures.writeIDX(dir.file("short.gz"), shape: [6, 3, 2], bytes: Array(Self.idxImages.prefix(20)))
        PrepFixtures.writeIDX(dir.file("short.idx"), shape: [6, 3, 2], bytes: Array(Self.idxImages.prefix(20)), gzip: false)
        // A gzip stream cut in the middle.
        PrepFixtures.writeIDX(dir.file("full.gz"), shape: [6, 3, 2], bytes: Self.idxImages)
        let gz = try Data(contentsOf: URL(fileURLWithPath: dir.file("full.gz")))
        PrepFixtures.createFile(atPath: dir.file("cut.gz"), contents: gz.prefix(gz.count - 12))
        for name in ["short.gz", "short.idx", "cut.gz", "missing.gz"] {
            let path = dir.file(name)
            #expect { try prepareDataset(.idx(images: path, labels: nil), out: dir.file("x.h5")) } throws: { "\($0)".contains(path) }
        }
        // Labels that do not match the images.
        PrepFixtures.writeIDX(dir.file("lab.gz"), shape: [5], bytes: [1, 2, 3, 4, 5])
        #expect { try prepareDataset(.idx(images: dir.file("full.gz"), labels: dir.file("lab.gz")), out: dir.file("x.h5")) }
            throws: { "\($0)".contains(dir.file("lab.gz")) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.h5")))
    }

    @Test func heldoutSplitIsSeededAndCoversEveryImageOnce() throws {
        let dir = try PrepScratch()
        let n = 23
        let pixels = (0..<(n * 4)).map { UInt8($0 / 4) }   // image i is all i
        PrepFixtures.writeIDX(dir.file("i.gz"), shape: [n, 2, 2], bytes: pixels)
        PrepFixtures.writeIDX(dir.file("l.gz"), shape: [n], bytes: (0..<n).map { UInt8(100 + $0) })
        let summary = try prepareDataset(.idx(images: dir.file("i.gz"), labels: dir.file("l.gz")), out: dir.file("d.h5"),
                                         options: DatasetOptions(heldoutFraction: 0.2, seed: 7))
        #expect(DatasetWriter.defaultHeldoutPath(for: dir.file("d.h5")) == dir.file("d-heldout.h5"))
        #expect(summary.heldoutPath == dir.file("d-heldout.h5") && summary.heldoutCount == 5 && summary.count == 18)  // ⌈0.2·23⌉ = 5
        let train = try WrittenDataset(dir.file("d.h5")), held = try WrittenDataset(dir.file("d-heldout.h5"))
        #expect(train.shape == [18, 1, 2, 2] && held.shape == [5, 1, 2, 2])
        let trainIDs = stride(from: 0, to: train.bytes.count, by: 4).map { Int(train.bytes[$0]) }
        let heldIDs = stride(from: 0, to: held.bytes.count, by: 4).map { Int(held.bytes[$0]) }
        #expect((trainIDs + heldIDs).sorted() == Array(0..<n))
        #expect(trainIDs == trainIDs.sorted() && heldIDs == heldIDs.sorted())   // each keeps the source order
        #expect(train.labels == trainIDs.map { Int64(100 + $0) } && held.labels == heldIDs.map { Int64(100 + $0) })
        #expect(train.attributes["split"]?.hasPrefix("train: 18 of 23") == true)
        #expect(held.attributes["split"]?.hasPrefix("heldout: 5 of 23") == true)
        #expect(held.attributes["format"] == "disttrain-dataset")
        // Same seed, same split; another seed, another one.
        try prepareDataset(.idx(images: dir.file("i.gz"), labels: nil), out: dir.file("e.h5"),
                           options: DatasetOptions(heldoutFraction: 0.2, heldoutPath: dir.file("e-test.h5"), seed: 7))
        #expect(try WrittenDataset(dir.file("e-test.h5")).bytes == held.bytes)
        try prepareDataset(.idx(images: dir.file("i.gz"), labels: nil), out: dir.file("f.h5"),
                           options: DatasetOptions(heldoutFraction: 0.2, seed: 8))
        #expect(try WrittenDataset(dir.file("f-heldout.h5")).bytes != held.bytes)
    }

    @Test func failedWriteLeavesNoPartialDataset() throws {
        let dir = try PrepScratch()
        PrepFixtures.writeIDX(dir.file("i.gz"), shape: [6, 3, 2], bytes: Self.idxImages)
        PrepFixtures.createFile(atPath: dir.file("blocker"), contents: Data())
        // The held-out file cannot be created (its directory would be under a plain file).
        let bad = dir.file("blocker/sub/h.h5")
        #expect { try prepareDataset(.idx(images: dir.file("i.gz"), labels: nil), out: dir.file("d.h5"),
                                     options: DatasetOptions(heldoutFraction: 0.5, heldoutPath: bad)) } throws: { "\($0)".contains(bad) }
        #expect(dir.listing() == ["blocker", "i.gz"])
    }

    @Test func npyUInt8NHWCIsTransposedAndConvertedToLuminance() throws {
        let dir = try PrepScratch()
        // [2, 2, 3, 3] NHWC: image n, pixel p, channel c = 40·n + 10·p + 3·c (+ a bright pixel).
        var body = [UInt8]()
        for n in 0..<2 { for p in 0..<6 { for c in 0..<3 { body.append(UInt8(40 * n + 10 * p + 3 * c)) } } }
        body[3 * 5 + 0] = 255; body[3 * 5 + 1] = 254; body[3 * 5 + 2] = 1   // image 0, pixel 5
        PrepFixtures.writeNPY(dir.file("x.npy"), descr: "|u1", shape: [2, 2, 3, 3], body: body)
        try prepareDataset(.npy(dir.file("x.npy"), layout: .auto), out: dir.file("rgb.h5"))
        let rgb = try WrittenDataset(dir.file("rgb.h5"))
        #expect(rgb.shape == [2, 3, 2, 3] && rgb.dtype == "uint8" && rgb.labels == nil)
        for n in 0..<2 { for c in 0..<3 { for p in 0..<6 {
            #expect(rgb.bytes[(n * 3 + c) * 6 + p] == body[(n * 6 + p) * 3 + c])
        } } }
        try prepareDataset(.npy(dir.file("x.npy"), layout: .nhwc), out: dir.file("gray.h5"), options: DatasetOptions(pad: 2, channels: 1))
        let gray = try WrittenDataset(dir.file("gray.h5"))
        #expect(gray.shape == [2, 1, 6, 7])
        for n in 0..<2 { for p in 0..<6 {
            let (r, g, b) = (Double(body[(n * 6 + p) * 3]), Double(body[(n * 6 + p) * 3 + 1]), Double(body[(n * 6 + p) * 3 + 2]))
            let y = UInt8((0.299 * r + 0.587 * g + 0.114 * b).rounded())
            #expect(gray.bytes[(n * 6 + 2 + p / 3) * 7 + 2 + p % 3] == y)
        } }
        #expect(gray.bytes[(1 * 6 + 1) * 7 + 1] == 0)
        // Explicit NCHW reads the same bytes as [2, 2, 3, 3] = C 2, H 3, W 3: kept as they are.
        try prepareDataset(.npy(dir.file("x.npy"), layout: .nchw), out: dir.file("asis.h5"))
        let asis = try WrittenDataset(dir.file("asis.h5"))
        #expect(asis.shape == [2, 2, 3, 3] && asis.bytes == body)
    }

    @Test func npyFloat32NCHWAndFloat64AndVersion2() throws {
        let dir = try PrepScratch()
        let values: [Float] = (0..<(3 * 3 * 2 * 2)).map { Float($0) / 18 - 1 }   // in [−1, 1)
        PrepFixtures.writeNPY(dir.file("f.npy"), descr: "<f4", shape: [3, 3, 2, 2], body: PrepFixtures.littleEndian(values))
        try prepareDataset(.npy(dir.file("f.npy"), layout: .auto), out: dir.file("f.h5"), options: DatasetOptions(pad: 1))
        let f = try WrittenDataset(dir.file("f.h5"))
        #expect(f.shape == [3, 3, 4, 4] && f.dtype == "float32")
        #expect(f.floats[0] == -1)                                       // padding is black: −1
        let inner: Int = (1 * 3 + 2) * 16 + 1 * 4 + 2, source: Int = (1 * 3 + 2) * 4 + 1
        #expect(f.floats[inner] == values[source])
        PrepFixtures.writeNPY(dir.file("d.npy"), descr: "<f8", shape: [3, 3, 2, 2],
                              body: PrepFixtures.littleEndian(values.map(Double.init)), major: 2)
        try prepareDataset(.npy(dir.file("d.npy"), layout: .auto), out: dir.file("d.h5"))
        let d = try WrittenDataset(dir.file("d.h5"))
        #expect(d.shape == [3, 3, 2, 2] && d.dtype == "float32" && d.floats == values)
        // Rank 3 gray, format v3.
        PrepFixtures.writeNPY(dir.file("g.npy"), descr: "|u1", shape: [2, 2, 2], body: [1, 2, 3, 4, 5, 6, 7, 8], major: 3)
        try prepareDataset(.npy(dir.file("g.npy"), layout: .auto), out: dir.file("g.h5"))
        let g = try WrittenDataset(dir.file("g.h5"))
        #expect(g.shape == [2, 1, 2, 2] && g.bytes == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func npyErrorsNameTheFile() throws {
        let dir = try PrepScratch()
        let cases: [(String, () -> Void, String)] = [
            ("i8.npy", { PrepFixtures.writeNPY(dir.file("i8.npy"), descr: "<i8", shape: [1, 1, 1], body: [UInt8](repeating: 0, count: 8)) }, "'<i8'"),
            ("fortran.npy", { PrepFixtures.writeNPY(dir.file("fortran.npy"), descr: "|u1", shape: [1, 2, 2], body: [0, 0, 0, 0], fortran: true) }, "Fortran"),
            ("short.npy", { PrepFixtures.writeNPY(dir.file("short.npy"), descr: "|u1", shape: [2, 2, 2], body: [0, 0, 0]) }, "truncated"),
            ("rank2.npy", { PrepFixtures.writeNPY(dir.file("rank2.npy"), descr: "|u1", shape: [2, 2], body: [0, 0, 0, 0]) }, "rank 2"),
            ("range.npy", { PrepFixtures.writeNPY(dir.file("range.npy"), descr: "<f4", shape: [1, 1, 1], body: PrepFixtures.littleEndian([Float(3)])) }, "[−1, 1]"),
            ("missing.npy", {}, "no such file"),
        ]
        for (name, make, phrase) in cases {
            make()
            let path = dir.file(name)
            #expect { try prepareDataset(.npy(path, layout: .auto), out: dir.file("x.h5")) }
                throws: { "\($0)".contains(path) && "\($0)".contains(phrase) }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.h5")))
    }

    @Test func cifarFilesAndDirectory() throws {
        let dir = try PrepScratch()
        try FileManager.default.createDirectory(atPath: dir.file("batches"), withIntermediateDirectories: true)
        let labels: [UInt8] = [3, 0, 9, 1, 5]
        PrepFixtures.createFile(atPath: dir.file("batches/data_batch_1.bin"),
                                       contents: Data(PrepFixtures.cifarRecords(labels: Array(labels[..<3]))))
        PrepFixtures.createFile(atPath: dir.file("batches/data_batch_2.bin"),
                                       contents: Data(PrepFixtures.cifarRecords(labels: Array(labels[3...]), offset: 3)))
        PrepFixtures.createFile(atPath: dir.file("batches/test_batch.bin"),
                                       contents: Data(PrepFixtures.cifarRecords(labels: [2])))
        let all = PrepFixtures.cifarRecords(labels: labels)
        PrepFixtures.createFile(atPath: dir.file("five.bin"), contents: Data(all))
        try prepareDataset(.cifar10([dir.file("five.bin")]), out: dir.file("a.h5"))
        try prepareDataset(.cifar10([dir.file("batches")]), out: dir.file("b.h5"), options: DatasetOptions(channels: 1))
        let a = try WrittenDataset(dir.file("a.h5"))
        #expect(a.shape == [5, 3, 32, 32] && a.dtype == "uint8" && a.labels == labels.map(Int64.init))
        // Record r's bytes after the label are the CHW planes as they are.
        for r in 0..<5 { #expect(Array(a.bytes[(r * 3072)..<((r + 1) * 3072)]) == Array(all[(r * 3073 + 1)..<((r + 1) * 3073)])) }
        let b = try WrittenDataset(dir.file("b.h5"))
        #expect(b.shape == [5, 1, 32, 32] && b.labels == labels.map(Int64.init))   // the test batch is not included
        let (r, g, bl) = (Int(all[3073 * 4 + 1 + 100]), Int(all[3073 * 4 + 1 + 1024 + 100]), Int(all[3073 * 4 + 1 + 2048 + 100]))
        #expect(b.bytes[4 * 1024 + 100] == UInt8((0.299 * Double(r) + 0.587 * Double(g) + 0.114 * Double(bl)).rounded()))
        // A size that is not a whole number of records, a label above 9, a directory without batches.
        PrepFixtures.createFile(atPath: dir.file("odd.bin"), contents: Data(all.prefix(3073 * 2 + 5)))
        var badLabel = PrepFixtures.cifarRecords(labels: [1, 2]); badLabel[3073] = 42
        PrepFixtures.createFile(atPath: dir.file("label.bin"), contents: Data(badLabel))
        try FileManager.default.createDirectory(atPath: dir.file("empty"), withIntermediateDirectories: true)
        for name in ["odd.bin", "label.bin", "empty", "missing.bin"] {
            let path = dir.file(name)
            #expect { try prepareDataset(.cifar10([dir.file("five.bin"), path]), out: dir.file("x.h5")) } throws: { "\($0)".contains(path) }
        }
    }

    @Test func pngFolderSortedByNameAndMismatchNamed() throws {
        let dir = try PrepScratch()
        try FileManager.default.createDirectory(atPath: dir.file("pngs"), withIntermediateDirectories: true)
        let images = (0..<3).map { n in PNGImage(width: 4, height: 2, channels: 3, pixels: (0..<24).map { UInt8(n * 50 + $0) }) }
        // Written out of order; read back sorted by name.
        try images[2].write(to: dir.file("pngs/c.png"))
        try images[0].write(to: dir.file("pngs/a.png"))
        try images[1].write(to: dir.file("pngs/b.PNG"))
        PrepFixtures.createFile(atPath: dir.file("pngs/notes.txt"), contents: Data("x".utf8))
        let summary = try prepareDataset(.pngFolder(dir.file("pngs")), out: dir.file("p.h5"), options: DatasetOptions(pad: 1))
        #expect(summary.shape == [3, 3, 4, 6])
        let p = try WrittenDataset(dir.file("p.h5"))
        #expect(p.shape == [3, 3, 4, 6] && p.dtype == "uint8" && p.labels == nil)
        for n in 0..<3 { for c in 0..<3 { for y in 0..<2 { for x in 0..<4 {
            #expect(p.bytes[((n * 3 + c) * 4 + y + 1) * 6 + x + 1] == images[n][y, x, c])
        } } } }
        // A PNG of another size is named.
        try PNGImage(width: 4, height: 3, channels: 3, pixels: [UInt8](repeating: 9, count: 36)).write(to: dir.file("pngs/d.png"))
        #expect { try prepareDataset(.pngFolder(dir.file("pngs")), out: dir.file("q.h5")) }
            throws: { "\($0)".contains(dir.file("pngs/d.png")) }
        // A gray PNG among RGB ones too.
        try FileManager.default.removeItem(atPath: dir.file("pngs/d.png"))
        try PNGImage(width: 4, height: 2, channels: 1, pixels: [UInt8](repeating: 9, count: 8)).write(to: dir.file("pngs/b2.png"))
        #expect { try prepareDataset(.pngFolder(dir.file("pngs")), out: dir.file("q.h5")) }
            throws: { "\($0)".contains(dir.file("pngs/b2.png")) }
        #expect { try prepareDataset(.pngFolder(dir.file("none")), out: dir.file("q.h5")) } throws: { "\($0)".contains(dir.file("none")) }
    }

    @Test(arguments: ToySet.allCases)
    func toySets(_ set: ToySet) throws {
        let dir = try PrepScratch()
        let out = dir.file("\(set.rawValue).h5")
        let summary = try prepareDataset(.toy(set, count: 1000, noise: 0.05, seed: 3), out: out)
        #expect(summary.shape == [1000, 2] && summary.dtype == "float32")
        let d = try WrittenDataset(out)
        #expect(d.shape == [1000, 2] && d.dtype == "float32")
        #expect(d.attributes["format"] == "disttrain-dataset" && d.attributes["source"]?.contains(set.rawValue) == true)
        let xs = stride(from: 0, to: 2000, by: 2).map { d.floats[$0] }, ys = stride(from: 1, to: 2000, by: 2).map { d.floats[$0] }
        // Roughly [−1, 1]: within 1.3 (noise), and spread out.
        #expect(d.floats.allSatisfy { abs($0) < 1.3 })
        #expect(xs.max()! - xs.min()! > 1.2 && ys.max()! - ys.min()! > 0.8)
        let meanX = xs.reduce(0, +) / 1000, meanY = ys.reduce(0, +) / 1000
        #expect(abs(meanX) < 0.35 && abs(meanY) < 0.35)
        switch set {
        case .twoMoons:
            #expect(d.labels?.filter { $0 == 0 }.count == 500 && d.labels?.filter { $0 == 1 }.count == 500)
            #expect(d.labels?.prefix(20).contains(1) == true)   // shuffled, not 500 zeros first
        case .gaussianMixture:
            let labels = try #require(d.labels)
            for k in 0..<8 { #expect(labels.filter { $0 == k }.count == (k < 1000 % 8 ? 125 + 1 : 125)) }
            // Every point lies near its component's centre.
            for i in 0..<1000 {
                let a = 2 * Double.pi * Double(labels[i]) / 8
                let dx = Double(xs[i]) - 0.8 * cos(a), dy = Double(ys[i]) - 0.8 * sin(a)
                #expect((dx * dx + dy * dy).squareRoot() < 0.05 * 6)
            }
        case .swissRoll:
            #expect(d.labels == nil)
        }
        // Same seed → same points; another seed → others.
        let again = try set.generate(count: 1000, noise: 0.05, seed: 3)
        #expect(again.pixels == .float32(d.floats))
        #expect(try set.generate(count: 1000, noise: 0.05, seed: 4).pixels != again.pixels)
        // Points cannot be padded.
        #expect(throws: IOError.self) { try prepareDataset(.toy(set, count: 10, noise: 0, seed: 0), out: dir.file("p.h5"), options: DatasetOptions(pad: 2)) }
    }
}
