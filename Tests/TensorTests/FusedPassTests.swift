import Testing
import TestSupport
import Tensor

/// The fused passes give what the separate passes gave: BatchNorm from a convolution's per-channel
/// sums (instead of its own two passes), and BatchNorm + ReLU + the per-image channel shift (instead
/// of BatchNorm, then `addPerChannel`).
@Suite struct FusedPassTests {
    static let (channels, batch, plane) = (5, 3, 37)   // a plane of 37: vectors of 8 and a scalar tail

    struct Normalized: Equatable {
        var y: [Float], mean: [Float], invStd: [Float], runningMean: [Float], runningVar: [Float]
    }

    func trainForward(_ x: [Float], moments: [Double]? = nil, shift: [Float]? = nil) -> Normalized {
        let c = Self.channels
        let s = BatchNormShape(channels: c, valuesPerChannel: Self.batch * Self.plane)
        let weight = normals(c, seed: 3, scale: 0.4, shift: 1), bias = normals(c, seed: 4, scale: 0.3)
        var r = Normalized(y: [Float](repeating: .nan, count: x.count), mean: [Float](repeating: .nan, count: c),
                           invStd: [Float](repeating: .nan, count: c), runningMean: [Float](repeating: 0.2, count: c),
                           runningVar: [Float](repeating: 0.9, count: c))
        let shiftBuffer = shift.map(FloatBuffer.init)   // a stable pointer for the ChannelShift
        let channelShift = shiftBuffer.map { ChannelShift(values: $0.pointer, plane: Self.plane) }
        r.y.withUnsafeMutableBufferPointer { y in
            withExtendedLifetime(shiftBuffer) {
                if let moments {
                    moments.withUnsafeBufferPointer { mo in
                        batchNormTrainForward(output: y.baseAddress!, input: x, weight: weight, bias: bias, runningMean: &r.runningMean,
                                              runningVar: &r.runningVar, savedMean: &r.mean, savedInvStd: &r.invStd, shape: s,
                                              activation: .relu, moments: mo.baseAddress!, shift: channelShift)
                    }
                } else {
                    batchNormTrainForward(output: y.baseAddress!, input: x, weight: weight, bias: bias, runningMean: &r.runningMean,
                                          runningVar: &r.runningVar, savedMean: &r.mean, savedInvStd: &r.invStd, shape: s,
                                          activation: .relu, shift: channelShift)
                }
            }
        }
        return r
    }

    func input() -> [Float] { normals(Self.channels * Self.batch * Self.plane, seed: 8, scale: 1.7, shift: 0.6) }

    func moments(_ x: [Float]) -> [Double] {
        var m = [Double](repeating: .nan, count: 2 * Self.channels)
        channelMoments(&m, x, channels: Self.channels, count: Self.batch * Self.plane)
        return m
    }

    @Test func channelMomentsAreTheSumsAndSquareSums() {
        let x = input(), m = moments(x), count = Self.batch * Self.plane
        for c in 0..<Self.channels {
            let values = x[(c * count)..<((c + 1) * count)].map(Double.init)
            #expect(abs(m[c] - values.reduce(0, +)) < 1e-9)
            #expect(abs(m[Self.channels + c] - values.map { $0 * $0 }.reduce(0, +)) < 1e-9)
        }
    }

    @Test func batchNormFromMomentsMatchesItsOwnTwoPassStatistics() {
        let x = input()
        let own = trainForward(x), fused = trainForward(x, moments: moments(x))
        func close(_ a: [Float], _ b: [Float], _ tolerance: Float) -> Bool {
            zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($0)) }
        }
        #expect(close(own.mean, fused.mean, 1e-6) && close(own.invStd, fused.invStd, 1e-5))
        #expect(close(own.runningMean, fused.runningMean, 1e-6) && close(own.runningVar, fused.runningVar, 1e-5))
        #expect(close(own.y, fused.y, 1e-5))
        // Wrong moments must show: they are used, not recomputed.
        var shifted = moments(x); shifted[0] += 10 * Double(Self.batch * Self.plane)
        #expect(trainForward(x, moments: shifted).mean[0] != own.mean[0])
    }

    @Test func shiftAfterTheReLUEqualsAddPerChannelAfterBatchNorm() {
        let x = input(), shift = normals(Self.batch * Self.channels, seed: 12)
        let fused = trainForward(x, shift: shift)
        var separate = trainForward(x)
        addPerChannel(&separate.y, shift, channels: Self.channels, batch: Self.batch, plane: Self.plane)
        #expect(fused == separate)   // bit for bit: the same two roundings in the same order
        #expect(fused.y != trainForward(x).y)
    }

    @Test func evalModeShiftEqualsAddPerChannel() {
        let x = input(), shift = normals(Self.batch * Self.channels, seed: 13), c = Self.channels
        let s = BatchNormShape(channels: c, valuesPerChannel: Self.batch * Self.plane)
        let weight = normals(c, seed: 3), bias = normals(c, seed: 4), mean = normals(c, seed: 5), variance = [Float](repeating: 1.3, count: c)
        var fused = [Float](repeating: .nan, count: x.count), separate = fused
        shift.withUnsafeBufferPointer { sh in
            batchNormEvalForward(output: &fused, input: x, weight: weight, bias: bias, runningMean: mean, runningVar: variance,
                                 shape: s, activation: .relu, shift: ChannelShift(values: sh.baseAddress!, plane: Self.plane))
        }
        batchNormEvalForward(output: &separate, input: x, weight: weight, bias: bias, runningMean: mean, runningVar: variance,
                             shape: s, activation: .relu)
        addPerChannel(&separate, shift, channels: c, batch: Self.batch, plane: Self.plane)
        #expect(fused == separate)
    }

    /// Every algorithm's forward hands out the moments of the output it wrote.
    @Test(arguments: ConvolutionAlgorithmKind.allCases)
    func convolutionMomentsAreThoseOfItsOutput(_ kind: ConvolutionAlgorithmKind) {
        let shape = ConvShape(batch: 2, inChannels: 3, outChannels: 4, height: 9, width: 7, kernel: 3)
        let workspace = Workspace(), algorithm = kind.make(shape, workspace: workspace)
        let x = normals(shape.inChannels * shape.inputPositions, seed: 21), w = normals(shape.outChannels * shape.patchSize, seed: 22)
        let b = normals(shape.outChannels, seed: 23)
        var y = [Float](repeating: .nan, count: shape.outChannels * shape.positions)
        var m = [Double](repeating: .nan, count: 2 * shape.outChannels)
        algorithm.forward(output: &y, input: x, weight: w, bias: b, batch: 2, moments: &m)
        var expected = [Double](repeating: .nan, count: m.count)
        channelMoments(&expected, y, channels: shape.outChannels, count: shape.positions)
        #expect(m == expected)
    }
}
