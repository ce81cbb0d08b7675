import Foundation
import Testing
import TestSupport
import Tensor
@testable import Models

/// The DDIM residual U-Net (ZOO.md §5): its counts and names against ZOO.md §0, validation, the zero
/// output layer, its new layers against central differences (the affine-free BatchNorm, the residual
/// block), the gradient rule and batch handling. Its PyTorch values: DDIMUNetGoldenTests.
@Suite struct DDIMUNetTests {
    static func build(_ instance: String, batchCapacity: Int = 1) -> DDIMUNet {
        let a = ModelArchitecture.ddimUNet
        return a.build(a.instances.first { $0.name == instance }!, batchCapacity: batchCapacity) as! DDIMUNet
    }

    /// A small model with uneven widths (4, 6, 8: a mixed-up width shows) and three image channels, so the
    /// NCHW ↔ CNHW conversions at its boundary matter; output_conv moved off its zeros, or nothing upstream
    /// would get a gradient.
    static func tiny(batchCapacity: Int = 2, height: Int = 8, blockDepth: Int = 2, convolutions: ConvolutionChoice = .im2col,
                     seed: UInt64 = 4) -> DDIMUNet {
        let model = ModelArchitecture.ddimUNet.build([3, height, height], batchCapacity,
                                                     options: ModelOptions(channels: [4, 6, 8], blockDepth: blockDepth),
                                                     convolutions: convolutions) as! DDIMUNet
        model.initialize(seed: seed)
        for name in ["output_conv.weight", "output_conv.bias"] {
            let e = model.parameterTable.entry(named: name)!
            (model.parameters.pointer + e.offset).update(from: normals(e.count, seed: seed + 100, scale: 0.3), count: e.count)
        }
        return model
    }

    /// PyTorch's numel(), layer by layer from ZOO.md §5: RB(i→w) = [skip 1×1 if i ≠ w] + conv1 3×3 i→w + conv2 3×3 w→w.
    static func expectedParameters(inChannels c: Int) -> Int {
        func conv(_ i: Int, _ o: Int, _ k: Int) -> Int { i * o * k * k + o }
        func block(_ i: Int, _ w: Int) -> Int { (i == w ? 0 : conv(i, w, 1)) + conv(i, w, 3) + conv(w, w, 3) }
        let down = block(64, 32) + block(32, 32) + block(32, 64) + block(64, 64) + block(64, 96) + block(96, 96)
        let bottleneck = block(96, 128) + block(128, 128)
        let up = block(224, 96) + block(192, 96) + block(160, 64) + block(128, 64) + block(96, 32) + block(64, 32)
        return conv(c, 32, 1) + down + bottleneck + up + conv(32, c, 1)
    }

    /// ZOO.md §5's names for widths 32,64,96,128 and depth 2; `skip` in every up RB, down residuals.0 and bottleneck.0.
    static func expectedNames() -> (parameters: Set<String>, buffers: Set<String>) {
        var parameters: Set<String> = ["input_conv.weight", "input_conv.bias", "output_conv.weight", "output_conv.bias"]
        var buffers: Set<String> = []
        var blocks: [(String, Bool)] = []
        for b in 0..<3 { for j in 0..<2 { blocks.append(("down_blocks.\(b).residuals.\(j)", j == 0)) } }
        for j in 0..<2 { blocks.append(("bottleneck.\(j)", j == 0)) }
        for b in 0..<3 { for j in 0..<2 { blocks.append(("up_blocks.\(b).residuals.\(j)", true)) } }
        for (block, hasSkip) in blocks {
            for layer in ["conv1", "conv2"] + (hasSkip ? ["skip"] : []) { parameters.formUnion(["\(block).\(layer).weight", "\(block).\(layer).bias"]) }
            buffers.formUnion(["\(block).norm.running_mean", "\(block).norm.running_var"])
        }
        return (parameters, buffers)
    }

    static func batchNormCount(_ model: DDIMUNet) -> Int { model.bufferTable.entries.filter { $0.name.hasSuffix(".running_mean") }.count }

