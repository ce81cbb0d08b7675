import Foundation
import IO
import Testing

/// Damaged checkpoint metadata are handled like arrays failing their checksums: reported naming the
/// file and what is wrong, that checkpoint skipped, the next older one used.
@Suite(.serialized) struct CheckpointMetadataTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    static let training = ["train", "--model", "cnn", "--data", "images.h5", "--batch-size", "4", "--steps", "6",
                           "--checkpoint-every", "3", "--sample-count", "0", "--seed", "9", "--out", "run"]

    /// Checkpoints at steps 3 and 6 in `dir/run`, with `change` applied to the newest one's file.
    static func twoCheckpoints(_ name: String, change: (HDF5File) throws -> Void) throws -> String {
        let dir = try BinaryRunner.temporaryDirectory(name)
        try DistributedTrainingTests.writeImages(dir + "/images.h5")
        let first = try BinaryRunner.mpirun(2, training + ["--halt-after", "6"], in: dir, timeout: 120)
        #expect(first.status == 0 && !first.timedOut, "\(first.stderr)")
        let newest = try HDF5File.open(dir + "/run/ckpt-00000006.h5", writable: true)
        #expect(newest.attribute("metadata_checksum")?.count == 16)
        try change(newest)
        try newest.close()
        return dir
    }

    @Test func configurationThatIsNotJSONIsReportedAndTheOlderCheckpointUsed() throws {
        let dir = try Self.twoCheckpoints("metadata-json") { try $0.setAttribute("configuration", "{\"model\": \"cnn\", trunc") }
        let resumed = try BinaryRunner.mpirun(2, Self.training + ["--resume"], in: dir, timeout: 120)
        #expect(resumed.status == 0 && !resumed.timedOut, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("run/ckpt-00000006.h5: configuration attribute is not valid JSON: "), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("resumed from run/ckpt-00000003.h5 at step 3"), "\(resumed.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir + "/run/ckpt-00000006.h5"))
    }

    /// Valid JSON with another learning rate: only metadata_checksum can tell.
    @Test func alteredAttributeIsCaughtByTheMetadataChecksum() throws {
        let dir = try Self.twoCheckpoints("metadata-checksum") { file in
            let json = try #require(file.attribute("configuration"))
            let altered = json.replacingOccurrences(of: "\"learningRate\":0.001", with: "\"learningRate\":0.002")
            #expect(altered != json)
            try file.setAttribute("configuration", altered)
        }
        let resumed = try BinaryRunner.mpirun(2, Self.training + ["--resume"], in: dir, timeout: 120)
        #expect(resumed.status == 0 && !resumed.timedOut, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("run/ckpt-00000006.h5: metadata_checksum"), "\(resumed.stdout)")
        #expect(resumed.stdout.contains("resumed from run/ckpt-00000003.h5 at step 3"), "\(resumed.stdout)")
        let final = try HDF5File.open(dir + "/run/ckpt-00000006.h5")
        #expect(final.attribute("configuration")?.contains("\"learningRate\":0.001") == true)
    }

    /// A sound checkpoint of another model still stops --resume (damaged is not mismatched).
    @Test func checkpointWithAVerifiedChecksumOfAnotherModelStillStops() throws {
        let dir = try Self.twoCheckpoints("metadata-mismatch") { _ in }
        let before = BadInputTests.snapshot(dir + "/run")
        let r = try BinaryRunner.mpirun(2, ["train", "--model", "cnn-large", "--out", "run", "--resume"], in: dir, timeout: 60)
        BadInputTests.expectCleanFailure(r, names: ["ckpt-00000006.h5", "cnn-large"], problem: ["holds model cnn"], out: dir + "/run", before: before)
    }
}
