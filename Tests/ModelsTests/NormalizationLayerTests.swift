import Testing
import TestSupport
import Tensor
@testable import Models

/// The layers around the GroupNorm, LayerNorm and activation kernels: their state_dict entries, their
/// initialisation, and that they hand the model's buffers to the kernels and add into the gradients.
@Suite struct NormalizationLayerTests {
    /// A model's three flat buffers for the parameters of `builder`, initialised as PyTorch would.
    final class Buffers {
        let parameters, gradients, buffers: FloatBuffer
        var ready: [Int] = []
        init(_ b: ModelBuilder) {
            parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
            buffers = FloatBuffer(count: max(1, b.buffers.totalCount))
            var rng = Philox(seed: 1)
            b.parameters.initialize(parameters.pointer, rng: &rng)
        }
        var pointers: ModelPointers {
            ModelPointers(parameters: parameters.pointer, gradients: gradients.pointer, buffers: buffers.pointer,
                          gradientsReady: { self.ready.append($0) }, reduceStatistics: nil)
        }
    }

    @Test func groupNormLayerHasPyTorchEntriesAndAddsIntoItsGradients() {
        let b = ModelBuilder(batchCapacity: 3)
        let layer = GroupNormLayer(b, "up0.1", groups: 2, channels: 4, activation: .relu)
        #expect(b.parameters.entries.map(\.name) == ["up0.1.weight", "up0.1.bias"])
        #expect(b.parameters.entries.map(\.shape) == [[4], [4]])
        let m = Buffers(b)
        #expect(m.parameters.toArray() == [1, 1, 1, 1, 0, 0, 0, 0])
        let (batch, plane) = (2, 9)
        let x = normals(4 * batch * plane, seed: 1), gy = normals(x.count, seed: 2)
        let y = FloatBuffer(count: x.count), gx = FloatBuffer([Float](repeating: 1, count: x.count))
        m.gradients.pointer.update(repeating: 1, count: 8)
        layer.forward(m.pointers, output: y.pointer, input: x, batch: batch, plane: plane)
        layer.backward(m.pointers, inputGrad: gx.pointer, outputGrad: gy, input: x, batch: batch, plane: plane)

        let s = GroupNormShape(batch: batch, channels: 4, groups: 2, plane: plane)
        var expectedY = [Float](repeating: 0, count: x.count), mean: [Float] = [0, 0, 0, 0], invStd = mean
        let ones: [Float] = [1, 1, 1, 1], zeros: [Float] = [0, 0, 0, 0]
        groupNormForward(output: &expectedY, input: x, weight: ones, bias: zeros, savedMean: &mean, savedInvStd: &invStd,
                         shape: s, activation: .relu)
        var expectedGX = [Float](repeating: 1, count: x.count), expectedGW = ones, expectedGB = ones
        groupNormBackward(inputGrad: &expectedGX, weightGrad: &expectedGW, biasGrad: &expectedGB, outputGrad: gy, input: x,
                          weight: ones, bias: zeros, savedMean: mean, savedInvStd: invStd, shape: s, activation: .relu)
        #expect(y.toArray() == expectedY)
        #expect(gx.toArray() == expectedGX)
        #expect(m.gradients.toArray() == expectedGW + expectedGB)
        #expect(expectedGX.contains { $0 != 1 }, "the gradient must change, or adding is not shown")
        #expect(m.ready == [0])
    }

    @Test func layerNormLayerHasPyTorchEntriesAndAddsIntoItsGradients() {
        let b = ModelBuilder(batchCapacity: 2)
        _ = LinearLayer(b, "before", inFeatures: 2, outFeatures: 1)  // so that the LayerNorm's offsets are not 0
        let layer = LayerNormLayer(b, "b1.0.ln", channels: 2, height: 3, width: 4)
        #expect(b.parameters.entries.map(\.name) == ["before.weight", "before.bias", "b1.0.ln.weight", "b1.0.ln.bias"])
        #expect(b.parameters.entries.suffix(2).map(\.shape) == [[2, 3, 4], [2, 3, 4]])
        let m = Buffers(b)
        #expect(Array(m.parameters.toArray()[3...]) == [Float](repeating: 1, count: 24) + [Float](repeating: 0, count: 24))
        let x = normals(2 * 2 * 12, seed: 3), gy = normals(x.count, seed: 4)
        let y = FloatBuffer(count: x.count), gx = FloatBuffer(count: x.count)
        layer.forward(m.pointers, output: y.pointer, input: x, batch: 2)
        layer.backward(m.pointers, inputGrad: gx.pointer, outputGrad: gy, input: x, batch: 2)

        let s = LayerNormShape(batch: 2, channels: 2, plane: 12)
        let ones = [Float](repeating: 1, count: 24), zeros = [Float](repeating: 0, count: 24)
        var expectedY = [Float](repeating: 0, count: x.count), mean: [Float] = [0, 0], invStd = mean
        layerNormForward(output: &expectedY, input: x, weight: ones, bias: zeros, savedMean: &mean, savedInvStd: &invStd, shape: s)
        var expectedGX = [Float](repeating: 0, count: x.count), expectedGW = zeros, expectedGB = zeros
        layerNormBackward(inputGrad: &expectedGX, weightGrad: &expectedGW, biasGrad: &expectedGB, outputGrad: gy, input: x,
                          weight: ones, savedMean: mean, savedInvStd: invStd, shape: s)
        #expect(y.toArray() == expectedY)
        #expect(gx.toArray() == expectedGX)
        #expect(Array(m.gradients.toArray()[3...]) == expectedGW + expectedGB)
        #expect(m.ready == [3])
    }

    @Test func activationLayerAppliesItsActivationAndAddsTheChainRule() {
        let layer = ActivationLayer(.gelu, valuesPerImage: 5)
        let x = normals(10, seed: 5), gy = normals(10, seed: 6)
        let y = FloatBuffer(count: 10), gx = FloatBuffer([Float](repeating: 2, count: 10))
        layer.forward(output: y.pointer, input: x, batch: 2)
        layer.backward(inputGrad: gx.pointer, outputGrad: gy, input: x, batch: 2)
        #expect(y.toArray() == x.map { Activation.gelu.apply($0) })
        #expect(gx.toArray() == x.indices.map { 2 + gy[$0] * Activation.gelu.derivative(x[$0]) })
    }
}
