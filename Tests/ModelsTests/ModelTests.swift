import Foundation
import Testing
import TestSupport
import Tensor
@testable import Models

@Suite struct ModelTests {
    /// The test suite's tiny U-Net, built through the registry like every model (`cnn-tiny`).
    static func tinyUNet(inChannels: Int = 1, batchCapacity: Int = 2, convolutions: ConvolutionChoice = .im2col) -> UNetDenoiser {
        ModelArchitecture.cnnTiny.build([inChannels, 16, 16], batchCapacity, convolutions: convolutions) as! UNetDenoiser
    }

    /// The parameter count of the seed's U-Net worked out layer by layer (PyTorch's numel()).
    static func expectedUNetParameters(_ c: UNetConfiguration) -> Int {
        func conv(_ cin: Int, _ cout: Int, _ k: Int) -> Int { cin * cout * k * k + cout }
        func block(_ cin: Int, _ cout: Int) -> Int {
            conv(cin, cout, 3) + 2 * cout + (timeEmbeddingDimension * cout + cout) + conv(cout, cout, 3) + 2 * cout
        }
        var total = conv(c.inChannels, c.baseChannels, 3) + conv(c.baseChannels, c.inChannels, 1)
        for i in 0..<c.depth { total += block(c.channels(i), c.channels(i + 1)) + block(2 * c.channels(i + 1), c.channels(i)) }
        return total + block(c.channels(c.depth), c.channels(c.depth))
    }

    @Test func smallUNetHasThePyTorchParameterCount() {
        let model = UNetDenoiser(.small(inChannels: 3), height: 32, width: 32, batchCapacity: 1)
        #expect(model.parameterTable.totalCount == 3_321_475)
        #expect(Self.expectedUNetParameters(.small(inChannels: 3)) == 3_321_475)
        #expect(model.parameters.count == 3_321_475 && model.gradients.count == 3_321_475)
        // Two running statistics per BatchNorm channel: 2 BatchNorms in each of 2·2 + 1 blocks.
        let c = UNetConfiguration.small(inChannels: 3)
        let bnChannels = 2 * ((0..<c.depth).map { c.channels($0 + 1) + c.channels($0) }.reduce(0, +) + c.channels(c.depth))
        #expect(model.bufferTable.totalCount == 2 * bnChannels)
    }

    @Test func largeUNetHasThePyTorchParameterCount() {
        // why 8×8: the count does not depend on the image size; this keeps the activations small
        // (parameters and gradients alone are 2 × 214 MB).
        let model = UNetDenoiser(.large(inChannels: 3), height: 8, width: 8, batchCapacity: 1)
        #expect(model.parameterTable.totalCount == 53_441_795)
        #expect(Self.expectedUNetParameters(.large(inChannels: 3)) == 53_441_795)
    }

    @Test func tinyUNetAndMLPParameterCounts() {
        #expect(Self.tinyUNet().parameterTable.totalCount == 19_593)
        #expect(Self.tinyUNet(inChannels: 3).parameterTable.totalCount == Self.expectedUNetParameters(.init(baseChannels: 4, depth: 2, inChannels: 3)))
        let mlp = MLPDenoiser(dimension: 2, batchCapacity: 1)
        #expect(mlp.parameterTable.totalCount == (3 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2))
        #expect(mlp.parameterTable.entries.map(\.name) == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.4.weight", "net.4.bias"])
        #expect(mlp.parameterTable.entries.map(\.shape) == [[128, 3], [128], [128, 128], [128], [2, 128], [2]])
        #expect(mlp.bufferTable.totalCount == 0)
    }