    @Test(arguments: [("ddim_unet", 1, 1_950_497, 1_141_374_976), ("ddim_unet_rgb", 3, 1_950_627, 1_141_899_264)])
    func instancesHaveZooCountsNamesAndMultiplyAccumulates(instance: String, channels: Int, parameters: Int, macs: Int) {
        let model = Self.build(instance)
        #expect(model.configuration == DDIMUNetConfiguration(inChannels: channels, widths: [32, 64, 96, 128], blockDepth: 2))
        #expect(model.sampleShape == [channels, 64, 64])
        #expect(model.parameterTable.totalCount == parameters)
        #expect(Self.expectedParameters(inChannels: channels) == parameters)
        #expect(model.bufferTable.totalCount == 2_880)
        #expect(Self.batchNormCount(model) == 14)
        #expect(model.multiplyAccumulatesPerSample == macs)
        let names = Self.expectedNames()
        #expect(Set(model.parameterTable.entries.map(\.name)) == names.parameters)
        #expect(Set(model.bufferTable.entries.map(\.name)) == names.buffers)
        // The norms hold buffers only, and the up RBs see ZOO.md's concatenations 224, 192 | 160, 128 | 96, 64.
        #expect(!model.parameterTable.entries.contains { $0.name.contains(".norm.") })
        let upInputs = (0..<3).flatMap { b in (0..<2).map { j in model.bufferTable.entry(named: "up_blocks.\(b).residuals.\(j).norm.running_mean")!.shape[0] } }
        #expect(upInputs == [224, 192, 160, 128, 96, 64])
        #expect(model.parameterTable.entry(named: "down_blocks.0.residuals.0.conv1.weight")?.shape == [32, 64, 3, 3])   // cat(32, e 32)
        #expect(model.parameterTable.entry(named: "input_conv.weight")?.shape == [32, channels, 1, 1])
        #expect(model.parameterTable.entry(named: "output_conv.weight")?.shape == [channels, 32, 1, 1])
        #expect(ModelArchitecture.ddimUNet.className == "DDIMUNet")
    }

    @Test func tableIsTiledInStateDictOrder() {
        let table = Self.tiny().parameterTable
        #expect(table.entries.first?.name == "input_conv.weight" && table.entries.last?.name == "output_conv.bias")
        #expect(table.entries.map(\.name).filter { $0.hasPrefix("down_blocks.0.residuals.0.") }
                == ["skip", "conv1", "conv2"].flatMap { ["down_blocks.0.residuals.0.\($0).weight", "down_blocks.0.residuals.0.\($0).bias"] })
        var offset = 0
        for e in table.entries { #expect(e.offset == offset, "\(e.name)"); offset += e.count }
    }

    @Test func validationNamesWhatIsWrong() {
        let a = ModelArchitecture.ddimUNet
        #expect(a.validate([1, 64, 64]) == nil && a.validate([3, 64, 64]) == nil && a.validate([1, 16, 16]) == nil)
        #expect(a.validate([1, 60, 64]) == "images of 60×64 cannot pass 3 average poolings of 2 in ddim-unet (--channels 32,64,96,128): height and width must be divisible by 8 (prepare with --pad)")
        #expect(a.validate([1, 64, 36])?.contains("divisible by 8") == true)
        #expect(a.validate([1, 12, 12], options: ModelOptions(channels: [8, 16, 24])) == nil)   // two poolings: 12 → 3
        #expect(a.validate([1, 64, 64], options: ModelOptions(channels: [32]))?.hasPrefix("--channels 32: ") == true)
        #expect(a.validate([1, 64, 64], options: ModelOptions(channels: [0, 32]))?.hasPrefix("--channels 0,32: ") == true)
        #expect(a.validate([1, 64, 64], options: ModelOptions(blockDepth: 0))?.hasPrefix("--block-depth 0: ") == true)
        #expect(a.validate([1, 64, 64], options: ModelOptions(timeDimension: 8))?.contains("--time-dim is not an option of ddim-unet") == true)
        #expect(a.validate([2])?.contains("needs images") == true)
        // The other models refuse --block-depth by name.
        #expect(ModelArchitecture.needleUNet.validate([3, 64, 64], options: ModelOptions(blockDepth: 2))?.contains("--block-depth is not an option") == true)
    }

