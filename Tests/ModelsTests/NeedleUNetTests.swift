import Foundation
import Testing
import TestSupport
import Tensor
@testable import Models

/// The needle U-Net (ZOO.md §3): its counts and names against ZOO.md §0, its gradients against central
/// differences of a Double reference, the gradient rule, and eval mode.
@Suite struct NeedleUNetTests {
    static func build(_ instance: String, batchCapacity: Int = 1) -> NeedleUNet {
        let architecture = ModelArchitecture.needleUNet
        return architecture.build(architecture.instances.first { $0.name == instance }!, batchCapacity: batchCapacity) as! NeedleUNet
    }

    /// A small model with uneven sizes (channels 4 < 6 < 8, d 10), so that a mixed-up channel count or
    /// level shows; three image channels, so the NCHW ↔ CNHW conversions at its boundary matter.
    static func tiny(batchCapacity: Int = 2, height: Int = 8, convolutions: ConvolutionChoice = .im2col) -> NeedleUNet {
        ModelArchitecture.needleUNet.build([3, height, height], batchCapacity, options: ModelOptions(channels: [4, 6, 8], timeDimension: 10),
                                           convolutions: convolutions) as! NeedleUNet
    }

    /// PyTorch's numel() of the needle U-Net, worked out layer by layer from ZOO.md §3.
    static func expectedParameters(_ c: NeedleUNetConfiguration) -> Int {
        func conv(_ cin: Int, _ cout: Int, _ k: Int) -> Int { cin * cout * k * k + cout }
        func block(_ cin: Int, _ cout: Int, up: Bool) -> Int {
            let timeMLP = c.timeDimension * cout + cout, batchNorms = 4 * cout
            let convolutions = conv(up ? 2 * cin : cin, cout, 3) + conv(cout, cout, 3)
            return timeMLP + convolutions + batchNorms + (up ? conv(cout, cout, 4) : 0)
        }
        let ch = c.channels, levels = c.levels
        let timeMLP = c.timeDimension * c.timeDimension + c.timeDimension
        var total = timeMLP + conv(c.inChannels, ch[0], 3) + conv(ch[0], c.inChannels, 1)
        for i in 0..<levels { total += block(ch[i], ch[i + 1], up: false) + block(ch[levels - i], ch[levels - i - 1], up: true) }
        return total
    }

    /// The state_dict keys ZOO.md §3 lists, for `levels` down and up blocks.
    static func expectedNames(levels: Int) -> (parameters: Set<String>, buffers: Set<String>) {
        var parameters: Set<String> = ["time_mlp.1.weight", "time_mlp.1.bias", "conv0.weight", "conv0.bias", "output.weight", "output.bias"]
        var buffers: Set<String> = []
        for i in 0..<levels {
            for (block, layers) in [("downs.\(i)", ["time_mlp", "conv1", "conv2"]), ("ups.\(i)", ["time_mlp", "conv1", "transform", "conv2"])] {
                for layer in layers + ["bnorm1", "bnorm2"] { parameters.formUnion(["\(block).\(layer).weight", "\(block).\(layer).bias"]) }
                for norm in ["bnorm1", "bnorm2"] { buffers.formUnion(["\(block).\(norm).running_mean", "\(block).\(norm).running_var"]) }
            }
        }
        return (parameters, buffers)
    }

    static func batchNormCount(_ model: NeedleUNet) -> Int {
        model.bufferTable.entries.filter { $0.name.hasSuffix(".running_mean") }.count
    }

    @Test func needleUNetHasZooCountsNamesAndMultiplyAccumulates() {
        let model = Self.build("needle_unet")
        #expect(model.configuration == NeedleUNetConfiguration(inChannels: 3, channels: [64, 128, 256, 512, 1024], timeDimension: 32))
        #expect(model.parameterTable.totalCount == 40_154_723)
        #expect(Self.expectedParameters(model.configuration) == 40_154_723)
        #expect(model.bufferTable.totalCount == 11_520)
        #expect(Self.batchNormCount(model) == 16)
        #expect(model.multiplyAccumulatesPerSample == 4_655_246_336)
        let names = Self.expectedNames(levels: 4)
        #expect(Set(model.parameterTable.entries.map(\.name)) == names.parameters)
        #expect(Set(model.bufferTable.entries.map(\.name)) == names.buffers)
    }

