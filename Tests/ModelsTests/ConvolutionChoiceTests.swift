import Testing
import Tensor
@testable import Models

/// `--conv-algorithm`: which algorithm each convolution gets, and the plan a model records.
@Suite struct ConvolutionChoiceTests {
    static func conv(_ cin: Int, _ cout: Int, _ size: Int, kernel: Int = 3, stride: Int = 1) -> ConvShape {
        ConvShape(batch: 8, inChannels: cin, outChannels: cout, height: size, width: size, kernel: kernel, stride: stride)
    }

    @Test func autoFollowsTheMeasuredRule() {
        #expect(ConvolutionChoice.auto.algorithm(for: Self.conv(3, 128, 32)) == .im2col)        // the input layer
        #expect(ConvolutionChoice.auto.algorithm(for: Self.conv(128, 256, 32)) == .winogradF4)
        #expect(ConvolutionChoice.auto.algorithm(for: Self.conv(512, 512, 16)) == .winogradF4)
        #expect(ConvolutionChoice.auto.algorithm(for: Self.conv(1024, 1024, 8)) == .winogradF2)
        #expect(ConvolutionChoice.auto.algorithm(for: Self.conv(1024, 1024, 4)) == .im2col)
        #expect(ConvolutionChoice.auto.algorithm(for: Self.conv(64, 3, 32, kernel: 1)) == .im2col)  // not 3×3
        #expect(ConvolutionChoice.auto.algorithm(for: Self.conv(64, 64, 32, kernel: 3, stride: 2)) == .im2col)
    }

    @Test func explicitChoicesApplyToEvery3x3Stride1LayerOnly() {
        for size in [4, 8, 32] {
            #expect(ConvolutionChoice.im2col.algorithm(for: Self.conv(256, 256, size)) == .im2col)
            #expect(ConvolutionChoice.winogradF2.algorithm(for: Self.conv(3, 256, size)) == .winogradF2)
            #expect(ConvolutionChoice.winogradF4.algorithm(for: Self.conv(3, 256, size)) == .winogradF4)
            #expect(ConvolutionChoice.winograd.algorithm(for: Self.conv(3, 256, size)) == (size >= 16 ? .winogradF4 : .winogradF2))
            #expect(ConvolutionChoice.winogradF4.algorithm(for: Self.conv(3, 256, size, kernel: 1)) == .im2col)
        }
    }

    @Test func aModelRecordsItsPlanAndItsAlgorithmsRunIt() {
        let model = ModelArchitecture.cnn.buildAtReferenceShape(batchCapacity: 1, convolutions: .auto)
        let plan = model.convolutionPlan
        #expect(plan.count == 12)
        #expect(plan.first?.layer == "init_conv" && plan.first?.kind == .im2col)
        #expect(plan.last?.layer == "out_conv" && plan.last?.kind == .im2col)
        #expect(plan.summary == "2 × im2col (32×32); 8 × winograd-f4 (32×32, 16×16); 2 × winograd-f2 (8×8)")
        #expect(ModelArchitecture.mlp.buildAtReferenceShape(batchCapacity: 1).convolutionPlan.isEmpty)
    }
}
