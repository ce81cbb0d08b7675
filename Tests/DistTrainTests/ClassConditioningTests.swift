import Foundation
import IO
import Testing
import TestSupport

/// Class conditioning end to end through the binary: ContextUnet trained on a set where the class decides
/// the image (one bright quadrant per class) samples the asked class, guidance sharpens it, label dropout 1
/// forgets it; a 2-rank run resumes bit-exactly; bad labels and class options are refused by name.
@Suite(.serialized) struct ClassConditioningTests {
    init() { setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1) }

    /// `count` 1×side×side images: class k (= i mod 4) has quadrant k (TL, TR, BL, BR) bright, the rest dark.
    static func writeQuadrants(_ path: String, count: Int, side: Int = 16, labels: [Int64]? = nil, floatLabels: Bool = false) throws {
        var state: UInt64 = 5
        func jitter() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 59)   // 0…31
        }
        let plane = side * side, half = side / 2
        var bytes = [UInt8](repeating: 0, count: count * plane)
        for i in 0..<count {
            let k = i % 4
            for y in 0..<side { for x in 0..<side {
                let inside = (y / half) * 2 + (x / half) == k
                bytes[i * plane + y * side + x] = inside ? 224 + jitter() : jitter()
            } }
        }
        let file = try HDF5File.create(path)
        try file.write("images", bytes, shape: [count, 1, side, side])
        let values = labels ?? (0..<count).map { Int64($0 % 4) }
        if floatLabels { try file.write("labels", values.map(Float.init), shape: [count]) } else { try file.write("labels", values, shape: [count]) }
        try file.close()
    }

    /// Which quadrant of each sampled image is brightest.
    static func brightestQuadrants(_ path: String) throws -> [Int] {
        let (values, shape) = try HDF5File.open(path).read("images", as: Float.self)
        let side = shape[2], half = side / 2, plane = side * side
        return (0..<shape[0]).map { n in
            var sums = [Float](repeating: 0, count: 4)
            for y in 0..<side { for x in 0..<side { sums[(y / half) * 2 + x / half] += values[n * plane + y * side + x] } }
            return sums.indices.max { sums[$0] < sums[$1] }!
        }
    }

    static let model = ["--model", "context-unet", "--features", "16", "--context-features", "4"]

    /// Trains on the quadrants and returns, per guidance setting, the fraction of samples showing their class.
    static func accuracies(dropout: String, guidances: [String?], in dir: String) throws -> [Double] {
        let out = "run-\(dropout)"
        let train = try BinaryRunner.run(["train"] + model + ["--data", "quadrants.h5", "--batch-size", "32", "--steps", "800",
                                          "--lr", "2e-3", "--label-dropout", dropout, "--sample-count", "8", "--sample-every", "800",
                                          "--checkpoint-every", "800", "--log-every", "200", "--out", out], in: dir, timeout: 600)
        #expect(train.status == 0, "\(train.stderr)")
        var result: [Double] = []
        for guidance in guidances {
            let name = "\(out)/samples-\(guidance ?? "none")"
            let arguments = ["sample", "--checkpoint", "\(out)/ckpt-00000800.h5", "--class", "0,1,2,3", "--count", "48",
                             "--sampler", "ddim", "--sampler-steps", "20", "--seed", "3", "--out", name + ".png"]
                + (guidance.map { ["--guidance", $0] } ?? [])
            let sample = try BinaryRunner.run(arguments, in: dir, timeout: 300)
            #expect(sample.status == 0, "\(sample.stderr)")
            let found = try brightestQuadrants(dir + "/" + name + ".h5")
            // 12 samples per row, the rows in class order 0…3.
            let correct = found.enumerated().filter { $0.element == $0.offset / 12 }.count
            result.append(Double(correct) / Double(found.count))
        }
        return result
    }

    @Test func conditionalSamplesShowTheirClassGuidanceSharpensAndLabelDropoutOneForgets() throws {
        let dir = try BinaryRunner.temporaryDirectory("quadrants")
        // 8×8 (AvgPool2d(2) at the bottom): 800 steps of 32 take about 20 s here.
        try Self.writeQuadrants(dir + "/quadrants.h5", count: 512, side: 8)
        let conditional = try Self.accuracies(dropout: "0.1", guidances: [nil, "0", "3"], in: dir)
        report("quadrant accuracy, label dropout 0.1: conditional \(conditional[0]), W = 0 \(conditional[1]), W = 3 \(conditional[2])")
        // Chance is 1/4; measured: conditional 0.875, W = 0 0.125, W = 3 0.958 (after 600 steps).
        #expect(conditional[0] > 0.7, "conditional samples show their class \(conditional[0]) of the time")
        #expect(conditional[2] > conditional[1] + 0.3, "W = 3 \(conditional[2]) vs W = 0 \(conditional[1])")
        #expect(conditional[2] >= conditional[0] - 0.05)
        // The periodic grid of a conditional run has a row per class.
        #expect(FileManager.default.fileExists(atPath: dir + "/run-0.1/samples/step-00000800.png"))
        let grid = try HDF5File.open(dir + "/run-0.1/samples/step-00000800.h5").shape(of: "images")
        #expect(grid[0] == 8, "8 samples: 2 in each of the 4 rows")
        let forgotten = try Self.accuracies(dropout: "1", guidances: [nil], in: dir)
        report("quadrant accuracy, label dropout 1: \(forgotten[0])")
        #expect(forgotten[0] < 0.5, "trained without labels, the class cannot show: \(forgotten[0])")
    }

    @Test func aTwoRankConditionalRunWithLabelDropoutResumesBitExactly() throws {
        let dir = try BinaryRunner.temporaryDirectory("context-resume")
        try Self.writeQuadrants(dir + "/quadrants.h5", count: 64)
        let common = ["train"] + Self.model + ["--data", "quadrants.h5", "--batch-size", "4", "--steps", "6", "--label-dropout", "0.3",
                                              "--sync-bn", "--sample-count", "0", "--checkpoint-every", "3", "--seed", "4"]
        let straight = try BinaryRunner.mpirun(2, common + ["--out", "straight"], in: dir, timeout: 240)
        #expect(straight.status == 0, "\(straight.stderr)")
        let halted = try BinaryRunner.mpirun(2, common + ["--out", "halted", "--halt-after", "3"], in: dir, timeout: 240)
        #expect(halted.status == 0, "\(halted.stderr)")
        let resumed = try BinaryRunner.mpirun(2, ["train", "--out", "halted", "--resume"], in: dir, timeout: 240)
        #expect(resumed.status == 0 && resumed.stdout.contains("resumed from"), "\(resumed.stderr)")
        try ReliabilityTests.assertSameWeights(dir + "/straight/ckpt-00000006.h5", dir + "/halted/ckpt-00000006.h5")
        let configuration = try HDF5File.open(dir + "/halted/ckpt-00000006.h5").attribute("configuration") ?? ""
        #expect(configuration.contains("\"labelDropout\":0.3") && configuration.contains("\"features\":16"), "\(configuration)")
        // Options other than the checkpoint's are refused on resume, naming both.
        let other = try BinaryRunner.run(["train", "--out", "halted", "--resume", "--features", "24", "--steps", "7"], in: dir, timeout: 120)
        #expect(other.status != 0 && other.stderr.contains("--features 16") && other.stderr.contains("--features 24"), "\(other.stderr)")
    }

    @Test func badLabelsAndClassOptionsAreRefusedByName() throws {
        let dir = try BinaryRunner.temporaryDirectory("bad-labels")
        let train = ["train"] + Self.model + ["--batch-size", "4", "--steps", "1", "--sample-count", "0"]
        try Self.writeQuadrants(dir + "/float.h5", count: 8, floatLabels: true)
        let float = try BinaryRunner.run(train + ["--data", "float.h5", "--out", "a"], in: dir, timeout: 60)
        #expect(float.status != 0 && float.stderr.contains("float.h5: /labels is float32"), "\(float.stderr)")
        try Self.writeQuadrants(dir + "/negative.h5", count: 8, labels: [0, 1, 2, -3, 0, 1, 2, 3])
        let negative = try BinaryRunner.run(train + ["--data", "negative.h5", "--out", "b"], in: dir, timeout: 60)
        #expect(negative.status != 0 && negative.stderr.contains("negative class -3 at image 3"), "\(negative.stderr)")
        try Self.writeQuadrants(dir + "/wide.h5", count: 8, labels: [0, 1, 2, 3, 4, 5, 6, 9])
        let wide = try BinaryRunner.mpirun(2, train + ["--data", "wide.h5", "--out", "c"], in: dir, timeout: 60)
        #expect(wide.status != 0 && !wide.timedOut && wide.stderr.contains("holds class 9") && wide.stderr.contains("--context-features 10"), "\(wide.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/c/metrics.csv"), "no partial output")
        let unconditional = try BinaryRunner.run(["train", "--model", "cnn-tiny", "--data", "wide.h5", "--batch-size", "4", "--steps", "1",
                                                  "--label-dropout", "0.1", "--out", "d"], in: dir, timeout: 60)
        #expect(unconditional.status != 0 && unconditional.stderr.contains("--label-dropout: cnn-tiny is not class-conditional"), "\(unconditional.stderr)")
        // A trained conditional checkpoint: classes outside it, and guidance on an unconditional one.
        try Self.writeQuadrants(dir + "/q.h5", count: 8)
        let ok = try BinaryRunner.run(train + ["--data", "q.h5", "--out", "e", "--checkpoint-every", "1"], in: dir, timeout: 60)
        #expect(ok.status == 0, "\(ok.stderr)")
        let outside = try BinaryRunner.run(["sample", "--checkpoint", "e/ckpt-00000001.h5", "--class", "2,4", "--out", "s.png"], in: dir, timeout: 60)
        #expect(outside.status != 0 && outside.stderr.contains("--class 4: context-unet knows the classes 0…3"), "\(outside.stderr)")
        let word = try BinaryRunner.run(["sample", "--checkpoint", "e/ckpt-00000001.h5", "--class", "cat", "--out", "s.png"], in: dir, timeout: 60)
        #expect(word.status != 0 && word.stderr.contains("'cat' is not one"), "\(word.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/s.png"))
        let none = try BinaryRunner.run(["sample", "--checkpoint", "e/ckpt-00000001.h5", "--class", "none", "--count", "2",
                                         "--sampler-steps", "2", "--guidance", "2", "--out", "n.png"], in: dir, timeout: 60)
        #expect(none.status == 0, "\(none.stderr)")
        // predict takes a conditional model's labels (−1: none) beside /x and /t, and checks them.
        for (name, labels) in [("p-ok", [Int64](arrayLiteral: 2, -1)), ("p-bad", [7, 0])] {
            let input = try HDF5File.create(dir + "/\(name).h5")
            try input.write("x", [Float](repeating: 0.2, count: 2 * 256), shape: [2, 1, 16, 16])
            try input.write("t", [Int64](arrayLiteral: 10, 500), shape: [2])
            try input.write("labels", labels, shape: [2])
            try input.close()
        }
        let predicted = try BinaryRunner.run(["predict", "--checkpoint", "e/ckpt-00000001.h5", "--input", "p-ok.h5", "--out", "eps.h5"], in: dir, timeout: 60)
        #expect(predicted.status == 0, "\(predicted.stderr)")
        let refused = try BinaryRunner.run(["predict", "--checkpoint", "e/ckpt-00000001.h5", "--input", "p-bad.h5", "--out", "eps2.h5"], in: dir, timeout: 60)
        #expect(refused.status != 0 && refused.stderr.contains("/labels holds class 7"), "\(refused.stderr)")
    }
}