    @Test func needleUNetSmallHasZooCountsNamesAndMultiplyAccumulates() {
        let model = Self.build("needle_unet_small")
        #expect(model.configuration == NeedleUNetConfiguration(inChannels: 3, channels: [32, 64, 128], timeDimension: 16))
        #expect(model.parameterTable.totalCount == 596_787)
        #expect(Self.expectedParameters(model.configuration) == 596_787)
        #expect(model.bufferTable.totalCount == 1_152)
        #expect(Self.batchNormCount(model) == 8)
        #expect(model.multiplyAccumulatesPerSample == 584_848_128)
        let names = Self.expectedNames(levels: 2)
        #expect(Set(model.parameterTable.entries.map(\.name)) == names.parameters)
        #expect(Set(model.bufferTable.entries.map(\.name)) == names.buffers)
        // The seed notebook's 128×128: ZOO.md §0's 2,339,377,920.
        let large = ModelArchitecture.needleUNet.build([3, 128, 128], 1, options: ModelOptions(channels: [32, 64, 128], timeDimension: 16))
        #expect(large.multiplyAccumulatesPerSample == 2_339_377_920)
    }

    @Test func tableShapesFollowPyTorchLayouts() {
        let table = Self.tiny().parameterTable
        #expect(table.entry(named: "time_mlp.1.weight")?.shape == [10, 10])
        #expect(table.entry(named: "conv0.weight")?.shape == [4, 3, 3, 3])
        #expect(table.entry(named: "downs.1.conv1.weight")?.shape == [8, 6, 3, 3])
        #expect(table.entry(named: "downs.1.time_mlp.weight")?.shape == [8, 10])
        #expect(table.entry(named: "ups.0.conv1.weight")?.shape == [6, 16, 3, 3])      // cat(x, x) of the bottom: 2·8 → 6
        #expect(table.entry(named: "ups.0.transform.weight")?.shape == [6, 6, 4, 4])   // ConvTranspose2d: [Cin, Cout, k, k]
        #expect(table.entry(named: "ups.1.conv1.weight")?.shape == [4, 12, 3, 3])
        #expect(table.entry(named: "output.weight")?.shape == [3, 4, 1, 1])
        // Tiled in order, so the gradient-ready offsets mean what Layer.swift says.
        var offset = 0
        for e in table.entries { #expect(e.offset == offset, "\(e.name)"); offset += e.count }
    }

    /// ZOO.md §3's sinusoid for a general d: half = d/2, f_k = exp(−ln(10⁴)·k/(half − 1)), [sin(t·f), cos(t·f)].
    @Test func sinusoidIsZoosForAnyEvenWidth() {
        for d in [4, 10, 16, 32] {
            let t: [Int32] = [0, 150, 299]
            var ours = [Float](repeating: .nan, count: 3 * d)
            sinusoidalTimeEmbedding(output: &ours, timesteps: t, batch: 3, dimension: d)
            let half = d / 2
            var worst = 0.0
            for n in 0..<3 {
                for k in 0..<half {
                    let angle = Double(t[n]) * exp(-log(10000.0) * Double(k) / Double(half - 1))
                    let sine = abs(Double(ours[n * d + k]) - sin(angle)), cosine = abs(Double(ours[n * d + half + k]) - cos(angle))
                    worst = max(worst, sine, cosine)
                }
            }
            // Float frequencies: t·f is off by up to 300·f·2⁻²⁴ ≈ 2e-5 rad.
            #expect(worst < 1e-4, "d \(d): max |difference| \(worst)")
        }
    }

    @Test func validationNamesTheOption() {
        let a = ModelArchitecture.needleUNet
        #expect(a.validate([3, 64, 64]) == nil)
        #expect(a.validate([3, 16, 16], options: ModelOptions(channels: [8, 16], timeDimension: 8)) == nil)
        #expect(a.validate([3, 24, 24], options: ModelOptions(channels: [8, 16, 32, 64])) == nil)   // 3 poolings: 24 → 3
        #expect(a.validate([3, 64, 64], options: ModelOptions(channels: [64]))?.hasPrefix("--channels 64: ") == true)
        #expect(a.validate([3, 64, 64], options: ModelOptions(channels: [32, 32, 64]))?.contains("increase strictly") == true)
        #expect(a.validate([3, 64, 64], options: ModelOptions(channels: [0, 32]))?.hasPrefix("--channels 0,32") == true)
        #expect(a.validate([3, 64, 64], options: ModelOptions(timeDimension: 7))?.hasPrefix("--time-dim 7: ") == true)
        #expect(a.validate([3, 64, 64], options: ModelOptions(timeDimension: 2))?.hasPrefix("--time-dim 2: ") == true)
        let size = a.validate([3, 20, 20], options: ModelOptions(channels: [8, 16, 32, 64]))
        #expect(size == "images of 20×20 cannot pass 3 poolings of 2 in needle-unet (--channels 8,16,32,64): height and width must be divisible by 8 (prepare with --pad)")
        #expect(a.validate([2])?.contains("needs images") == true)
        #expect(a.validate([3, 64, 64], options: ModelOptions(features: 8))?.contains("--features is not an option of needle-unet") == true)
    }

    // MARK: Gradients

    static func tinySetup() -> ModelFiniteDifferenceTests.Setup<NeedleUNet> {
        ModelFiniteDifferenceTests.setup(tiny(), batch: 2, timesteps: [3, 250], seed: 21)
    }

    @Test func forwardEqualsIndependentDoubleReference() {
        let s = Self.tinySetup()
        let reference = ReferenceNeedleUNet(model: s.model, input: s.x, timesteps: s.t, batch: s.batch)
        let expected = reference.output(s.model.parameters.toArray().map(Double.init))
        var worst = 0.0
        for i in expected.indices { worst = max(worst, abs(Double(s.output[i]) - expected[i]) / (abs(expected[i]) + 1e-2)) }
        report("needle U-Net forward vs Double reference: max rel error (floor 1e-2) \(worst)")
        #expect(worst < 1e-4, "output differs from the reference by \(worst)")
    }

    /// Every tensor's largest gradient entry and one at random, against central differences of the Double
    /// reference (h 1e-6; 1e-7 where a ReLU or max-pool kink spoils the wider step), as the seed U-Net's check.
    @Test func gradientsMatchFiniteDifferencesInEveryTensor() {
        let s = Self.tinySetup()
        let g = s.gradient
        #expect(g.allSatisfy { $0.isFinite }, "backward must reach every gradient")
        let reference = ReferenceNeedleUNet(model: s.model, input: s.x, timesteps: s.t, batch: s.batch)
        var p = s.model.parameters.toArray().map(Double.init)
        func difference(_ i: Int, _ h: Double) -> Double {
            let old = p[i]
            p[i] = old + h; let lp = meanSquaredError(reference.output(p), s.target)
            p[i] = old - h; let lm = meanSquaredError(reference.output(p), s.target)
            p[i] = old
            return (lp - lm) / (2 * h)
        }
        var rng = SplitMix64(seed: 5)
        var checked = 0, retried = 0, worst = 0.0, worstName = ""
        for e in s.model.parameterTable.entries {
            let slice = g[e.offset..<e.offset + e.count]
            let floor = 1e-2 * ModelFiniteDifferenceTests.rms(slice)
            #expect(slice.contains { $0 != 0 }, "\(e.name): no gradient reached it")
            for i in largestAndOneRandom(slice, rng: &rng) {
                let analytic = Double(g[i])
                var err = abs(difference(i, 1e-6) - analytic) / (abs(analytic) + floor)
                if err >= ModelFiniteDifferenceTests.tolerance {
                    retried += 1
                    err = abs(difference(i, 1e-7) - analytic) / (abs(analytic) + floor)
                }
                checked += 1
                if err > worst { worst = err; worstName = e.name }
                #expect(err < ModelFiniteDifferenceTests.tolerance, "\(e.name)[\(i - e.offset)]: analytic \(analytic), relative error \(err)")
            }
        }
        report("needle U-Net FD (Double reference, h 1e-6): \(checked) coordinates, max error \(worst) in \(worstName), \(retried) retried at 1e-7")
        #expect(checked == 2 * s.model.parameterTable.entries.count)
    }

    /// The gradient rule (Models/Layer.swift): a second backward adds the same gradient again, and a fresh
    /// one (activation gradients zeroed) repeats the first exactly.
    @Test func backwardAddsIntoTheGradients() {
        let s = Self.tinySetup(), model = s.model
        var out = [Float](repeating: 0, count: s.x.count), g = out
        model.forward(input: s.x, timesteps: s.t, output: &out, batch: 2)
        _ = mseLoss(predictionGrad: &g, prediction: out, target: s.target, count: out.count)
        model.freshBackward(outputGrad: g)
        let once = model.gradients.toArray()
        model.backward(outputGrad: g)
        let twice = model.gradients.toArray()
        let floor = 1e-4 * once.map(abs).max()!
        var worst: Float = 0
        for i in once.indices { worst = max(worst, abs(twice[i] - 2 * once[i]) / (2 * abs(once[i]) + floor)) }
        #expect(worst < 1e-4, "accumulated gradient differs from twice the gradient by \(worst)")
        model.freshBackward(outputGrad: g)
        once.withUnsafeBufferPointer { once in
            #expect(bitwiseEqual(UnsafeBufferPointer(model.gradients.buffer), once), "zeroed, then backward: the same gradient")
        }
    }

    /// After a full batch, a smaller one zeroes and uses only its part of the activation gradients.
    @Test func aSmallerBatchAfterAFullOneHasTheGradientOfThatBatchAlone() {
        let big = Self.tiny(batchCapacity: 4), small = Self.tiny(batchCapacity: 2)
        big.initialize(seed: 4); small.initialize(seed: 4)
        let x = normals(4 * 3 * 64, seed: 6), target = normals(4 * 3 * 64, seed: 7)
        var out = [Float](repeating: 0, count: x.count), g = out
        big.forward(input: x, timesteps: [10, 299, 3, 40], output: &out, batch: 4)
        _ = mseLoss(predictionGrad: &g, prediction: out, target: target, count: out.count)
        big.freshBackward(outputGrad: g)
        let n = 2 * 3 * 64
        for model in [big, small] {
            model.forward(input: x, timesteps: [10, 299], output: &out, batch: 2)
            _ = mseLoss(predictionGrad: &g, prediction: Array(out[0..<n]), target: Array(target[0..<n]), count: n)
            model.freshBackward(outputGrad: g)
        }
        #expect(bitwiseEqual(UnsafeBufferPointer(big.gradients.buffer), UnsafeBufferPointer(small.gradients.buffer)))
    }

    // MARK: Eval mode

    @Test func evalModeUsesRunningStatisticsPerSampleAndLeavesThemAlone() {
        let model = Self.tiny(height: 16)
        model.initialize(seed: 9)
        let x = normals(2 * 3 * 256, seed: 1)
        var trained = [Float](repeating: 0, count: x.count), out = trained
        model.training = true
        model.forward(input: x, timesteps: [5, 250], output: &trained, batch: 2)
        let statistics = model.buffers.toArray()
        let mean = model.bufferTable.entry(named: "ups.1.bnorm2.running_mean")!
        #expect((0..<mean.count).contains { statistics[mean.offset + $0] != 0 }, "a train-mode pass moves the running statistics")
        // Eval mode reads the running statistics and writes none; each image is normalised on its own, so
        // image 1 of two equals the same image alone, and the output is not the batch-statistics one.
        model.training = false
        model.forward(input: x, timesteps: [5, 250], output: &out, batch: 2)
        #expect(model.buffers.toArray() == statistics)
        var alone = [Float](repeating: 0, count: 3 * 256)
        Array(x[768...]).withUnsafeBufferPointer { model.forward(input: $0.baseAddress!, timesteps: [250], output: &alone, batch: 1) }
        #expect(maxAbsoluteError(alone, Array(out[768...])) < 1e-5)
        #expect(maxAbsoluteError(out, trained) > 1e-2)
    }

    /// The convolution seam: Winograd on every 3×3 convolution computes the same function and gradients.
    @Test func winogradConvolutionsMatchIm2colToRounding() {
        var results: [(out: [Float], grad: [Float])] = []
        let x = normals(2 * 3 * 256, seed: 6), target = normals(2 * 3 * 256, seed: 7)
        for choice in [ConvolutionChoice.im2col, .winogradF4] {
            let model = Self.tiny(height: 16, convolutions: choice)
            model.initialize(seed: 4)
            var out = [Float](repeating: 0, count: x.count), g = out
            model.forward(input: x, timesteps: [10, 200], output: &out, batch: 2)
            _ = mseLoss(predictionGrad: &g, prediction: out, target: target, count: out.count)
            model.freshBackward(outputGrad: g)
            results.append((out, model.gradients.toArray()))
        }
        let outError = maxAbsoluteError(results[1].out, results[0].out) / results[0].out.map(abs).max()!
        let gradError = maxAbsoluteError(results[1].grad, results[0].grad) / results[0].grad.map(abs).max()!
        report("winograd needle U-Net vs im2col: output \(outError), gradients \(gradError) of their largest values")
        #expect(outError < 1e-4 && gradError < 1e-4, "output \(outError), gradients \(gradError)")
        #expect(results[1].out != results[0].out, "a different algorithm ran (rounding differs)")
    }
}
