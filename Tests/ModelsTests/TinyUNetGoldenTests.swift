import Testing
import TestSupport
import IO
import Tensor
@testable import Models

/// The tiny U-Net (base 4, depth 2, 1 channel, 16×16, batch 3) against PyTorch: one train-mode step,
/// with every convolution algorithm (Winograd forced onto every 3×3 layer: it changes rounding only).
@Suite struct TinyUNetGoldenTests {
    let file: HDF5File
    let xt: [Float], eps: [Float], t: [Int32]
    static let algorithms: [ConvolutionChoice] = [.im2col, .winogradF2, .winogradF4]

    init() throws {
        file = try Golden.open()
        xt = try file.read("tiny_unet/x_t", as: Float.self).values
        eps = try file.read("tiny_unet/eps", as: Float.self).values
        t = try file.read("tiny_unet/t", as: Int32.self).values
    }

    /// The model with PyTorch's parameters and buffers.
    func loadedModel(_ convolutions: ConvolutionChoice = .im2col) throws -> UNetDenoiser {
        let model = ModelTests.tinyUNet(inChannels: 1, batchCapacity: 3, convolutions: convolutions)
        for e in model.parameterTable.entries {
            let (values, shape) = try file.read("tiny_unet/params/\(e.name)", as: Float.self)
            #expect(shape == e.shape, "\(e.name)")
            (model.parameters.pointer + e.offset).update(from: values, count: e.count)
        }
        for e in model.bufferTable.entries {
            let values = try file.read("tiny_unet/params/\(e.name)", as: Float.self).values
            (model.buffers.pointer + e.offset).update(from: values, count: e.count)
        }
        return model
    }

    func trainStep(_ model: UNetDenoiser) -> Float {
        var out = [Float](repeating: 0, count: xt.count), grad = out
        model.training = true
        model.forward(input: xt, timesteps: t, output: &out, batch: 3)
        let loss = mseLoss(predictionGrad: &grad, prediction: out, target: eps, count: out.count)
        model.freshBackward(outputGrad: grad)
        return loss
    }

    @Test func everyParameterNameAndShapeMatchesPyTorchStateDict() throws {
        let model = try loadedModel()
        let golden = Set(try file.members(of: "tiny_unet/params"))
        let ours = Set((model.parameterTable.entries + model.bufferTable.entries).map(\.name))
        #expect(ours == golden)
    }

    @Test(arguments: algorithms)
    func lossAndEveryGradientMatchPyTorch(_ convolutions: ConvolutionChoice) throws {
        let model = try loadedModel(convolutions)
        let loss = trainStep(model)
        let goldenLoss = try file.read("tiny_unet/loss", as: Float.self).values[0]
        #expect(abs(loss - goldenLoss) < 1e-5 * abs(goldenLoss))
        for e in model.parameterTable.entries {
            let expected = try file.read("tiny_unet/grads/\(e.name)", as: Float.self).values
            let ours = Array(UnsafeBufferPointer(start: model.gradients.pointer + e.offset, count: e.count))
            // why apart: a conv bias right before BatchNorm has a true gradient of 0 (BN removes the mean),
            // so PyTorch's value there is rounding noise of order 1e-8, as is ours (1e-7 with F(4×4)).
            if expected.map({ abs($0) }).max()! < 1e-5 {
                let largest = ours.map { abs($0) }.max()!
                #expect(largest < 1e-6, "\(convolutions): gradient of \(e.name) should be 0 to rounding, is up to \(largest)")
                continue
            }
            let scale = expected.map { abs($0) }.max()!
            let err = zip(ours, expected).map { abs($0 - $1) }.max()! / scale
            #expect(err < 1e-4, "\(convolutions): gradient of \(e.name): max error \(err) relative to its largest entry")
        }
    }

    @Test(arguments: algorithms)
    func runningStatisticsAndEvalOutputAfterOneStepMatchPyTorch(_ convolutions: ConvolutionChoice) throws {
        let model = try loadedModel(convolutions)
        _ = trainStep(model)
        for e in model.bufferTable.entries {
            let expected = try file.read("tiny_unet/buffers_after/\(e.name)", as: Float.self).values
            let ours = Array(UnsafeBufferPointer(start: model.buffers.pointer + e.offset, count: e.count))
            #expect(maxRelativeError(ours, expected) < 1e-4, "\(e.name)")
        }
        model.training = false
        var out = [Float](repeating: 0, count: xt.count)
        model.forward(input: xt, timesteps: t, output: &out, batch: 3)
        let expected = try file.read("tiny_unet/eval_output_after", as: Float.self).values
        #expect(maxRelativeError(out, expected) < 1e-3)
    }
}
