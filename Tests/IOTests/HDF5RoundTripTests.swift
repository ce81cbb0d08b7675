import Foundation
import Testing
@testable import IO

@Suite struct HDF5RoundTripTests {
    let directory: URL

    init() throws {
        // why: a singleton MPI_Init (MPIBridgeTests, same process) forks a helper that inherits open
        // files; HDF5's file locks would then outlive the file handles.
        setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("disttrain-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static let floats: [Float] = [0, -0.0, 1, -1.5, .pi, .infinity, -.infinity, .nan, .leastNonzeroMagnitude,
                                  .greatestFiniteMagnitude, Float(bitPattern: 0x7FC0_1234), 1e-30]
    static let doubles: [Double] = [.pi, -0.0, .nan, 1e-300, -.greatestFiniteMagnitude, 0.1]
    static let integers: [Int64] = [.min, -1, 0, 1, .max, 1 << 40]
    static let bytes: [UInt8] = [0, 1, 127, 128, 254, 255]

    func writeSample(_ file: String) throws {
        let f = try HDF5File.create(file)
        try f.write("model/params/down1.conv1.weight", Self.floats, shape: [2, 3, 2])
        try f.write("model/params/scalar", [Float(42.5)], shape: [])
        try f.write("optimizer/moments/m", Self.doubles, shape: [3, 2])
        try f.write("rng/state", Self.integers)
        try f.write("data/images/batch0", Self.bytes, shape: [1, 2, 3])
        try f.write("data/labels", [Int32](arrayLiteral: -7, 0, 9))
        try f.setAttribute("format", "disttrain checkpoint v1")
        try f.setAttribute("kind", "unet", on: "model")
        try f.setAttribute("note", "β₁ = 0.9, ε = 1e-8", on: "optimizer/moments/m")
        try f.setAttribute("empty", "")
        try f.setAttribute("kind", "mlp", on: "model")   // overwriting keeps one attribute, the new value
    }

    @Test func everyElementTypeRoundTripsBitExactWithShapes() throws {
        let file = path("roundtrip.h5")
        try writeSample(file)
        let f = try HDF5File.open(file)
        let (floats, floatShape) = try f.read("model/params/down1.conv1.weight", as: Float.self)
        #expect(floatShape == [2, 3, 2])
        #expect(floats.map(\.bitPattern) == Self.floats.map(\.bitPattern))
        let (scalar, scalarShape) = try f.read("model/params/scalar", as: Float.self)
        #expect(scalarShape == [] && scalar == [42.5])
        let (doubles, doubleShape) = try f.read("optimizer/moments/m", as: Double.self)
        #expect(doubleShape == [3, 2] && doubles.map(\.bitPattern) == Self.doubles.map(\.bitPattern))
        let (integers, integerShape) = try f.read("rng/state", as: Int64.self)
        #expect(integerShape == [6] && integers == Self.integers)
        let (bytes, byteShape) = try f.read("data/images/batch0", as: UInt8.self)
        #expect(byteShape == [1, 2, 3] && bytes == Self.bytes)
        #expect(try f.read("data/labels", as: Int32.self).values == [-7, 0, 9])
        #expect(try f.shape(of: "optimizer/moments/m") == [3, 2])
    }

    @Test func readsConvertBetweenNumericTypes() throws {
        let file = path("convert.h5")
        try writeSample(file)
        let f = try HDF5File.open(file)
        #expect(try f.read("data/labels", as: Int64.self).values == [-7, 0, 9])
        #expect(try f.read("data/labels", as: Double.self).values == [-7, 0, 9])
        #expect(try f.read("model/params/scalar", as: Double.self).values == [42.5])
        #expect(try f.read("data/images/batch0", as: Float.self).values == Self.bytes.map(Float.init))
    }

    @Test func groupsMembersAndAttributesRoundTrip() throws {
        let file = path("groups.h5")
        try writeSample(file)
        let f = try HDF5File.open(file)
        #expect(try f.members() == ["data", "model", "optimizer", "rng"])
        #expect(try f.members(of: "model/params") == ["down1.conv1.weight", "scalar"])
        #expect(try f.members(of: "data") == ["images", "labels"])
        #expect(f.contains("model/params/down1.conv1.weight") && f.contains("model") && f.contains("data/images"))
        #expect(!f.contains("model/params/missing") && !f.contains("nothing/here") && !f.contains(""))
        #expect(f.attribute("format") == "disttrain checkpoint v1")
        #expect(f.attribute("kind", on: "model") == "mlp")
        #expect(f.attribute("note", on: "optimizer/moments/m") == "β₁ = 0.9, ε = 1e-8")
        #expect(f.attribute("empty") == "")
        #expect(f.attribute("absent") == nil && f.attribute("kind") == nil)
    }

    @Test func reopeningForWritingKeepsTheDataAndAddsToIt() throws {
        let file = path("append.h5")
        try writeSample(file)
        do {
            let f = try HDF5File.open(file, writable: true)
            try f.write("model/params/extra", [Float(1), 2], shape: [2])
        }
        let f = try HDF5File.open(file)
        #expect(try f.read("model/params/extra", as: Float.self).values == [1, 2])
        #expect(try f.read("rng/state", as: Int64.self).values == Self.integers)
        // A read-only file refuses writes with an error rather than crashing.
        #expect(throws: HDF5Error.self) { try f.write("x", [Float(1)]) }
    }

    @Test func readingAMissingDatasetThrowsAnErrorNamingIt() throws {
        let file = path("missing.h5")
        try writeSample(file)
        let f = try HDF5File.open(file)
        let error = #expect(throws: HDF5Error.self) { try f.read("model/params/conv9.weight", as: Float.self) }
        #expect(error?.description.contains("model/params/conv9.weight") == true, "\(String(describing: error))")
        #expect(error?.description.contains(file) == true, "the error names the file too")
        let groupError = #expect(throws: HDF5Error.self) { try f.read("model/params", as: Float.self) }
        #expect(groupError?.description.contains("model/params") == true)
        #expect(throws: HDF5Error.self) { try f.members(of: "no/such/group") }
    }

    @Test func openingSomethingThatIsNotHDF5ThrowsAnErrorNamingThePath() throws {
        let text = path("not-hdf5.h5")
        try "just some text, not HDF5\n".write(toFile: text, atomically: true, encoding: .utf8)
        let error = #expect(throws: HDF5Error.self) { try HDF5File.open(text) }
        #expect(error?.description.contains(text) == true, "\(String(describing: error))")
        let missing = path("does-not-exist.h5")
        let missingError = #expect(throws: HDF5Error.self) { try HDF5File.open(missing) }
        #expect(missingError?.description.contains(missing) == true)
        let unwritable = path("no/such/directory/out.h5")
        let createError = #expect(throws: HDF5Error.self) { try HDF5File.create(unwritable) }
        #expect(createError?.description.contains(unwritable) == true)
    }
}
