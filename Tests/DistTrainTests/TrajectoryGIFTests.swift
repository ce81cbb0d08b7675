import Foundation
import IO
import Testing
import TestSupport

/// `sample --trajectory` writes the denoising path as a PNG (one row per recorded step) and as an
/// animated GIF (one frame per recorded step).
@Suite struct TrajectoryGIFTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    @Test func trajectoryGIFHasOneFramePerRecordedStep() throws {
        let dir = try BinaryRunner.temporaryDirectory("trajectory")
        try DistributedTrainingTests.writeImages(dir + "/images.h5", count: 16)
        let train = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--data", "images.h5", "--batch-size", "4", "--steps", "2",
                                          "--sample-count", "0", "--out", "run"], in: dir, timeout: 120)
        #expect(train.status == 0, "\(train.stderr)")
        let sample = try BinaryRunner.run(["sample", "--checkpoint", "run/ckpt-00000002.h5", "--count", "3", "--sampler", "ddim",
                                           "--sampler-steps", "10", "--trajectory", "--out", "s.png"], in: dir, timeout: 120)
        #expect(sample.status == 0, "\(sample.stderr)")

        // The PNG: one row of 3 samples (8×8, 2-pixel borders) per recorded step.
        let png = try PNGImage.read(dir + "/s-trajectory.png")
        let rows = (png.height - 2) / (8 + 2)
        #expect(rows > 1 && png.height == rows * 8 + 2 * (rows + 1))
        let gif = try GIFProbe(dir + "/s-trajectory.gif")
        #expect(gif.frames.count == rows)
        // Each frame: the 3 samples' grid (3 columns: 3·8 + 2·4 = 32 × 12), magnified by a whole factor.
        let zoom = gif.width / 32
        #expect(zoom >= 1 && gif.width == 32 * zoom && gif.height == 12 * zoom)
        #expect(gif.loopCount == 0)
        #expect(gif.frames.first!.map(\.r) != gif.frames.last!.map(\.r))   // noise at the start, a sample at the end
        // The GIF's frames are the PNG's rows: the first sample's top-left pixel of each recorded step.
        for f in 0..<rows {
            #expect(gif.frames[f][(2 * zoom) * gif.width + 2 * zoom].r == png[2 + f * 10, 2, 0], "frame \(f)")
        }
    }
}
