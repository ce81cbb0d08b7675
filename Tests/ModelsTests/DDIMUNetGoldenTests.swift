import Testing
import TestSupport
import IO
import Tensor
@testable import Models

/// A small DDIM U-Net (1 channel, widths 8,16,24,32, block depth 2, 16×16, batch 3) against PyTorch
/// (zoo-models.h5, group ddim_unet, made by Tests/Fixtures/generate/zoo_models.py from zoo_modules.py's
/// DDIMUNet): one train-mode forward and backward of Σ y·gy at three noise variances, the running statistics
/// after it and the eval-mode output, with every convolution algorithm. The group's output_conv is PyTorch's
/// default initialisation, not the model's zeros, so every gradient upstream of it is non-zero.
@Suite struct DDIMUNetGoldenTests {
    let file: HDF5File
    let x: [Float], gy: [Float], noiseVariance: [Float]
    static let group = "ddim_unet"
    static let algorithms: [ConvolutionChoice] = [.im2col, .winogradF2, .winogradF4, .auto]

    var golden: GoldenModelGroup { GoldenModelGroup(file: file, name: Self.group) }

    init() throws {
        file = try Golden.open("zoo-models.h5")
        x = try file.read("\(Self.group)/x", as: Float.self).values
        gy = try file.read("\(Self.group)/gy", as: Float.self).values
        noiseVariance = try file.read("\(Self.group)/noise_variance", as: Float.self).values
    }

    /// The model the group's attributes describe, with PyTorch's parameters and buffers.
    func loadedModel(_ convolutions: ConvolutionChoice = .im2col) throws -> DDIMUNet {
        let g = Self.group
        let widths = try #require(file.attribute("widths", on: g)).split(separator: ",").compactMap { Int($0) }
        let depth = try #require(file.attribute("block_depth", on: g).flatMap { Int($0) })
        let height = try #require(file.attribute("height", on: g).flatMap { Int($0) })
        let inChannels = try #require(file.attribute("in_channels", on: g).flatMap { Int($0) })
        #expect(widths == [8, 16, 24, 32] && depth == 2 && height == 16 && inChannels == 1)
        let model = ModelArchitecture.ddimUNet.build([inChannels, height, height], 3, options: ModelOptions(channels: widths, blockDepth: depth),
                                                     convolutions: convolutions) as! DDIMUNet
        try golden.load(into: model)
        return model
    }

    /// The noise variances as the model reads them: `conditioning.continuous`.
    func conditioning() -> Conditioning {
        let c = Conditioning(capacity: 3)
        for n in 0..<3 { c.continuous[n] = noiseVariance[n] }
        return c
    }

    func forward(_ model: DDIMUNet, training: Bool) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        model.training = training
        model.forward(input: x, conditioning: conditioning(), output: &y, batch: 3)
        return y
    }

    /// One train-mode forward, and the backward of Σ y·gy; returns y.
    func trainStep(_ model: DDIMUNet) -> [Float] {
        let y = forward(model, training: true)
        model.freshBackward(outputGrad: gy)
        return y
    }

    @Test func namesShapesAndCountsMatchPyTorchStateDict() throws {
        let model = try loadedModel()
        let g = Self.group
        try golden.expectSameStateDict(as: model)
        #expect(file.attribute("batchnorm_layers", on: g) == String(DDIMUNetTests.batchNormCount(model)))
        #expect(noiseVariance == [0.0975, 0.5, 0.9996])
    }

    @Test(arguments: algorithms)
    func outputAndEveryGradientMatchPyTorch(_ convolutions: ConvolutionChoice) throws {
        let model = try loadedModel(convolutions)
        let y = trainStep(model)
        let expected = try file.read("\(Self.group)/y", as: Float.self).values
        // why against the largest value: train-mode BatchNorm over 3 images of 2×2 at the bottleneck rescales
        // rounding by up to 1/σ, so outputs near 0 carry absolute, not relative, rounding.
        let outputError = maxAbsoluteError(y, expected) / expected.map { abs($0) }.max()!
        report("DDIM U-Net golden, \(convolutions): train-mode output \(outputError) of its largest value")
        #expect(outputError < 5e-5, "\(convolutions): train-mode output off by \(outputError) of its largest value")
        // (No gradient here is a true 0: every convolution's output reaches the next norm with a residual beside it.)
        let worst = try golden.expectGradientsMatch(model, bound: 1e-4, label: "\(convolutions)")
        report("DDIM U-Net golden, \(convolutions): gradients within \(worst.error) of each tensor's largest entry (worst \(worst.name))")
    }

    @Test(arguments: algorithms)
    func runningStatisticsAndEvalOutputAfterTheStepMatchPyTorch(_ convolutions: ConvolutionChoice) throws {
        let model = try loadedModel(convolutions)
        _ = trainStep(model)
        for e in model.bufferTable.entries {
            let before = try file.read("\(Self.group)/buffers/\(e.name)", as: Float.self).values
            let expected = try file.read("\(Self.group)/buffers_after/\(e.name)", as: Float.self).values
            let ours = entryValues(model.buffers, e)
            // why against the change: momentum 0.01 moves a statistic by 1% of the batch's, so a relative
            // error of the whole value would hide a wrong momentum or variance; the change is what is computed.
            let change = zip(expected, before).map { abs($0 - $1) }.max()!
            #expect(change > 0, "\(e.name) moved")
            let err = zip(ours, expected).map { abs($0 - $1) }.max()! / change
            #expect(err < 1e-3, "\(convolutions): \(e.name) off by \(err) of its change")
        }
        let y = forward(model, training: false)
        let expected = try file.read("\(Self.group)/y_eval_after", as: Float.self).values
        let outputError = maxAbsoluteError(y, expected) / expected.map { abs($0) }.max()!
        report("DDIM U-Net golden, \(convolutions): eval-mode output \(outputError) of its largest value")
        #expect(outputError < 1e-5, "\(convolutions): eval-mode output off by \(outputError) of its largest value")
    }
}
