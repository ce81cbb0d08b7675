import Foundation
import IO
import Testing

/// A model added to the registry (one file in Sources/Models, one line in ModelRegistry.swift) goes
/// through every command like the others: the test suite's tiny U-Net, `cnn-tiny`.
@Suite struct RegisteredModelTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    @Test func theTinyUNetTrainsSamplesPredictsAndIsListedThroughTheRegistry() throws {
        let dir = try BinaryRunner.temporaryDirectory("cnn-tiny")
        try DistributedTrainingTests.writeImages(dir + "/images.h5", count: 16)
        let models = try BinaryRunner.run(["models"])
        #expect(models.status == 0 && models.stdout.contains("cnn-tiny") && models.stdout.contains("CNNDenoiserTiny"), "\(models.stdout)")
        let train = try BinaryRunner.mpirun(2, ["train", "--model", "cnn-tiny", "--data", "images.h5", "--batch-size", "4", "--steps", "3",
                                                "--checkpoint-every", "3", "--sample-count", "4", "--sampler-steps", "3", "--out", "run"],
                                            in: dir, timeout: 120)
        #expect(train.status == 0 && !train.timedOut, "\(train.stderr)")
        #expect(train.stdout.contains("training CNNDenoiserTiny (19,593 parameters)"), "\(train.stdout)")
        let checkpoint = dir + "/run/ckpt-00000003.h5"
        #expect(try HDF5File.open(checkpoint).attribute("model") == "cnn-tiny")
        #expect(FileManager.default.fileExists(atPath: dir + "/run/samples/step-00000003.png"))
        let sample = try BinaryRunner.run(["sample", "--checkpoint", checkpoint, "--count", "2", "--sampler-steps", "2", "--out", dir + "/s.png"])
        #expect(sample.status == 0, "\(sample.stderr)")
        let input = try HDF5File.create(dir + "/x.h5")
        try input.write("x", [Float](repeating: 0.1, count: 2 * 64), shape: [2, 1, 8, 8])
        try input.write("t", [Int64](arrayLiteral: 5, 900), shape: [2])
        try input.close()
        let predict = try BinaryRunner.run(["predict", "--checkpoint", checkpoint, "--input", dir + "/x.h5", "--out", dir + "/eps.h5"])
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(try HDF5File.open(dir + "/eps.h5").shape(of: "eps") == [2, 1, 8, 8])
        // Resumed by name from its checkpoint, one step further.
        let resume = try BinaryRunner.mpirun(2, ["train", "--out", "run", "--resume", "--steps", "4", "--checkpoint-every", "4", "--sample-count", "0"],
                                             in: dir, timeout: 120)
        #expect(resume.status == 0 && resume.stdout.contains("resumed from"), "\(resume.stderr)")
    }

    /// `--conv-algorithm winograd` (and each tile size) runs the same training to rounding, the plan is
    /// logged, the checkpoint records the choice, and `sample` can run it with another algorithm and 2 threads.
    @Test func winogradConvolutionsTrainTheSameModelToRounding() throws {
        let dir = try BinaryRunner.temporaryDirectory("winograd")
        try DistributedTrainingTests.writeImages(dir + "/images.h5", count: 16)
        var firstLoss: [String: Double] = [:]
        let algorithms = ["im2col", "winograd", "winograd-f2"]
        for algorithm in algorithms {
            let r = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--data", "images.h5", "--batch-size", "4", "--steps", "2",
                                          "--sample-count", "0", "--conv-algorithm", algorithm, "--out", algorithm], in: dir, timeout: 120)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("convolutions (--conv-algorithm \(algorithm)): "), "\(r.stdout)")
            let file = try HDF5File.open(dir + "/\(algorithm)/ckpt-00000002.h5")
            #expect(file.attribute("configuration")?.contains("\"convolutions\":\"\(algorithm)\"") == true)
            let csv = try String(contentsOfFile: dir + "/\(algorithm)/metrics.csv", encoding: .utf8).split(separator: "\n")
            firstLoss[algorithm] = Double(csv[1].split(separator: ",")[2])
        }
        let a = try #require(firstLoss["im2col"])
        for algorithm in algorithms.dropFirst() {
            let b = try #require(firstLoss[algorithm])
            #expect(abs(a - b) <= 1e-4 * a, "first-step loss \(a) with im2col, \(b) with \(algorithm)")
        }
        // Two threads split the products and run Winograd's per-cell products in parallel: the same step.
        let threaded = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--data", "images.h5", "--batch-size", "4", "--steps", "2",
                                             "--sample-count", "0", "--conv-algorithm", "winograd", "--threads", "2", "--out", "threads2"],
                                            in: dir, timeout: 120)
        #expect(threaded.status == 0, "\(threaded.stderr)")
        let csv = try String(contentsOfFile: dir + "/threads2/metrics.csv", encoding: .utf8).split(separator: "\n")
        let lossAt2 = try #require(Double(csv[1].split(separator: ",")[2])), lossAt1 = try #require(firstLoss["winograd"])
        #expect(abs(lossAt2 - lossAt1) <= 1e-6 * lossAt1, "first-step loss \(lossAt1) at 1 thread, \(lossAt2) at 2")
        let sample = try BinaryRunner.run(["sample", "--checkpoint", "winograd/ckpt-00000002.h5", "--count", "4", "--sampler", "ddim",
                                           "--sampler-steps", "3", "--threads", "2", "--conv-algorithm", "winograd-f4", "--out", "s.png"],
                                          in: dir, timeout: 120)
        #expect(sample.status == 0 && sample.stdout.contains("sampling took"), "\(sample.stderr)")
        let bench = try BinaryRunner.run(["bench", "--model", "cnn-tiny", "--batch-size", "2", "--steps", "1", "--warmup", "0", "--conv-algorithm", "winograd"])
        #expect(bench.status == 0 && bench.stdout.contains("\"conv_algorithm\":\"winograd\""), "\(bench.stderr)")
    }

    @Test func anUnknownModelIsRefusedListingTheRegisteredOnes() throws {
        let r = try BinaryRunner.run(["train", "--model", "resnet"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("resnet") && r.stderr.contains("cnn-tiny") && r.stderr.contains("cnn-large"), "\(r.stderr)")
    }
}