    @Test func parameterTablesTileTheirFlatBuffersInOrder() {
        let model = Self.tinyUNet(inChannels: 3)
        for (table, buffer) in [(model.parameterTable, model.parameters), (model.bufferTable, model.buffers)] {
            var offset = 0
            for e in table.entries {
                #expect(e.offset == offset, "\(e.name) at \(e.offset), expected \(offset)")
                #expect(e.count == e.shape.reduce(1, *))
                offset += e.count
            }
            #expect(offset == table.totalCount && buffer.count == table.totalCount)
            #expect(Set(table.entries.map(\.name)).count == table.entries.count, "names are unique")
        }
        #expect(model.parameterTable.entry(named: "down1.conv1.weight")?.shape == [8, 4, 3, 3])
        #expect(model.parameterTable.entry(named: "up_block1.conv1.weight")?.shape == [8, 32, 3, 3])   // level 1: 2·C2 → C1
        #expect(model.parameterTable.entry(named: "up_block2.conv1.weight")?.shape == [4, 16, 3, 3])   // level 0: 2·C1 → C0
        #expect(model.parameterTable.entry(named: "out_conv.weight")?.shape == [3, 4, 1, 1])
        #expect(model.bufferTable.entries.allSatisfy { $0.name.hasSuffix(".running_mean") || $0.name.hasSuffix(".running_var") })
    }

    @Test func sameSeedGivesBitIdenticalParametersAndAnotherSeedDoesNot() {
        let a = Self.tinyUNet(), b = Self.tinyUNet(), c = Self.tinyUNet()
        a.initialize(seed: 7); b.initialize(seed: 7); c.initialize(seed: 8)
        #expect(bitwiseEqual(UnsafeBufferPointer(a.parameters.buffer), UnsafeBufferPointer(b.parameters.buffer)))
        #expect(bitwiseEqual(UnsafeBufferPointer(a.buffers.buffer), UnsafeBufferPointer(b.buffers.buffer)))
        // Another seed changes every randomly initialised value (the BatchNorm constants stay).
        let random = a.parameterTable.entries.filter { if case .uniform = $0.initialization { return true } else { return false } }
        let differing = random.reduce(0) { sum, e in sum + (e.offset..<e.offset + e.count).filter { a.parameters[$0] != c.parameters[$0] }.count }
        let total = random.reduce(0) { $0 + $1.count }
        #expect(differing > total * 99 / 100, "\(differing) of \(total) values differ")

        let m1 = MLPDenoiser(dimension: 2, batchCapacity: 1), m2 = MLPDenoiser(dimension: 2, batchCapacity: 1), m3 = MLPDenoiser(dimension: 2, batchCapacity: 1)
        m1.initialize(seed: 1); m2.initialize(seed: 1); m3.initialize(seed: 2)
        #expect(bitwiseEqual(UnsafeBufferPointer(m1.parameters.buffer), UnsafeBufferPointer(m2.parameters.buffer)))
        #expect(!bitwiseEqual(UnsafeBufferPointer(m1.parameters.buffer), UnsafeBufferPointer(m3.parameters.buffer)))
    }

    @Test func initialisationFollowsPyTorchDefaults() {
        let model = Self.tinyUNet(inChannels: 3)
        model.initialize(seed: 3)
        for e in model.parameterTable.entries {
            let values = Array(UnsafeBufferPointer(start: model.parameters.pointer + e.offset, count: e.count))
            if e.name.contains(".bn") {
                #expect(values.allSatisfy { $0 == (e.name.hasSuffix(".weight") ? 1 : 0) }, "\(e.name)")
                continue
            }
            // kaiming_uniform(a=√5) weights and the fan-in bias bound both reduce to U(±1/√fan_in).
            let weightShape = model.parameterTable.entry(named: e.name.replacingOccurrences(of: ".bias", with: ".weight"))!.shape
            let fanIn = weightShape.dropFirst().reduce(1, *)
            let bound = 1 / Float(fanIn).squareRoot()
            #expect(values.allSatisfy { abs($0) <= bound }, "\(e.name): outside ±\(bound)")
            if e.count >= 500 {
                // Filling the interval: the extremes come close to the bound and the mean is near 0.
                let extreme = values.map { abs($0) }.max()!
                let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
                #expect(extreme > 0.95 * bound, "\(e.name): largest |w| \(extreme) of bound \(bound)")
                #expect(abs(mean) < 4 * Double(bound) / (3.0 * Double(values.count)).squareRoot(), "\(e.name): mean \(mean)")   // 4σ
            }
        }
        for e in model.bufferTable.entries {
            let values = Array(UnsafeBufferPointer(start: model.buffers.pointer + e.offset, count: e.count))
            #expect(values.allSatisfy { $0 == (e.name.hasSuffix(".running_var") ? 1 : 0) }, "\(e.name)")
        }
        // A conv weight in particular: init_conv has fan-in 3·3·3 = 27.
        let w = model.parameterTable.entry(named: "init_conv.weight")!
        #expect((0..<w.count).allSatisfy { abs(model.parameters[w.offset + $0]) <= 1 / Float(27).squareRoot() })
    }

