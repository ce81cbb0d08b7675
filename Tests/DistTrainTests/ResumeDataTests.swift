import Foundation
import IO
import Testing

/// A checkpoint records the data it was trained on; `--resume` on other data stops unless asked for.
@Suite(.serialized) struct ResumeDataTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    static func training(data: String) -> [String] {
        ["train", "--model", "cnn", "--data", data, "--batch-size", "4", "--steps", "4", "--checkpoint-every", "2",
         "--sample-count", "0", "--seed", "3", "--out", "run"]
    }

    /// 2 of 4 steps on 32 images by 2 ranks in `dir/run`, and 16 other images in `dir/small.h5`.
    static func halfwayRun(_ name: String) throws -> String {
        let dir = try BinaryRunner.temporaryDirectory(name)
        try DistributedTrainingTests.writeImages(dir + "/images.h5", count: 32)
        try DistributedTrainingTests.writeImages(dir + "/small.h5", count: 16, seed: 8)
        let first = try BinaryRunner.mpirun(2, training(data: "images.h5") + ["--halt-after", "2"], in: dir, timeout: 120)
        #expect(first.status == 0 && !first.timedOut, "\(first.stderr)")
        let checkpoint = try HDF5File.open(dir + "/run/ckpt-00000002.h5")
        #expect(checkpoint.attribute("data_count") == "32" && checkpoint.attribute("data_path")?.hasSuffix("/images.h5") == true)
        return dir
    }

    @Test func resumingOnOtherDataIsRefusedNamingBothAndWritesNothing() throws {
        let dir = try Self.halfwayRun("other-data")
        let before = BadInputTests.snapshot(dir + "/run")
        let r = try BinaryRunner.mpirun(2, Self.training(data: "small.h5") + ["--resume"], in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(r, names: ["ckpt-00000002.h5", "images.h5", "small.h5", "--allow-other-data"],
                                         problem: ["path, count, contents (fingerprint) differ"], out: dir + "/run", before: before)
    }

    /// Without --data the run continues on the checkpoint's file, which must still hold the same data.
    @Test func resumingAfterTheDataFileChangedInPlaceIsRefused() throws {
        let dir = try Self.halfwayRun("changed-data")
        try FileManager.default.removeItem(atPath: dir + "/images.h5")
        try DistributedTrainingTests.writeImages(dir + "/images.h5", count: 32, seed: 99)
        let before = BadInputTests.snapshot(dir + "/run")
        let r = try BinaryRunner.mpirun(2, ["train", "--out", "run", "--resume"], in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(r, names: ["ckpt-00000002.h5", "images.h5"], problem: ["contents (fingerprint) differ"],
                                         out: dir + "/run", before: before)
        #expect(!r.stderr.contains("path,") && !r.stderr.contains("count,"), "\(r.stderr)")
    }

    @Test func allowOtherDataContinuesOnTheNewDataFromAFreshEpoch() throws {
        let dir = try Self.halfwayRun("allow-other-data")
        let r = try BinaryRunner.mpirun(2, Self.training(data: "small.h5") + ["--resume", "--allow-other-data"], in: dir, timeout: 120)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        #expect(r.stdout.contains("--allow-other-data") && r.stdout.contains("fresh epoch 0"), "\(r.stdout)")
        #expect(r.stdout.contains("resumed from run/ckpt-00000002.h5 at step 2"), "\(r.stdout)")
        let final = try HDF5File.open(dir + "/run/ckpt-00000004.h5")
        #expect(final.attribute("data_count") == "16" && final.attribute("data_path")?.hasSuffix("/small.h5") == true)
        // 8 images per rank, batch 4: two steps from a fresh epoch 0 end at cursor 8 of epoch 0 on both ranks.
        #expect(try final.read("ranks/data", as: Int64.self).values == [0, 8, 0, 8])
        // …and the same resume without the option is now fine on the new data, refused on the old.
        let back = try BinaryRunner.mpirun(2, Self.training(data: "images.h5") + ["--resume", "--steps", "6"], in: dir, timeout: 60)
        #expect(back.status != 0 && back.stderr.contains("small.h5") && back.stderr.contains("images.h5"), "\(back.stderr)")
    }
}