    @Test func blockDepthIsAModelOptionWithItsSpelling() throws {
        let options = ModelOptions(channels: [8, 16], blockDepth: 3)
        #expect(options.given == [.channels, .blockDepth])
        #expect(options.commandLine == "--channels 8,16 --block-depth 3")
        #expect(ModelOptions(blockDepth: 2).overridden(by: ModelOptions(blockDepth: 5)).blockDepth == 5)
        #expect(ModelOptions(blockDepth: 2).overridden(by: ModelOptions(channels: [4, 8])) == ModelOptions(channels: [4, 8], blockDepth: 2))
        let decoded = try JSONDecoder().decode(ModelOptions.self, from: try JSONEncoder().encode(options))
        #expect(decoded == options)
        // A configuration written before the option existed reads as "not set".
        #expect(try JSONDecoder().decode(ModelOptions.self, from: Data(#"{"channels":[8,16]}"#.utf8)) == ModelOptions(channels: [8, 16]))
        // Depth 1 and 3 build one and three residuals per block.
        for depth in [1, 3] {
            let model = Self.tiny(blockDepth: depth)
            #expect(Self.batchNormCount(model) == 5 * depth, "depth \(depth)")
            #expect(model.bufferTable.entry(named: "up_blocks.1.residuals.\(depth - 1).norm.running_var") != nil)
            #expect(model.bufferTable.entry(named: "up_blocks.1.residuals.\(depth).norm.running_var") == nil)
        }
    }

    @Test func outputConvStartsAtZeroSoTheFirstPredictionIsZero() {
        let model = ModelArchitecture.ddimUNet.build([3, 8, 8], 2, options: ModelOptions(channels: [4, 6, 8])) as! DDIMUNet
        model.initialize(seed: 3)
        for e in model.parameterTable.entries {
            let values = UnsafeBufferPointer(start: model.parameters.pointer + e.offset, count: e.count)
            if e.name.hasPrefix("output_conv.") {
                #expect(values.allSatisfy { $0 == 0 }, "\(e.name)")
            } else {
                #expect(values.contains { $0 != 0 }, "\(e.name): PyTorch's default initialisation")
            }
        }
        let x = normals(2 * 3 * 64, seed: 1)
        var y = [Float](repeating: .nan, count: x.count)
        model.forward(input: x, timesteps: [3, 700], output: &y, batch: 2)
        #expect(y.allSatisfy { $0 == 0 })
    }

    // MARK: the affine-free BatchNorm

    @Test func affineFreeBatchNormHasBuffersOnlyItsEpsilonAndMomentum() {
        let (channels, batch, plane) = (3, 2, 5), n = Double(batch * plane)
        let b = ModelBuilder(batchCapacity: batch)
        let norm = BatchNormLayer(b, "norm", channels: channels, activation: .identity, affine: false, epsilon: 1e-3, momentum: 0.01)
        #expect(b.parameters.entries.isEmpty)
        #expect(b.buffers.entries.map(\.name) == ["norm.running_mean", "norm.running_var"])
        let buffers = FloatBuffer(count: b.buffers.totalCount), none = FloatBuffer(count: 0)
        var rng = Philox(seed: 1)
        b.buffers.initialize(buffers.pointer, rng: &rng)
        #expect(buffers.toArray() == [0, 0, 0, 1, 1, 1])
        let m = ModelPointers(parameters: none.pointer, gradients: none.pointer, buffers: buffers.pointer, gradientsReady: nil, reduceStatistics: nil)
        // Small variance per channel, so ε = 1e-3 (not 1e-5) shows in the output.
        let x = normals(channels * batch * plane, seed: 2, scale: 0.05, shift: 0.3)
        var y = [Float](repeating: .nan, count: x.count)
        norm.forward(m, output: &y, input: x, valuesPerChannel: batch * plane, training: true)
        for c in 0..<channels {
            let values = x[(c * batch * plane)..<((c + 1) * batch * plane)].map(Double.init)
            let mean = values.reduce(0, +) / n, variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n
            for (i, v) in values.enumerated() {
                let expected = (v - mean) / (variance + 1e-3).squareRoot()
                #expect(abs(Double(y[c * batch * plane + i]) - expected) < 1e-5, "channel \(c)")
            }
            // r ← 0.99·r + 0.01·s with the unbiased variance.
            #expect(abs(Double(buffers[c]) - 0.01 * mean) < 1e-7, "running_mean \(c)")
            #expect(abs(Double(buffers[channels + c]) - (0.99 + 0.01 * variance * n / (n - 1))) < 3e-7, "running_var \(c)")
        }
        // Eval mode: (x − r_mean)/√(r_var + 1e-3), the statistics untouched.
        let statistics = buffers.toArray()
        norm.forward(m, output: &y, input: x, valuesPerChannel: batch * plane, training: false)
        #expect(buffers.toArray() == statistics)
        for c in 0..<channels {
            let expected = (Double(x[c * batch * plane]) - Double(statistics[c])) / (Double(statistics[channels + c]) + 1e-3).squareRoot()
            #expect(abs(Double(y[c * batch * plane]) - expected) < 1e-6, "eval, channel \(c)")
        }
    }

