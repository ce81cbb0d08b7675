import Foundation
import Testing
import TestSupport
import IO
import Tensor
@testable import Models

/// ContextUnet (ZOO.md §2) against PyTorch (Tests/Fixtures/zoo-models.h5, made by
/// Tests/Fixtures/generate/zoo_models.py from the modules in zoo_modules.py): counts and names of the
/// listed instances, one train-mode forward and backward with every gradient, the running statistics
/// after it and the eval-mode output. Groups: `context_unet` (3×16×16, n_feat 16, n_cfeat 5, batch 3)
/// and `context_unet_28` (1×28×28, n_feat 8, n_cfeat 10: AvgPool2d(7), ConvT k = s = 7); each batch has
/// one unconditional row (label −1, the zero context).
@Suite struct ContextUnetTests {
    let file: HDF5File
    init() throws { file = try Golden.open("zoo-models.h5") }

    @Test func theListedInstancesHaveZOOsCountsAndBatchNormLayers() {
        let expected = ["context_unet": 1_481_027, "context_unet_fmnist": 2_020_225]
        for instance in ModelArchitecture.contextUnet.instances {
            let model = ModelArchitecture.contextUnet.build(instance, batchCapacity: 1)
            #expect(model.parameterTable.totalCount == expected[instance.name], "\(instance.name)")
            #expect(model.bufferTable.totalCount == 2_816, "\(instance.name)")
            let batchNorms = model.bufferTable.entries.filter { $0.name.hasSuffix(".running_mean") }.count
            #expect(batchNorms == 18, "\(instance.name)")
        }
        let sprites = ModelArchitecture.contextUnet.build(ModelArchitecture.contextUnet.instances[0], batchCapacity: 1)
        #expect(sprites.multiplyAccumulatesPerSample == 150_660_224)
        #expect(sprites.classCount == 5)
    }

    @Test func sizesAndShapesAreValidatedWithTheirNames() {
        let a = ModelArchitecture.contextUnet
        #expect(a.validate([3, 16, 16], options: ModelOptions(features: 12))?.contains("--features 12") == true)
        #expect(a.validate([3, 18, 18])?.contains("divisible by 4") == true)
        #expect(a.validate([3, 16, 32])?.contains("square") == true)
        #expect(a.validate([3, 16, 16], options: ModelOptions(channels: [8, 16]))?.contains("--channels is not an option of context-unet") == true)
        #expect(a.validate([1, 28, 28], options: ModelOptions(features: 8, contextFeatures: 3)) == nil)
    }

    /// The golden group's model with PyTorch's parameters and running statistics.
    func loadedModel(_ group: String) throws -> ContextUnet {
        let x = try file.read("\(group)/x", as: Float.self).shape
        let c = try file.read("\(group)/c", as: Float.self).shape
        let features = Int(try #require(file.attribute("n_feat", on: group)))!
        let model = ContextUnet(ContextUnetConfiguration(inChannels: x[1], size: x[2], features: features, contextFeatures: c[1]),
                                batchCapacity: x[0])
        try GoldenModelGroup(file: file, name: group).load(into: model)
        return model
    }

    /// Conditioning of the group: labels (−1: none) and t/T.
    func conditioning(_ group: String, batch: Int) throws -> Conditioning {
        let labels = try file.read("\(group)/labels", as: Int32.self).values, t = try file.read("\(group)/t", as: Float.self).values
        let conditioning = Conditioning(capacity: batch)
        for n in 0..<batch { conditioning.labels[n] = labels[n]; conditioning.continuous[n] = t[n] }
        return conditioning
    }

    /// max |ours − golden| / max |golden|.
    func error(_ ours: [Float], _ golden: [Float]) -> Float {
        zip(ours, golden).map { abs($0 - $1) }.max()! / max(golden.map(abs).max()!, .leastNormalMagnitude)
    }

    @Test(arguments: ["context_unet", "context_unet_28"])
    func namesMatchThePyTorchStateDict(_ group: String) throws {
        let model = try loadedModel(group)
        let golden = Set(try file.members(of: "\(group)/params") + file.members(of: "\(group)/buffers"))
        let ours = Set((model.parameterTable.entries + model.bufferTable.entries).map(\.name))
        #expect(ours == golden, "only ours: \(ours.subtracting(golden).sorted()); only PyTorch's: \(golden.subtracting(ours).sorted())")
        #expect(model.parameterTable.totalCount == Int(file.attribute("parameter_count", on: group) ?? ""))
    }

    @Test(arguments: ["context_unet", "context_unet_28"])
    func trainForwardEveryGradientRunningStatisticsAndEvalOutputMatchPyTorch(_ group: String) throws {
        let model = try loadedModel(group)
        let (x, shape) = try file.read("\(group)/x", as: Float.self)
        let batch = shape[0], conditioning = try conditioning(group, batch: batch)
        var y = [Float](repeating: .nan, count: x.count)
        model.training = true
        model.forward(input: x, conditioning: conditioning, output: &y, batch: batch)
        let yError = error(y, try file.read("\(group)/y", as: Float.self).values)
        #expect(yError < 1e-5, "\(group) y: \(yError) of its largest magnitude")
        model.freshBackward(outputGrad: try file.read("\(group)/gy", as: Float.self).values)
        var largest: Float = 0
        for e in model.parameterTable.entries {
            largest = max(largest, try file.read("\(group)/grads/\(e.name)", as: Float.self).values.map(abs).max()!)
        }
        for e in model.parameterTable.entries {
            let expected = try file.read("\(group)/grads/\(e.name)", as: Float.self).values
            let ours = Array(UnsafeBufferPointer(start: model.gradients.pointer + e.offset, count: e.count))
            // why apart: a bias right before a norm (a conv before BatchNorm, out.0 before a GroupNorm of one
            // channel per group) has a true gradient of 0, and both sides hold rounding noise there.
            if expected.map(abs).max()! < 1e-3 * largest {
                #expect(ours.map(abs).max()! < 1e-3 * largest, "\(group): gradient of \(e.name) should be 0 to rounding")
                continue
            }
            let err = error(ours, expected)
            #expect(err < 1e-4, "\(group): gradient of \(e.name): \(err) of its largest entry")
        }
        for e in model.bufferTable.entries {
            let expected = try file.read("\(group)/buffers_after/\(e.name)", as: Float.self).values
            let ours = Array(UnsafeBufferPointer(start: model.buffers.pointer + e.offset, count: e.count))
            #expect(error(ours, expected) < 1e-5, "\(group): \(e.name)")
        }
        model.training = false
        model.forward(input: x, conditioning: conditioning, output: &y, batch: batch)
        let evalError = error(y, try file.read("\(group)/y_eval_after", as: Float.self).values)
        #expect(evalError < 1e-5, "\(group) eval y: \(evalError)")
    }

    @Test func theContextChangesTheOutputAndNoLabelIsTheZeroContext() throws {
        let model = try loadedModel("context_unet")
        let (x, shape) = try file.read("context_unet/x", as: Float.self)
        let batch = shape[0], conditioning = try conditioning("context_unet", batch: batch)
        model.training = false
        var a = [Float](repeating: .nan, count: x.count), b = a
        model.forward(input: x, conditioning: conditioning, output: &a, batch: batch)
        conditioning.labels[0] = (conditioning.labels[0] + 1) % 5
        model.forward(input: x, conditioning: conditioning, output: &b, batch: batch)
        let per = x.count / batch
        #expect(a[0..<per] != b[0..<per], "another class must change the prediction")
        #expect(a[per...] == b[per...], "the other images keep theirs")
    }
}
