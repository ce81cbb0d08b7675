import Foundation
import Testing
import TestSupport
import Tensor

/// Small inputs whose results can be worked out by hand.
@Suite struct KernelHandCheckTests {
    @Test func bilinearAlignCornersUpsamplesTwoByTwoToFourByFourExactly() {
        // f(y, x) = x + 2y on [[0, 1], [2, 3]] is bilinear, so align_corners=True samples it at
        // y, x ∈ {0, 1/3, 2/3, 1}: out[oy][ox] = ox/3 + 2·oy/3, and the four corners are the input's.
        let x: [Float] = [0, 1, 2, 3]
        var y = [Float](repeating: .nan, count: 16)
        upsampleBilinear2xForward(output: &y, input: x, planes: 1, height: 2, width: 2)
        #expect(maxAbsoluteError(Array(y[0..<4]), [0, 1.0 / 3, 2.0 / 3, 1]) < 1e-7, "first row \(y[0..<4])")
        #expect(y[0] == 0 && y[3] == 1 && y[12] == 2 && y[15] == 3, "corners preserved exactly")
        for oy in 0..<4 {
            for ox in 0..<4 {
                let expected = Float(ox) / 3 + 2 * Float(oy) / 3
                #expect(abs(y[oy * 4 + ox] - expected) < 3e-7, "out[\(oy)][\(ox)] = \(y[oy * 4 + ox]), expected \(expected)")
            }
        }
        // Adjoint: each input pixel's 1-D weights over the four outputs are {1, 2/3, 1/3, 0}, summing to 2,
        // so an all-ones output gradient gives 2·2 = 4 to every input.
        var gx = [Float](repeating: 0, count: 4)
        upsampleBilinear2xBackward(inputGrad: &gx, outputGrad: [Float](repeating: 1, count: 16), planes: 1, height: 2, width: 2)
        #expect(maxAbsoluteError(gx, [4, 4, 4, 4]) < 1e-6)
        // A gradient on one output corner goes entirely to the matching input corner.
        var g = [Float](repeating: 0, count: 16); g[15] = 5
        gx = [0, 0, 0, 0]   // backward adds into its input gradient
        upsampleBilinear2xBackward(inputGrad: &gx, outputGrad: g, planes: 1, height: 2, width: 2)
        #expect(gx == [0, 0, 0, 5])
    }

    @Test func bilinearUpsampleOfNonSquarePlanesKeepsRowsAndColumnsApart() {
        // Height 1 (constant along y) and width 3: every output row is the 1-D align-corners
        // interpolation of [0, 3, 6] at x = k·2/5, i.e. 6k/5.
        let x: [Float] = [0, 3, 6]
        var y = [Float](repeating: .nan, count: 2 * 6)
        upsampleBilinear2xForward(output: &y, input: x, planes: 1, height: 1, width: 3)
        let row = (0..<6).map { Float($0) * 6 / 5 }
        #expect(maxAbsoluteError(Array(y[0..<6]), row) < 1e-6)
        #expect(maxAbsoluteError(Array(y[6..<12]), row) < 1e-6)
    }