    @Test func affineFreeBatchNormGradientMatchesFiniteDifferences() {
        let (channels, batch, plane) = (3, 2, 6)
        let b = ModelBuilder(batchCapacity: batch)
        let norm = BatchNormLayer(b, "norm", channels: channels, activation: .identity, affine: false, epsilon: 1e-3, momentum: 0.01)
        let buffers = FloatBuffer(count: b.buffers.totalCount), none = FloatBuffer(count: 0)
        let m = ModelPointers(parameters: none.pointer, gradients: none.pointer, buffers: buffers.pointer, gradientsReady: nil, reduceStatistics: nil)
        let x = FloatBuffer(normals(channels * batch * plane, seed: 3)), r = normals(x.count, seed: 4)
        let y = FloatBuffer(count: x.count)
        func loss() -> Double {
            norm.forward(m, output: y.pointer, input: x.pointer, valuesPerChannel: batch * plane, training: true)
            return (0..<r.count).reduce(0.0) { $0 + Double(y[$1]) * Double(r[$1]) }
        }
        _ = loss()
        var gx = [Float](repeating: 0, count: x.count)
        norm.backward(m, inputGrad: &gx, outputGrad: r, input: x.pointer, valuesPerChannel: batch * plane)
        // Every coordinate: it moves its channel's mean and variance (h = 1e-2 with the five-point stencil).
        var worst = 0.0
        for i in 0..<x.count {
            worst = max(worst, ConditioningTests.worstError(x.pointer + i, analytic: [gx[i]], tensors: [(0, 1)], h: 1e-2, loss: loss))
        }
        report("fd affine-free BatchNorm input: \(worst)")
        #expect(worst < 5e-3, "input: \(worst)")
    }

    /// The SyncBatchNorm path with a reduction that adds a second rank holding the same images: the
    /// statistics are those of twice the values, so the output and input gradient equal the local ones and
    /// only the unbiased running variance changes (n − 1 → 2n − 1).
    @Test func affineFreeBatchNormThroughTheSynchronisedPath() {
        let (channels, batch, plane) = (2, 2, 4), n = Float(batch * plane)
        func run(sync: Bool) -> (y: [Float], gx: [Float], buffers: [Float]) {
            let b = ModelBuilder(batchCapacity: batch)
            let norm = BatchNormLayer(b, "norm", channels: channels, activation: .identity, affine: false, epsilon: 1e-3, momentum: 0.01)
            let buffers = FloatBuffer(count: b.buffers.totalCount), none = FloatBuffer(count: 0)
            var rng = Philox(seed: 1)
            b.buffers.initialize(buffers.pointer, rng: &rng)
            let twoRanks: (UnsafeMutablePointer<Double>, Int) -> Void = { values, count in for i in 0..<count { values[i] *= 2 } }
            let m = ModelPointers(parameters: none.pointer, gradients: none.pointer, buffers: buffers.pointer, gradientsReady: nil,
                                  reduceStatistics: sync ? twoRanks : nil)
            let x = normals(channels * batch * plane, seed: 5, shift: 1), gy = normals(x.count, seed: 6)
            var y = [Float](repeating: .nan, count: x.count), gx = [Float](repeating: 0, count: x.count)
            norm.forward(m, output: &y, input: x, valuesPerChannel: batch * plane, training: true)
            norm.backward(m, inputGrad: &gx, outputGrad: gy, input: x, valuesPerChannel: batch * plane)
            return (y, gx, buffers.toArray())
        }
        let local = run(sync: false), synchronised = run(sync: true)
        #expect(maxAbsoluteError(local.y, synchronised.y) < 1e-5)
        #expect(maxAbsoluteError(local.gx, synchronised.gx) < 1e-5)
        #expect(maxAbsoluteError(Array(local.buffers[0..<channels]), Array(synchronised.buffers[0..<channels])) < 1e-7)
        for c in 0..<channels {
            let biased = (local.buffers[channels + c] - 0.99) / 0.01 * (n - 1) / n
            let expected = 0.99 + 0.01 * biased * 2 * n / (2 * n - 1)
            #expect(abs(synchronised.buffers[channels + c] - expected) < 1e-6, "running_var \(c)")
        }
    }

