import Foundation
import Testing

@Suite struct CommandLineTests {
    @Test func modelsListsExactParameterCountsAndForwardCost() throws {
        let r = try BinaryRunner.run(["models"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let cnn = try #require(lines.first { $0.hasPrefix("cnn ") })
        let large = try #require(lines.first { $0.hasPrefix("cnn-large ") })
        #expect(cnn.contains("CNNDenoiser ") && cnn.contains("3,321,475") && cnn.contains(" 908,042,240 "))
        #expect(large.contains("CNNDenoiserLarge") && large.contains("53,441,795") && large.contains(" 5,289,230,336 "))
        // Buffer floats (two running statistics per BatchNorm channel) and BatchNorm layers: 2 in each of 5 blocks.
        #expect(cnn.contains(" 3,328  10 "), "\(cnn)")
        #expect(lines.contains { $0.hasPrefix("mlp ") && $0.contains("17,282") })
        // The seeds' models, one line per instance of ZOO.md's table, with the options that make it.
        let sprites = try #require(lines.first { $0.contains(" context_unet ") })
        #expect(sprites.hasPrefix("context-unet ") && sprites.contains("1,481,027") && sprites.contains("2,816") && sprites.contains("150,660,224")
                && sprites.contains("3×16×16") && sprites.contains("--features 64 --context-features 5"), "\(sprites)")
        let fashion = try #require(lines.first { $0.contains(" context_unet_fmnist ") })
        #expect(fashion.contains("2,020,225") && fashion.contains("459,404,352") && fashion.contains("1×28×28"), "\(fashion)")
        // MyUNet: trainable, frozen (its time-embedding table), buffers, BatchNorm layers, MACs, as ZOO.md §0's row.
        #expect(lines.first?.contains("parameters    frozen   buffers  BN") == true, "\(lines.first ?? "")")
        let myUNet = try #require(lines.first { $0.hasPrefix("my-unet       my_unet ") })
        #expect(myUNet.contains("MyUNet") && myUNet.contains(" 506,852   100,000         0   0           24,931,521  1×28×28"), "\(myUNet)")
        let lens = try #require(lines.first { $0.contains(" ddim_unet ") })
        #expect(lens.hasPrefix("ddim-unet ") && lens.contains("1,950,497") && lens.contains("2,880") && lens.contains("1,141,374,976")
                && lens.contains("1×64×64") && lens.contains("--channels 32,64,96,128 --block-depth 2"), "\(lens)")
        let flowers = try #require(lines.first { $0.contains(" ddim_unet_rgb ") })
        #expect(flowers.contains("1,950,627") && flowers.contains("1,141,899,264") && flowers.contains("3×64×64"), "\(flowers)")
    }

    @Test func benchEndsWithOneJSONObjectOfItsFigures() throws {
        let r = try BinaryRunner.run(["bench", "--model", "cnn", "--batch-size", "2", "--steps", "1", "--warmup", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        let last = try #require(r.stdout.split(separator: "\n").last)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        for key in ["model", "batch", "threads", "img_per_s", "gflops", "sgemm_peak_gflops", "peak_fraction", "peak_rss_mb"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["model"] as? String == "cnn")
        #expect(json["batch"] as? Int == 2)
        let imagesPerSecond = try #require(json["img_per_s"] as? Double)
        let gflops = try #require(json["gflops"] as? Double)
        // FLOPs are 6 × forward MACs: 6 × 0.908 G per image.
        #expect(abs(gflops - imagesPerSecond * 6 * 0.908042240) < 0.01 * gflops + 1e-3)
        #expect((json["peak_rss_mb"] as? Double ?? 0) > 10)
    }

    @Test func benchRejectsAnUnknownModelNamingTheOption() throws {
        let r = try BinaryRunner.run(["bench", "--model", "resnet"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--model") && r.stderr.contains("resnet"))
    }

    @Test func benchRejectsAZeroBatchSize() throws {
        let r = try BinaryRunner.run(["bench", "--batch-size", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--batch-size"))
    }
}
