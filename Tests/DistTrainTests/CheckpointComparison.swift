import Foundation
import IO
import Testing

enum CheckpointComparison {
    /// The resume check of the model suites: `train` (4 steps, a checkpoint every 2) on two ranks straight
    /// through into DIR/straight, and stopped after step 2 into DIR/resumed and resumed there. Expects every
    /// run to succeed, the halted one to stop short and the last to resume at step 2; returns the straight
    /// run and the resuming one, whose final checkpoints are DIR/straight|resumed/ckpt-00000004.h5.
    static func straightAndResumed(_ train: [String], in dir: String, timeout: Double = 240) throws
        -> (straight: BinaryRunner.Result, resumed: BinaryRunner.Result) {
        let straight = try BinaryRunner.mpirun(2, train + ["--out", "straight"], in: dir, timeout: timeout)
        #expect(straight.status == 0 && !straight.timedOut, "\(straight.stderr)")
        let first = try BinaryRunner.mpirun(2, train + ["--out", "resumed", "--halt-after", "2"], in: dir, timeout: timeout)
        #expect(first.status == 0 && !first.timedOut, "\(first.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/resumed/ckpt-00000004.h5"))
        let second = try BinaryRunner.mpirun(2, train + ["--out", "resumed", "--resume"], in: dir, timeout: timeout)
        #expect(second.status == 0 && !second.timedOut, "\(second.stderr)")
        #expect(second.stdout.contains("resumed from") && second.stdout.contains("at step 2"), "\(second.stdout)")
        return (straight, second)
    }

    /// The float arrays under `groups` that are not bit-identical between checkpoints `a` and `b`, and
    /// how many were compared. (The integer arrays /ranks/rng and /ranks/data are left to the caller.)
    static func differingArrays(_ a: String, _ b: String, groups: [String]) throws -> (differing: [String], compared: Int) {
        let x = try HDF5File.open(a), y = try HDF5File.open(b)
        var differing: [String] = [], compared = 0
        for group in groups {
            for name in try x.members(of: group) where !(group == "ranks" && (name == "rng" || name == "data")) {
                let u = try x.read("\(group)/\(name)", as: Float.self).values, v = try y.read("\(group)/\(name)", as: Float.self).values
                if u.map(\.bitPattern) != v.map(\.bitPattern) { differing.append("\(group)/\(name)") }
                compared += 1
            }
        }
        return (differing, compared)
    }
}