    // MARK: the residual block

    @Test(arguments: [(5, 3), (4, 4)])
    func residualBlockGradientsMatchFiniteDifferences(inChannels: Int, outChannels: Int) {
        let batch = 2, side = 4
        let b = ModelBuilder(batchCapacity: batch)
        let block = DDIMResidualBlock(b, "rb", inChannels: inChannels, outChannels: outChannels, height: side, width: side)
        #expect((block.skip != nil) == (inChannels != outChannels))
        #expect(b.parameters.entries.map(\.name).filter { $0.hasSuffix(".weight") }
                == (inChannels != outChannels ? ["rb.skip.weight"] : []) + ["rb.conv1.weight", "rb.conv2.weight"])
        let h = ConditioningTests.Harness(b, seed: 3), m = h.pointers
        let x = FloatBuffer(normals(inChannels * batch * side * side, seed: 4)), y = FloatBuffer(count: outChannels * batch * side * side)
        let r = normals(y.count, seed: 5)
        func loss() -> Double {
            block.forward(m, output: y.pointer, input: x.pointer, batch: batch, training: true)
            return (0..<r.count).reduce(0.0) { $0 + Double(y[$1]) * Double(r[$1]) }
        }
        _ = loss()
        h.gradientsOfActivations.zero(batch: batch)
        var gx = [Float](repeating: 0, count: x.count)
        block.backward(m, inputGrad: &gx, outputGrad: r, input: x.pointer, batch: batch)
        let tensors = b.parameters.entries.map { (offset: $0.offset, count: $0.count) }
        // As ContextUnet's residual block (ConditioningTests): train-mode BatchNorm and SiLU are smooth but
        // curved, and the five-point stencil at h = 1e-2 keeps both truncation and Float noise below 5e-3.
        let parameterError = ConditioningTests.worstError(h.parameters.pointer, analytic: h.gradients.toArray(), tensors: tensors, h: 1e-2, loss: loss)
        #expect(parameterError < 5e-3, "parameters: \(parameterError)")
        let inputError = ConditioningTests.worstError(x.pointer, analytic: gx, tensors: [(0, gx.count)], h: 1e-2, loss: loss)
        #expect(inputError < 1e-2, "input: \(inputError)")
        report("fd DDIM residual block \(inChannels)→\(outChannels): parameters \(parameterError), input \(inputError)")
    }

    // MARK: the whole model

    /// One train step's gradient of Σ y·g for a fixed g.
    static func gradient(_ model: DDIMUNet, x: [Float], timesteps: [Int32], seed: UInt64 = 8) -> (out: [Float], grad: [Float]) {
        var out = [Float](repeating: .nan, count: x.count)
        model.training = true
        model.forward(input: x, timesteps: timesteps, output: &out, batch: timesteps.count)
        model.freshBackward(outputGrad: normals(x.count, seed: seed))
        return (out, model.gradients.toArray())
    }

    /// The gradient rule (Models/Layer.swift), and the order backward reports final gradients in: every
    /// offset below the last, down to input_conv's 0.
    @Test func backwardAddsAndReportsGradientsFromTheEndOfTheTable() {
        let model = Self.tiny()
        var ready: [Int] = []
        model.gradientsReady = { ready.append($0) }
        let x = normals(2 * 3 * 64, seed: 6), g = normals(x.count, seed: 8)
        let once = Self.gradient(model, x: x, timesteps: [10, 900]).grad
        #expect(ready.count == model.parameterTable.entries.count / 2 && ready.last == 0)
        #expect(zip(ready, ready.dropFirst()).allSatisfy { $0 > $1 }, "\(ready)")
        for e in model.parameterTable.entries {
            #expect(once[e.offset..<(e.offset + e.count)].contains { $0 != 0 }, "\(e.name): no gradient reached it")
        }
        model.backward(outputGrad: g)
        let twice = model.gradients.toArray(), floor = 1e-4 * once.map(abs).max()!
        let worst = once.indices.map { abs(twice[$0] - 2 * once[$0]) / (2 * abs(once[$0]) + floor) }.max()!
        #expect(worst < 1e-4, "accumulated gradient differs from twice the gradient by \(worst)")
    }

    /// After a full batch, a smaller one zeroes and uses only its part of the activations (every skip
    /// and concatenation offset depends on the batch).
    @Test func aSmallerBatchAfterAFullOneHasTheGradientOfThatBatchAlone() {
        let big = Self.tiny(batchCapacity: 4), small = Self.tiny(batchCapacity: 2)
        let x = normals(4 * 3 * 64, seed: 6)
        _ = Self.gradient(big, x: x, timesteps: [10, 999, 3, 400])
        let n = 2 * 3 * 64
        let a = Self.gradient(big, x: Array(x[0..<n]), timesteps: [10, 999]), b = Self.gradient(small, x: Array(x[0..<n]), timesteps: [10, 999])
        #expect(a.out == b.out)
        #expect(a.grad == b.grad)
    }

    @Test func evalModeUsesRunningStatisticsPerSampleAndTheConditioningMatters() {
        let model = Self.tiny(height: 16)
        let x = normals(2 * 3 * 256, seed: 1)
        let trained = Self.gradient(model, x: x, timesteps: [5, 250]).out
        let statistics = model.buffers.toArray()
        let mean = model.bufferTable.entry(named: "up_blocks.1.residuals.1.norm.running_mean")!
        #expect((0..<mean.count).contains { statistics[mean.offset + $0] != 0 }, "a train-mode pass moves the running statistics")
        model.training = false
        var out = [Float](repeating: 0, count: x.count)
        model.forward(input: x, timesteps: [5, 250], output: &out, batch: 2)
        #expect(model.buffers.toArray() == statistics)
        var alone = [Float](repeating: 0, count: 3 * 256)
        Array(x[768...]).withUnsafeBufferPointer { model.forward(input: $0.baseAddress!, timesteps: [250], output: &alone, batch: 1) }
        #expect(maxAbsoluteError(alone, Array(out[768...])) < 1e-5)
        #expect(maxAbsoluteError(out, trained) > 1e-2)
        // The same image at another noise level: the embedding reaches the output.
        var other = [Float](repeating: 0, count: 3 * 256)
        Array(x[768...]).withUnsafeBufferPointer { model.forward(input: $0.baseAddress!, timesteps: [900], output: &other, batch: 1) }
        #expect(maxAbsoluteError(alone, other) > 1e-4)
    }

    /// The convolution seam: Winograd on every 3×3 convolution computes the same function and gradients.
    @Test func winogradConvolutionsMatchIm2colToRounding() {
        let x = normals(2 * 3 * 256, seed: 6)
        let results = [ConvolutionChoice.im2col, .winogradF4, .auto].map { Self.gradient(Self.tiny(height: 16, convolutions: $0), x: x, timesteps: [10, 200]) }
        let outScale = results[0].out.map(abs).max()!, gradScale = results[0].grad.map(abs).max()!
        for r in results.dropFirst() {
            #expect(maxAbsoluteError(r.out, results[0].out) < 1e-4 * outScale)
            #expect(maxAbsoluteError(r.grad, results[0].grad) < 1e-3 * gradScale)
        }
        let plan = Self.tiny(height: 16, convolutions: .winogradF4).convolutionPlan
        #expect(plan.contains { $0.kind == .winogradF4 } && plan.contains { $0.kind == .im2col })   // the 1×1s stay im2col
    }
}
