import Foundation
import IO
import Testing

/// `disttrain prepare --source lenses` as users run it.
@Suite struct PrepareLensesCommandTests {
    @Test func lensesWritesImagesAndParamsTheSameForTheSameSeed() throws {
        let dir = try BinaryRunner.temporaryDirectory("prepare-lenses")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var runs: [(images: [UInt8], params: [Float])] = []
        for (name, seed, threads) in [("a.h5", "2", "1"), ("b.h5", "2", "2"), ("c.h5", "3", "1")] {
            let r = try BinaryRunner.run(["prepare", "--source", "lenses", "--count", "12", "--size", "32", "--seed", seed,
                                          "--threads", threads, "--out", name], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("prepared 12 images of shape [1, 32, 32] (uint8)"), "\(r.stdout)")
            let f = try HDF5File.open(dir + "/" + name)
            #expect(try f.shape(of: "images") == [12, 1, 32, 32])
            #expect(try f.shape(of: "params") == [12, LensParameters.names.count])
            #expect(f.attribute("param_names")?.contains("\"theta_e\"") == true)
            #expect(f.attribute("source")?.contains("seed \(seed)") == true)
            runs.append((try f.read("images", as: UInt8.self).values, try f.read("params", as: Float.self).values))
        }
        #expect(runs[0].images == runs[1].images && runs[0].params == runs[1].params)
        #expect(runs[0].images != runs[2].images && runs[0].params != runs[2].params)
    }

    @Test(arguments: [
        (["--count", "0"], "--count must be at least 1, got 0"),
        (["--size", "4"], "--size must be in 8…1024, got 4"),
        (["--resize", "32"], "--resize does not apply to --source lenses"),
        (["--pad", "2"], "--pad does not apply to --source lenses"),
        (["--noise", "0.1"], "--noise applies only to the toy sets"),
        (["--input", "x"], "--input is not used by --source lenses"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
    ])
    func badLensOptionsAreRefusedNamingTheOption(_ extra: [String], _ message: String) throws {
        let r = try BinaryRunner.run(["prepare", "--source", "lenses", "--out", "x.h5"] + extra)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func sizeIsOnlyForLenses() throws {
        let r = try BinaryRunner.run(["prepare", "--source", "two-moons", "--out", "x.h5", "--size", "64"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--size applies only to --source lenses"), "\(r.stderr)")
    }
}