    @Test func identicalTrainingRunsAreBitIdentical() {
        func run() -> (losses: [Double], model: UNetDenoiser, trainer: TrainingStep) {
            let model = Self.tinyUNet(batchCapacity: 2)
            model.initialize(seed: 11)
            let trainer = TrainingStep(model: model, schedule: NoiseSchedule(.linear), seed: 42, rank: 0, batch: 2, ranks: SingleRank())
            let images = normals(2 * 256, seed: 5)
            let losses = (0..<3).map { _ in
                trainer.run(learningRate: 1e-3, loadBatch: { _ in _ = trainer.images.buffer.update(fromContentsOf: images) }).loss
            }
            return (losses, model, trainer)
        }
        let a = run(), b = run()
        #expect(a.losses.map(\.bitPattern) == b.losses.map(\.bitPattern))
        #expect(a.losses.allSatisfy { $0.isFinite && $0 > 0 })
        #expect(bitwiseEqual(UnsafeBufferPointer(a.model.parameters.buffer), UnsafeBufferPointer(b.model.parameters.buffer)))
        #expect(bitwiseEqual(UnsafeBufferPointer(a.model.buffers.buffer), UnsafeBufferPointer(b.model.buffers.buffer)))
        #expect(bitwiseEqual(UnsafeBufferPointer(a.trainer.optimizer.secondMoment.buffer), UnsafeBufferPointer(b.trainer.optimizer.secondMoment.buffer)))
        #expect(a.trainer.loss.rng == b.trainer.loss.rng)
        // …and the steps did something: parameters moved away from the initialisation.
        let fresh = Self.tinyUNet()
        fresh.initialize(seed: 11)
        #expect(!bitwiseEqual(UnsafeBufferPointer(fresh.parameters.buffer), UnsafeBufferPointer(a.model.parameters.buffer)))
        #expect(a.trainer.optimizer.step == 3)
    }

    /// The gradient rule (Models/Layer.swift): backward adds into the parameter gradients.
    @Test func backwardAddsIntoTheGradients() {
        let model = Self.tinyUNet(inChannels: 3)
        model.initialize(seed: 4)
        let x = normals(2 * 3 * 256, seed: 6), target = normals(2 * 3 * 256, seed: 7)
        var out = [Float](repeating: 0, count: x.count), g = out
        model.forward(input: x, timesteps: [10, 900], output: &out, batch: 2)
        _ = mseLoss(predictionGrad: &g, prediction: out, target: target, count: out.count)
        model.freshBackward(outputGrad: g)
        let once = model.gradients.toArray()
        model.backward(outputGrad: g)
        let twice = model.gradients.toArray()
        // why not bit-exact: sgemm adds its K blocks into the gradient one by one, so a sum of large,
        // cancelling terms rounds at their scale (1e-9 here); overwriting instead of adding would be off by ½.
        let floor = 1e-4 * once.map(abs).max()!
        var worst: Float = 0
        for i in once.indices { worst = max(worst, abs(twice[i] - 2 * once[i]) / (2 * abs(once[i]) + floor)) }
        #expect(worst < 1e-4, "accumulated gradient differs from twice the gradient by \(worst)")
        // Activation gradients are zeroed by each backward, so a fresh pass repeats the first exactly.
        model.freshBackward(outputGrad: g)
        once.withUnsafeBufferPointer { once in
            #expect(bitwiseEqual(UnsafeBufferPointer(model.gradients.buffer), once), "zeroed, then backward: the same gradient")
        }
    }

