import Foundation
import Testing

/// `disttrain prepare` as users run it.
@Suite struct PrepareCommandTests {
    @Test func resizeBelowOneIsRefusedNamingTheOption() throws {
        let r = try BinaryRunner.run(["prepare", "--source", "png-folder", "--input", ".", "--out", "x.h5", "--resize", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--resize must be in 1…4096, got 0"), "\(r.stderr)")
        let points = try BinaryRunner.run(["prepare", "--source", "two-moons", "--out", "x.h5", "--resize", "8"])
        #expect(points.status != 0)
        #expect(points.stderr.contains("--resize does not apply"), "\(points.stderr)")
    }
}