    @Test func maxPoolTiesSendTheGradientToTheFirstMaximum() {
        // One 2×4 plane, two windows: [[5, 5], [5, 5]] (all tied) and [[1, 7], [2, 7]] (tie at 1 and 3).
        let x: [Float] = [5, 5, 1, 7,
                          5, 5, 2, 7]
        var y = [Float](repeating: .nan, count: 2)
        var argmax = [UInt8](repeating: 9, count: 2)
        maxPool2x2Forward(output: &y, argmax: &argmax, input: x, planes: 1, height: 2, width: 4)
        #expect(y == [5, 7])
        #expect(argmax == [0, 1])
        // Backward adds into what is there already.
        var gx: [Float] = [10, 10, 10, 10, 10, 10, 10, 10]
        maxPool2x2Backward(inputGrad: &gx, outputGrad: [1.5, -2], argmax: argmax, planes: 1, height: 2, width: 4)
        #expect(gx == [11.5, 10, 10, 8,
                       10, 10, 10, 10])
    }

    @Test func maxPoolPicksEachWindowPositionAndKeepsPlanesApart() {
        // Two planes 2×2; the maximum is at window position 3 in the first, 2 in the second.
        let x: [Float] = [1, 2, 3, 4,
                          -1, -2, -0.5, -3]
        var y = [Float](repeating: .nan, count: 2)
        var argmax = [UInt8](repeating: 9, count: 2)
        maxPool2x2Forward(output: &y, argmax: &argmax, input: x, planes: 2, height: 2, width: 2)
        #expect(y == [4, -0.5])
        #expect(argmax == [3, 2])
        var gx = [Float](repeating: 0, count: 8)
        maxPool2x2Backward(inputGrad: &gx, outputGrad: [1, 2], argmax: argmax, planes: 2, height: 2, width: 2)
        #expect(gx == [0, 0, 0, 1, 0, 0, 2, 0])
    }

    @Test func batchNormRunningStatisticsAfterTwoTrainStepsFollowMomentumAndUnbiasedVariance() {
        let s = BatchNormShape(channels: 1, valuesPerChannel: 4)
        var runningMean: [Float] = [0], runningVar: [Float] = [1]
        var savedMean: [Float] = [.nan], savedInvStd: [Float] = [.nan]
        var y = [Float](repeating: .nan, count: 4)
        // Step 1: [1, 2, 3, 4]: mean 2.5, biased variance 1.25, unbiased 5/3.
        batchNormTrainForward(output: &y, input: [1, 2, 3, 4], weight: [1], bias: [0], runningMean: &runningMean,
                              runningVar: &runningVar, savedMean: &savedMean, savedInvStd: &savedInvStd, shape: s, activation: .identity)
        #expect(abs(runningMean[0] - 0.25) < 1e-7)                       // 0.9·0 + 0.1·2.5
        #expect(abs(runningVar[0] - (0.9 + 0.1 * 5.0 / 3)) < 1e-6)       // 0.9·1 + 0.1·5/3
        #expect(savedMean[0] == 2.5)
        #expect(abs(savedInvStd[0] - Float(1 / (1.25 + 1e-5).squareRoot())) < 1e-6)
        let invStd = Float(1 / (1.25 + 1e-5).squareRoot())
        #expect(maxAbsoluteError(y, [-1.5, -0.5, 0.5, 1.5].map { $0 * invStd }) < 1e-6)
        // Step 2: [0, 0, 6, 6]: mean 3, biased variance 9, unbiased 12.
        batchNormTrainForward(output: &y, input: [0, 0, 6, 6], weight: [2], bias: [1], runningMean: &runningMean,
                              runningVar: &runningVar, savedMean: &savedMean, savedInvStd: &savedInvStd, shape: s, activation: .identity)
        #expect(abs(runningMean[0] - 0.525) < 1e-6)                      // 0.9·0.25 + 0.1·3
        #expect(abs(runningVar[0] - Float(0.9 * (0.9 + 0.1 * 5.0 / 3) + 0.1 * 12)) < 1e-6)   // = 2.16
        let invStd2 = Float(1 / (9 + 1e-5).squareRoot())
        #expect(maxAbsoluteError(y, [-3, -3, 3, 3].map { 2 * $0 * invStd2 + 1 }) < 1e-6)
    }

    @Test func batchNormFusedReluClampsTheNormalisedOutput() {
        let s = BatchNormShape(channels: 1, valuesPerChannel: 4)
        var rm: [Float] = [0], rv: [Float] = [1], sm: [Float] = [0], si: [Float] = [0]
        var y = [Float](repeating: .nan, count: 4)
        batchNormTrainForward(output: &y, input: [1, 2, 3, 4], weight: [1], bias: [0], runningMean: &rm, runningVar: &rv,
                              savedMean: &sm, savedInvStd: &si, shape: s, activation: .relu)
        let invStd = Float(1 / (1.25 + 1e-5).squareRoot())
        #expect(maxAbsoluteError(y, [0, 0, 0.5 * invStd, 1.5 * invStd]) < 1e-6)
        // The gradient does not pass where the output was clamped.
        var gx = [Float](repeating: 0, count: 4), gw: [Float] = [0], gb: [Float] = [0]
        batchNormTrainBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: [1, 1, 1, 1], input: [1, 2, 3, 4],
                               weight: [1], bias: [0], savedMean: sm, savedInvStd: si, shape: s, activation: .relu)
        #expect(gb == [2])                                               // Σ of the two unclamped gradients
        #expect(abs(gw[0] - 2 * invStd) < 1e-6)                          // x̂ = 0.5·invStd + 1.5·invStd
    }

    @Test func timeEmbeddingOfStepZeroIsZerosThenOnes() {
        var y = [Float](repeating: .nan, count: 2 * timeEmbeddingDimension)
        sinusoidalTimeEmbedding(output: &y, timesteps: [0, 1], batch: 2)
        let half = timeEmbeddingDimension / 2
        #expect(Array(y[0..<half]) == [Float](repeating: 0, count: half))
        #expect(Array(y[half..<2 * half]) == [Float](repeating: 1, count: half))
        // t = 1: f_0 = 1 and f_63 = 10⁻⁴.
        let row = Array(y[2 * half..<4 * half])
        #expect(abs(row[0] - sin(1)) < 1e-7 && abs(row[half] - cos(1)) < 1e-7)
        #expect(abs(row[half - 1] - 1e-4) < 1e-9 && abs(row[2 * half - 1] - 1) < 1e-7)
    }

    @Test func mseLossOfKnownValues() {
        // d = [1, 0, −2, 0]: mean(d²) = 5/4, gradient 2d/4.
        var grad = [Float](repeating: .nan, count: 4)
        let loss = mseLoss(predictionGrad: &grad, prediction: [1, 2, 3, 4], target: [0, 2, 5, 4], count: 4)
        #expect(loss == 1.25)
        #expect(grad == [0.5, 0, -1, 0])
    }

    @Test func conv3x3ZeroPadsTheBorder() {
        // All-ones 3×3 kernel over an all-ones 3×4 image: each output counts its in-image neighbours
        // (4 at a corner, 6 on an edge, 9 inside), plus the bias 0.5.
        let s = ConvShape(batch: 1, inChannels: 1, outChannels: 1, height: 3, width: 4, kernel: 3)
        var y = [Float](repeating: .nan, count: 12), columns = [Float](repeating: .nan, count: s.columnsCount)
        conv2dForward(output: &y, input: [Float](repeating: 1, count: 12), weight: [Float](repeating: 1, count: 9),
                      bias: [0.5], columns: &columns, shape: s)
        #expect(y == [4, 6, 6, 4,
                      6, 9, 9, 6,
                      4, 6, 6, 4].map { $0 + 0.5 })
        // A kernel with a single 1 at (ky, kx) = (0, 2) reads input (y − 1, x + 1).
        var w = [Float](repeating: 0, count: 9); w[2] = 1
        let x = (0..<12).map { Float($0 + 1) }
        conv2dForward(output: &y, input: x, weight: w, bias: [0], columns: &columns, shape: s)
        #expect(y == [0, 0, 0, 0,
                      2, 3, 4, 0,
                      6, 7, 8, 0])
    }

    @Test func conv1x1MixesChannelsPerPixelInCNHW() {
        // CNHW input [2 channels, 2 images, 1×2]; out[co] = Σ_ci w[co, ci]·x[ci] + b[co].
        let x: [Float] = [1, 2, 3, 4,    // channel 0: image 0 = [1, 2], image 1 = [3, 4]
                          10, 20, 30, 40] // channel 1
        let s = ConvShape(batch: 2, inChannels: 2, outChannels: 1, height: 1, width: 2, kernel: 1)
        var y = [Float](repeating: .nan, count: 4), columns: [Float] = [0]
        conv2dForward(output: &y, input: x, weight: [2, -1], bias: [100], columns: &columns, shape: s)
        #expect(y == [92, 84, 76, 68])
    }

    @Test func linearOfKnownValues() {
        // x = [[1, 2]], W = [[1, 0], [0, 1], [3, −1]], b = [0, 1, 2] → y = [1, 3, 3].
        var y = [Float](repeating: .nan, count: 3)
        linearForward(output: &y, input: [1, 2], weight: [1, 0, 0, 1, 3, -1], bias: [0, 1, 2], batch: 1, inFeatures: 2, outFeatures: 3)
        #expect(y == [1, 3, 3])
    }

    /// The gradient rule (Models/Layer.swift): every backward kernel adds into the gradients it is given,
    /// input gradients included. Each kernel runs once into zeros and once into buffers holding 7; the
    /// second result must be the first plus 7, everywhere.
    @Test func everyBackwardKernelAddsIntoItsGradients() {
        func expectAdds(_ what: String, counts: [Int], _ backward: ([UnsafeMutablePointer<Float>]) -> Void) {
            let zeros = counts.map { FloatBuffer(count: $0) }, sevens = counts.map { FloatBuffer([Float](repeating: 7, count: $0)) }
            backward(zeros.map(\.pointer)); backward(sevens.map(\.pointer))
            for (k, (zero, seven)) in zip(zeros.map { $0.toArray() }, sevens.map { $0.toArray() }).enumerated() {
                #expect(zero.contains { $0 != 0 }, "\(what) gradient \(k) is all zero: the check would prove nothing")
                #expect(maxAbsoluteError(seven, zero.map { $0 + 7 }) < 1e-5, "\(what) gradient \(k) is not added into")
            }
        }
        for s in [ConvShape(batch: 2, inChannels: 2, outChannels: 3, height: 3, width: 3, kernel: 3),
                  ConvShape(batch: 2, inChannels: 2, outChannels: 3, height: 6, width: 6, kernel: 4, stride: 2, padding: 1),
                  ConvShape(batch: 2, inChannels: 2, outChannels: 3, height: 3, width: 3, kernel: 1)] {
            let x = normals(2 * s.inputPositions, seed: 1), w = normals(3 * s.patchSize, seed: 2), gy = normals(3 * s.positions, seed: 3)
            var columns = [Float](repeating: 0, count: max(1, s.columnsCount))
            expectAdds("conv k\(s.kernel) s\(s.stride)", counts: [x.count, w.count, 3]) { g in
                conv2dBackward(inputGrad: g[0], weightGrad: g[1], biasGrad: g[2], outputGrad: gy, input: x, weight: w,
                               columns: &columns, shape: s)
            }
        }
        let t = ConvTransposeShape(batch: 2, inChannels: 2, outChannels: 3, height: 3, width: 3, kernel: 4, stride: 2, padding: 1)
        let tx = normals(2 * t.inputPositions, seed: 9), tw = normals(2 * 3 * 16, seed: 10), tgy = normals(3 * t.positions, seed: 11)
        var tcolumns = [Float](repeating: 0, count: t.columnsCount)
        expectAdds("conv transpose", counts: [tx.count, tw.count, 3]) { g in
            convTranspose2dBackward(inputGrad: g[0], weightGrad: g[1], biasGrad: g[2], outputGrad: tgy, input: tx, weight: tw,
                                    columns: &tcolumns, shape: t)
        }
        let lx = normals(3 * 4, seed: 4), lw = normals(5 * 4, seed: 5), lgy = normals(3 * 5, seed: 6)
        expectAdds("linear", counts: [12, 20, 5]) { g in
            linearBackward(inputGrad: g[0], weightGrad: g[1], biasGrad: g[2], outputGrad: lgy, input: lx, weight: lw,
                           batch: 3, inFeatures: 4, outFeatures: 5)
        }
        let bs = BatchNormShape(channels: 2, valuesPerChannel: 6)
        let bx = normals(12, seed: 7), bgy = normals(12, seed: 8)
        var rm: [Float] = [0, 0], rv: [Float] = [1, 1], sm: [Float] = [0, 0], si: [Float] = [0, 0], y = [Float](repeating: 0, count: 12)
        batchNormTrainForward(output: &y, input: bx, weight: [1, 2], bias: [0, 0.1], runningMean: &rm, runningVar: &rv,
                              savedMean: &sm, savedInvStd: &si, shape: bs, activation: .identity)
        for activation in Activation.allCases {
            expectAdds("batchnorm+\(activation)", counts: [12, 2, 2]) { g in
                batchNormTrainBackward(inputGrad: g[0], weightGrad: g[1], biasGrad: g[2], outputGrad: bgy, input: bx, weight: [1, 2],
                                       bias: [0, 0.1], savedMean: sm, savedInvStd: si, shape: bs, activation: activation)
            }
            expectAdds("\(activation)", counts: [12]) { g in
                activationBackward(activation, inputGrad: g[0], outputGrad: bgy, input: bx, count: 12)
            }
        }
        expectAdds("batchnorm eval", counts: [12, 2, 2]) { g in
            batchNormEvalBackward(inputGrad: g[0], weightGrad: g[1], biasGrad: g[2], outputGrad: bgy, input: bx, weight: [1, 2],
                                  bias: [0, 0.1], runningMean: [0.1, -0.2], runningVar: [0.5, 2], shape: bs, activation: .identity)
        }
        let gs = GroupNormShape(batch: 2, channels: 4, groups: 2, plane: 9)
        let gx = normals(72, seed: 15), ggy = normals(72, seed: 16), gw = normals(4, seed: 17, shift: 1), gb = normals(4, seed: 18)
        var gMean = [Float](repeating: 0, count: 4), gInvStd = gMean, gOut = [Float](repeating: 0, count: 72)
        groupNormForward(output: &gOut, input: gx, weight: gw, bias: gb, savedMean: &gMean, savedInvStd: &gInvStd, shape: gs,
                         activation: .identity)
        for activation in Activation.allCases {
            expectAdds("groupnorm+\(activation)", counts: [72, 4, 4]) { g in
                groupNormBackward(inputGrad: g[0], weightGrad: g[1], biasGrad: g[2], outputGrad: ggy, input: gx, weight: gw, bias: gb,
                                  savedMean: gMean, savedInvStd: gInvStd, shape: gs, activation: activation)
            }
        }
        let ls = LayerNormShape(batch: 2, channels: 2, plane: 9)
        let lnx = normals(36, seed: 19), lngy = normals(36, seed: 20), lnw = normals(18, seed: 21, shift: 1), lnb = normals(18, seed: 22)
        var lMean: [Float] = [0, 0], lInvStd: [Float] = [0, 0], lOut = [Float](repeating: 0, count: 36)
        layerNormForward(output: &lOut, input: lnx, weight: lnw, bias: lnb, savedMean: &lMean, savedInvStd: &lInvStd, shape: ls)
        expectAdds("layernorm", counts: [36, 18, 18]) { g in
            layerNormBackward(inputGrad: g[0], weightGrad: g[1], biasGrad: g[2], outputGrad: lngy, input: lnx, weight: lnw,
                              savedMean: lMean, savedInvStd: lInvStd, shape: ls)
        }
        expectAdds("upsample", counts: [2 * 9]) { g in
            upsampleBilinear2xBackward(inputGrad: g[0], outputGrad: normals(2 * 36, seed: 12), planes: 2, height: 3, width: 3)
        }
        expectAdds("maxpool", counts: [16]) { g in
            var argmax = [UInt8](repeating: 0, count: 4), out = [Float](repeating: 0, count: 4)
            maxPool2x2Forward(output: &out, argmax: &argmax, input: normals(16, seed: 13), planes: 1, height: 4, width: 4)
            maxPool2x2Backward(inputGrad: g[0], outputGrad: [1, 2, 3, 4], argmax: argmax, planes: 1, height: 4, width: 4)
        }
        expectAdds("per-channel add", counts: [2 * 3]) { g in
            addPerChannelBackward(addGrad: g[0], xGrad: normals(3 * 2 * 4, seed: 14), channels: 3, batch: 2, plane: 4)
        }
    }

    @Test func layoutConversionsAreInversePermutations() {
        // NCHW [2, 3, 2] → CNHW: dst[c, n, :] = src[n, c, :].
        let nchw = (0..<12).map(Float.init)
        let cnhw = toCNHW(nchw, batch: 2, channels: 3, plane: 2)
        #expect(cnhw == [0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11])
        #expect(toNCHW(cnhw, batch: 2, channels: 3, plane: 2) == nchw)
    }
}