    /// A backward pass over fewer images than the capacity zeroes (and uses) only their part of the
    /// activation gradients: after a full batch, a batch of two gives exactly what a model sized for two gives.
    @Test func aSmallerBatchAfterAFullOneHasTheGradientOfThatBatchAlone() {
        let big = Self.tinyUNet(inChannels: 3, batchCapacity: 4), small = Self.tinyUNet(inChannels: 3, batchCapacity: 2)
        big.initialize(seed: 4); small.initialize(seed: 4)
        let x = normals(4 * 3 * 256, seed: 6), target = normals(4 * 3 * 256, seed: 7)
        var out = [Float](repeating: 0, count: x.count), g = out
        big.forward(input: x, timesteps: [10, 900, 3, 40], output: &out, batch: 4)
        _ = mseLoss(predictionGrad: &g, prediction: out, target: target, count: out.count)
        big.freshBackward(outputGrad: g)
        let n = 2 * 3 * 256
        for model in [big, small] {
            model.forward(input: x, timesteps: [10, 900], output: &out, batch: 2)
            _ = mseLoss(predictionGrad: &g, prediction: Array(out[0..<n]), target: Array(target[0..<n]), count: n)
            model.freshBackward(outputGrad: g)
        }
        #expect(bitwiseEqual(UnsafeBufferPointer(big.gradients.buffer), UnsafeBufferPointer(small.gradients.buffer)))
    }

    /// The convolution seam: the same U-Net with Winograd on every 3×3 convolution computes the same
    /// function and gradients as with im2col, to rounding.
    @Test func aUNetWithWinogradConvolutionsMatchesTheIm2colOne() {
        let configuration = UNetConfiguration(baseChannels: 4, depth: 2, inChannels: 3)
        let direct = UNetDenoiser(configuration, height: 16, width: 16, batchCapacity: 2)
        let winograd = UNetDenoiser(configuration, height: 16, width: 16, batchCapacity: 2,
                                    convolutionAlgorithm: { $0.kernel == 3 ? .winogradF4 : .im2col })
        let x = normals(2 * 3 * 256, seed: 6), target = normals(2 * 3 * 256, seed: 7)
        var results: [(out: [Float], grad: [Float])] = []
        for model in [direct, winograd] {
            model.initialize(seed: 4)
            var out = [Float](repeating: 0, count: x.count), g = out
            model.forward(input: x, timesteps: [10, 900], output: &out, batch: 2)
            _ = mseLoss(predictionGrad: &g, prediction: out, target: target, count: out.count)
            model.freshBackward(outputGrad: g)
            results.append((out, model.gradients.toArray()))
        }
        let outScale = results[0].out.map(abs).max()!, gradScale = results[0].grad.map(abs).max()!
        let outError = maxAbsoluteError(results[1].out, results[0].out) / outScale
        let gradError = maxAbsoluteError(results[1].grad, results[0].grad) / gradScale
        report("winograd U-Net vs im2col: output \(outError), gradients \(gradError) of their largest values")
        #expect(outError < 1e-4 && gradError < 1e-4, "output \(outError), gradients \(gradError)")
        #expect(results[1].out != results[0].out, "a different algorithm ran (rounding differs)")
    }

    @Test func evalModeUsesRunningStatisticsPerSampleAndLeavesThemAlone() {
        let model = Self.tinyUNet(inChannels: 3)
        model.initialize(seed: 9)
        let x = normals(2 * 3 * 256, seed: 1)
        var out = [Float](repeating: 0, count: x.count)
        // A train-mode pass moves the running statistics off 0/1.
        model.training = true
        model.forward(input: x, timesteps: [5, 500], output: &out, batch: 2)
        let statistics = model.buffers.toArray()
        let mean = model.bufferTable.entry(named: "down1.bn1.running_mean")!
        #expect((0..<mean.count).contains { statistics[mean.offset + $0] != 0 })
        // Eval mode: the running statistics are read, not written, and each image is processed on its own,
        // so image 1 of a batch of two equals the same image alone.
        model.training = false
        model.forward(input: x, timesteps: [5, 500], output: &out, batch: 2)
        #expect(model.buffers.toArray() == statistics)
        var alone = [Float](repeating: 0, count: 3 * 256)
        Array(x[768...]).withUnsafeBufferPointer { model.forward(input: $0.baseAddress!, timesteps: [500], output: &alone, batch: 1) }
        let second = Array(out[768...])
        #expect(zip(alone, second).map { abs($0 - $1) }.max()! < 1e-5)
    }
}
