import Testing
import TestSupport
import IO
import Tensor
@testable import Models

/// A small needle U-Net (3 channels, channels 8,16,32, d 16, 16×16, batch 3) against PyTorch
/// (zoo-models.h5, group needle_unet, made by Tests/Fixtures/generate/zoo_models.py): one train-mode
/// forward and backward of Σ y·gy, the running statistics after it and the eval-mode output, with every
/// convolution algorithm (Winograd forced onto every 3×3 layer changes rounding only).
@Suite struct NeedleUNetGoldenTests {
    let file: HDF5File
    let x: [Float], gy: [Float], t: [Int32]
    static let group = "needle_unet"
    static let algorithms: [ConvolutionChoice] = [.im2col, .winogradF2, .winogradF4]

    var golden: GoldenModelGroup { GoldenModelGroup(file: file, name: Self.group) }

    init() throws {
        file = try Golden.open("zoo-models.h5")
        x = try file.read("\(Self.group)/x", as: Float.self).values
        gy = try file.read("\(Self.group)/gy", as: Float.self).values
        t = try file.read("\(Self.group)/t", as: Int32.self).values
    }

    /// The model the group's attributes describe, with PyTorch's parameters and buffers.
    func loadedModel(_ convolutions: ConvolutionChoice = .im2col) throws -> NeedleUNet {
        let g = Self.group
        let channels = try #require(file.attribute("channels", on: g)).split(separator: ",").compactMap { Int($0) }
        let timeDimension = try #require(file.attribute("time_dim", on: g).flatMap { Int($0) })
        let height = try #require(file.attribute("height", on: g).flatMap { Int($0) })
        let inChannels = try #require(file.attribute("in_channels", on: g).flatMap { Int($0) })
        #expect(channels == [8, 16, 32] && timeDimension == 16 && height == 16 && inChannels == 3)
        let model = ModelArchitecture.needleUNet.build([inChannels, height, height], 3, options: ModelOptions(channels: channels, timeDimension: timeDimension),
                                                       convolutions: convolutions) as! NeedleUNet
        try golden.load(into: model)
        return model
    }

    /// One train-mode forward, and the backward of Σ y·gy; returns y.
    func trainStep(_ model: NeedleUNet) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        model.training = true
        model.forward(input: x, timesteps: t, output: &y, batch: 3)
        model.freshBackward(outputGrad: gy)
        return y
    }

    @Test func namesShapesAndCountsMatchPyTorchStateDict() throws {
        let model = try loadedModel()
        let g = Self.group
        try golden.expectSameStateDict(as: model)
        #expect(file.attribute("batchnorm_layers", on: g) == String(NeedleUNetTests.batchNormCount(model)))
    }

    @Test(arguments: algorithms)
    func outputAndEveryGradientMatchPyTorch(_ convolutions: ConvolutionChoice) throws {
        let model = try loadedModel(convolutions)
        let y = trainStep(model)
        let expected = try file.read("\(Self.group)/y", as: Float.self).values
        // why against the largest value: train-mode BatchNorm over 3 images of 2×2 at the bottom rescales
        // rounding by up to 1/σ, so outputs near 0 carry absolute, not relative, rounding (2e-4 of a 1e-3
        // floor with im2col). Measured this way: 1.5e-6 with im2col, 5e-6 with F(4×4).
        let outputError = maxAbsoluteError(y, expected) / expected.map { abs($0) }.max()!
        report("needle U-Net golden, \(convolutions): train-mode output \(outputError) of its largest value")
        #expect(outputError < 5e-5, "\(convolutions): train-mode output off by \(outputError) of its largest value")
        // (No gradient here is a true 0: each convolution's bias reaches its BatchNorm through a ReLU.)
        let worst = try golden.expectGradientsMatch(model, bound: 1e-4, label: "\(convolutions)")
        report("needle U-Net golden, \(convolutions): gradients within \(worst.error) of each tensor's largest entry (worst \(worst.name))")
    }

    @Test(arguments: algorithms)
    func runningStatisticsAndEvalOutputAfterTheStepMatchPyTorch(_ convolutions: ConvolutionChoice) throws {
        let model = try loadedModel(convolutions)
        _ = trainStep(model)
        for e in model.bufferTable.entries {
            let expected = try file.read("\(Self.group)/buffers_after/\(e.name)", as: Float.self).values
            let ours = entryValues(model.buffers, e)
            #expect(maxRelativeError(ours, expected) < 1e-4, "\(convolutions): \(e.name)")
        }
        model.training = false
        var y = [Float](repeating: .nan, count: x.count)
        model.forward(input: x, timesteps: t, output: &y, batch: 3)
        let expected = try file.read("\(Self.group)/y_eval_after", as: Float.self).values
        let outputError = maxAbsoluteError(y, expected) / expected.map { abs($0) }.max()!
        report("needle U-Net golden, \(convolutions): eval-mode output \(outputError) of its largest value")
        #expect(outputError < 1e-5, "\(convolutions): eval-mode output off by \(outputError) of its largest value")
    }
}
