import Foundation
import Testing
import TestSupport
import Tensor

/// Every backward kernel against central differences of its own forward kernel.
/// Loss L = Σ y·r for a fixed random r (so dL/dy = r is the output gradient handed to backward),
/// accumulated in Double; every coordinate of every input and parameter is checked, with error
/// |fd − analytic| / (|analytic| + 1% of the gradient's RMS).
///
/// Step sizes: convolution, linear, eval BatchNorm, upsampling and the per-channel add are affine in
/// each input, and the MSE is quadratic, so central differences are exact for any step; a large one
/// (h = 0.5) keeps the Float rounding of the outputs, divided by 2h, negligible. ReLU and max-pool are
/// affine between kinks: their inputs are kept further from a kink (0, a tie) than the step.
/// Train-mode BatchNorm is genuinely nonlinear: h = 0.03 balances truncation (∝ h²) against rounding
/// noise (∝ 1/h); measured at h = 0.03, the worst coordinate is 1e-3 off by the measure above.
@Suite struct FiniteDifferenceTests {
    /// For the exact (affine or quadratic) cases: far below what a dropped term or a swapped index gives
    /// (O(1)); above sgemm's Float rounding, which varies with the CPU's OpenBLAS kernel (1.1e-4 for
    /// conv3x3's input on an AVX-512 EPYC).
    static let tolerance = 3e-4
    /// For train-mode BatchNorm, whose differences carry truncation and rounding error (see above).
    static let nonlinearTolerance = 5e-3

    func expectGradient(_ what: String, _ check: GradientCheck, tolerance: Double = tolerance,
                        sourceLocation: SourceLocation = #_sourceLocation) {
        report("fd \(what): \(check.description)")
        #expect(check.checked > 0)
        #expect(check.maxError < tolerance, "\(what): \(check.description)", sourceLocation: sourceLocation)
    }

    // MARK: convolution

    func checkConv(kernel: Int, batch n: Int, inChannels cin: Int, outChannels cout: Int, height h: Int, width w: Int) {
        let s = ConvShape(batch: n, inChannels: cin, outChannels: cout, height: h, width: w, kernel: kernel)
        let x = normals(cin * n * h * w, seed: 11), weight = normals(cout * cin * kernel * kernel, seed: 12, scale: 0.5)
        let bias = normals(cout, seed: 13), r = normals(cout * n * h * w, seed: 14)
        func forward(_ x: [Float], _ weight: [Float], _ bias: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count), columns = [Float](repeating: .nan, count: max(1, s.columnsCount))
            conv2dForward(output: &y, input: x, weight: weight, bias: bias, columns: &columns, shape: s)
            return y
        }
        var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: weight.count)
        var gb = [Float](repeating: 0, count: cout), columns = [Float](repeating: .nan, count: max(1, s.columnsCount))
        conv2dBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: r, input: x, weight: weight,
                       columns: &columns, shape: s)
        let name = "conv\(kernel)x\(kernel)"
        expectGradient("\(name) input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0, weight, bias), r) })
        expectGradient("\(name) weight", finiteDifferenceCheck(point: weight, analytic: gw, h: 0.5) { dot(forward(x, $0, bias), r) })
        expectGradient("\(name) bias", finiteDifferenceCheck(point: bias, analytic: gb, h: 0.5) { dot(forward(x, weight, $0), r) })
    }

    @Test func conv3x3GradientsMatchFiniteDifferences() {
        checkConv(kernel: 3, batch: 2, inChannels: 3, outChannels: 4, height: 5, width: 6)
    }

    @Test func conv1x1GradientsMatchFiniteDifferences() {
        checkConv(kernel: 1, batch: 2, inChannels: 5, outChannels: 3, height: 4, width: 3)
    }

    // MARK: linear

    @Test func linearGradientsMatchFiniteDifferences() {
        let (n, inF, outF) = (3, 7, 5)
        let x = normals(n * inF, seed: 21), weight = normals(outF * inF, seed: 22, scale: 0.5)
        let bias = normals(outF, seed: 23), r = normals(n * outF, seed: 24)
        func forward(_ x: [Float], _ weight: [Float], _ bias: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count)
            linearForward(output: &y, input: x, weight: weight, bias: bias, batch: n, inFeatures: inF, outFeatures: outF)
            return y
        }
        var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: weight.count)
        var gb = [Float](repeating: 0, count: outF)
        linearBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: r, input: x, weight: weight,
                       batch: n, inFeatures: inF, outFeatures: outF)
        expectGradient("linear input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0, weight, bias), r) })
        expectGradient("linear weight", finiteDifferenceCheck(point: weight, analytic: gw, h: 0.5) { dot(forward(x, $0, bias), r) })
        expectGradient("linear bias", finiteDifferenceCheck(point: bias, analytic: gb, h: 0.5) { dot(forward(x, weight, $0), r) })
    }

    // MARK: batch norm

    /// Train-mode BatchNorm over CNHW [3, 2, 2, 3] (12 values per channel) with a fused activation,
    /// affine or not (BatchNorm2d(affine=False): γ = 1, β = 0 and no parameters).
    func checkBatchNormTrain(activation: Activation, affine: Bool = true) {
        let (c, m, h) = (3, 2 * 2 * 3, Float(0.03))
        let s = BatchNormShape(channels: c, valuesPerChannel: m)
        let weight: [Float] = affine ? [1.2, -0.7, 0.9] : [1, 1, 1], bias: [Float] = affine ? [0.1, -0.2, 0.3] : [0, 0, 0]
        func forward(_ x: [Float], _ weight: [Float], _ bias: [Float], activation: Activation,
                     saved: UnsafeMutablePointer<Float>? = nil) -> [Float] {
            var y = [Float](repeating: .nan, count: x.count)
            var rm = [Float](repeating: 0, count: c), rv = [Float](repeating: 1, count: c)
            var sm = [Float](repeating: .nan, count: c), si = [Float](repeating: .nan, count: c)
            if affine {
                batchNormTrainForward(output: &y, input: x, weight: weight, bias: bias, runningMean: &rm, runningVar: &rv,
                                      savedMean: &sm, savedInvStd: &si, shape: s, activation: activation)
            } else {
                batchNormTrainForward(output: &y, input: x, weight: nil, bias: nil, runningMean: &rm, runningVar: &rv,
                                      savedMean: &sm, savedInvStd: &si, shape: s, activation: activation)
            }
            if let saved { for i in 0..<c { saved[i] = sm[i]; saved[c + i] = si[i] } }
            return y
        }
        // With the ReLU, take the first input whose pre-activations all stay 0.1 away from 0: a step of
        // 0.03 moves a pre-activation by at most |γ|·invStd·h ≈ 0.03 (input), h·|x̂| ≤ 0.08 (weight), h (bias).
        var seed: UInt64 = 31, x: [Float] = []
        repeat {
            x = normals(c * m, seed: seed, scale: 1.5, shift: 0.3)
            seed += 1
        } while activation == .relu && forward(x, weight, bias, activation: .identity).contains { abs($0) < 0.1 }
        let r = normals(c * m, seed: 7)
        var saved = [Float](repeating: .nan, count: 2 * c)
        let y = forward(x, weight, bias, activation: activation, saved: &saved)
        if activation == .relu { #expect(y.contains(0) && y.contains { $0 > 0 }, "the ReLU must clamp some values and pass others") }
        var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: c), gb = [Float](repeating: 0, count: c)
        if affine {
            batchNormTrainBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: r, input: x, weight: weight, bias: bias,
                                   savedMean: Array(saved[0..<c]), savedInvStd: Array(saved[c...]), shape: s, activation: activation)
        } else {
            batchNormTrainBackward(inputGrad: &gx, weightGrad: nil, biasGrad: nil, outputGrad: r, input: x, weight: nil, bias: nil,
                                   savedMean: Array(saved[0..<c]), savedInvStd: Array(saved[c...]), shape: s, activation: activation)
        }
        let name = "batchnorm train+\(activation)\(affine ? "" : " (no affine)")"
        let tol = Self.nonlinearTolerance
        expectGradient("\(name) input", finiteDifferenceCheck(point: x, analytic: gx, h: h) { dot(forward($0, weight, bias, activation: activation), r) }, tolerance: tol)
        guard affine else { return }
        expectGradient("\(name) weight", finiteDifferenceCheck(point: weight, analytic: gw, h: h) { dot(forward(x, $0, bias, activation: activation), r) }, tolerance: tol)
        expectGradient("\(name) bias", finiteDifferenceCheck(point: bias, analytic: gb, h: h) { dot(forward(x, weight, $0, activation: activation), r) }, tolerance: tol)
    }

    @Test func batchNormTrainGradientsMatchFiniteDifferences() { checkBatchNormTrain(activation: .identity) }

    @Test func batchNormTrainWithFusedReluGradientsMatchFiniteDifferences() { checkBatchNormTrain(activation: .relu) }

    @Test(arguments: [Activation.gelu, .silu])
    func batchNormTrainWithFusedSmoothActivationGradientsMatchFiniteDifferences(_ activation: Activation) {
        checkBatchNormTrain(activation: activation)
    }

    @Test func batchNormWithoutAffineGradientsMatchFiniteDifferences() { checkBatchNormTrain(activation: .identity, affine: false) }

    @Test func batchNormEvalGradientsMatchFiniteDifferences() {
        let (c, m) = (3, 2 * 4 * 3)
        let s = BatchNormShape(channels: c, valuesPerChannel: m)
        let mean: [Float] = [0.2, -0.1, 0.5], variance: [Float] = [0.5, 2, 1.3]
        let x = normals(c * m, seed: 41), weight: [Float] = [1.1, -0.6, 0.8], bias: [Float] = [0.2, 0, -0.3]
        let r = normals(c * m, seed: 42)
        func forward(_ x: [Float], _ weight: [Float], _ bias: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: x.count)
            batchNormEvalForward(output: &y, input: x, weight: weight, bias: bias, runningMean: mean, runningVar: variance,
                                 shape: s, activation: .identity)
            return y
        }
        var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: c), gb = [Float](repeating: 0, count: c)
        batchNormEvalBackward(inputGrad: &gx, weightGrad: &gw, biasGrad: &gb, outputGrad: r, input: x, weight: weight, bias: bias,
                              runningMean: mean, runningVar: variance, shape: s, activation: .identity)
        expectGradient("batchnorm eval input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0, weight, bias), r) })
        expectGradient("batchnorm eval weight", finiteDifferenceCheck(point: weight, analytic: gw, h: 0.5) { dot(forward(x, $0, bias), r) })
        expectGradient("batchnorm eval bias", finiteDifferenceCheck(point: bias, analytic: gb, h: 0.5) { dot(forward(x, weight, $0), r) })
    }

    // MARK: element-wise and resampling

    @Test func reluGradientMatchesFiniteDifferences() {
        // |x| ≥ 0.1, twice the step, so no perturbation crosses 0.
        let x = normals(48, seed: 51).map { $0 < 0 ? $0 - 0.1 : $0 + 0.1 }, r = normals(48, seed: 52)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: x.count)
            reluForward(output: &y, input: x, count: x.count)
            return y
        }
        var gx = [Float](repeating: 0, count: x.count)
        reluBackward(inputGrad: &gx, outputGrad: r, output: forward(x), count: x.count)
        #expect(gx.contains(0) && gx.contains { $0 != 0 })
        expectGradient("relu input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.05) { dot(forward($0), r) })
    }

    @Test func maxPoolGradientMatchesFiniteDifferences() {
        // Values 0.05·(a permutation of 0..<72): every window's maximum leads the runner-up by ≥ 0.05 > 2h.
        let (planes, h, w) = (3, 4, 6)
        var g = SplitMix64(seed: 61)
        let x = Array(0..<(planes * h * w)).shuffled(using: &g).map { Float($0) * 0.05 }
        let r = normals(planes * (h / 2) * (w / 2), seed: 62)
        func forward(_ x: [Float], argmax: inout [UInt8]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count)
            maxPool2x2Forward(output: &y, argmax: &argmax, input: x, planes: planes, height: h, width: w)
            return y
        }
        var argmax = [UInt8](repeating: 9, count: r.count)
        _ = forward(x, argmax: &argmax)
        #expect(Set(argmax) == [0, 1, 2, 3], "every window position should win somewhere")
        var gx = [Float](repeating: 0, count: x.count)
        maxPool2x2Backward(inputGrad: &gx, outputGrad: r, argmax: argmax, planes: planes, height: h, width: w)
        expectGradient("maxpool input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.02) { p in
            var scratch = [UInt8](repeating: 0, count: r.count)
            return dot(forward(p, argmax: &scratch), r)
        })
    }

    @Test(arguments: [(3, 4), (2, 5), (1, 3)])
    func upsampleBilinearGradientMatchesFiniteDifferences(height: Int, width: Int) {
        let planes = 3
        let x = normals(planes * height * width, seed: 71), r = normals(planes * 4 * height * width, seed: 72)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count)
            upsampleBilinear2xForward(output: &y, input: x, planes: planes, height: height, width: width)
            return y
        }
        var gx = [Float](repeating: 0, count: x.count)
        upsampleBilinear2xBackward(inputGrad: &gx, outputGrad: r, planes: planes, height: height, width: width)
        expectGradient("upsample \(height)x\(width) input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0), r) })
    }

    @Test func addPerChannelGradientsMatchFiniteDifferences() {
        let (c, n, plane) = (3, 2, 5)
        let x = normals(c * n * plane, seed: 81), add = normals(n * c, seed: 82), r = normals(c * n * plane, seed: 83)
        func forward(_ x: [Float], _ add: [Float]) -> [Float] {
            var y = x
            addPerChannel(&y, add, channels: c, batch: n, plane: plane)
            return y
        }
        var gAdd = [Float](repeating: 0, count: add.count)
        addPerChannelBackward(addGrad: &gAdd, xGrad: r, channels: c, batch: n, plane: plane)
        expectGradient("addPerChannel add", finiteDifferenceCheck(point: add, analytic: gAdd, h: 0.5) { dot(forward(x, $0), r) })
        // The tensor itself passes its gradient through unchanged.
        expectGradient("addPerChannel x", finiteDifferenceCheck(point: x, analytic: r, h: 0.5) { dot(forward($0, add), r) })
    }

    @Test func mseGradientMatchesFiniteDifferences() {
        let pred = normals(26, seed: 91), target = normals(26, seed: 92)
        var grad = [Float](repeating: .nan, count: pred.count)
        _ = mseLoss(predictionGrad: &grad, prediction: pred, target: target, count: pred.count)
        // The loss is quadratic, so central differences are exact up to rounding.
        expectGradient("mse prediction", finiteDifferenceCheck(point: pred, analytic: grad, h: 0.5) {
            Double(mseLoss(predictionGrad: nil, prediction: $0, target: target, count: $0.count))
        })
    }

    // MARK: classification

    /// The cross-entropy is smooth but not quadratic: h = 0.05 keeps truncation (∝ h²) and the Float
    /// rounding of the returned loss (≈ 2e-7 / 2h) both far below the tolerance.
    @Test func softmaxCrossEntropyGradientMatchesFiniteDifferences() {
        let (n, k) = (4, 5)
        let logits = normals(n * k, seed: 101, scale: 2), labels: [Int32] = [0, 3, 4, 3]
        var grad = [Float](repeating: .nan, count: logits.count)
        let loss = softmaxCrossEntropyLoss(logitsGrad: &grad, logits: logits, labels: labels, batch: n, classes: k)
        // The value by hand: mean over rows of log Σ exp(z) − z[label].
        var expected = 0.0
        for row in 0..<n {
            let z = logits[(row * k)..<((row + 1) * k)].map(Double.init)
            expected += log(z.map { exp($0) }.reduce(0, +)) - z[Int(labels[row])]
        }
        #expect(abs(Double(loss) - expected / Double(n)) < 1e-6 * expected, "loss \(loss) vs \(expected / Double(n))")
        expectGradient("cross-entropy logits", finiteDifferenceCheck(point: logits, analytic: grad, h: 0.05) {
            Double(softmaxCrossEntropyLoss(logitsGrad: nil, logits: $0, labels: labels, batch: n, classes: k))
        }, tolerance: Self.nonlinearTolerance)
    }

    @Test func softmaxCrossEntropyIsFiniteForHugeLogitsAndItsGradientRowsSumToZero() {
        let logits: [Float] = [1000, -1000, 999, 0, 88, 89], labels: [Int32] = [1, 0]
        var grad = [Float](repeating: .nan, count: logits.count), probabilities = grad
        let loss = softmaxCrossEntropyLoss(logitsGrad: &grad, logits: logits, labels: labels, batch: 2, classes: 3)
        #expect(loss.isFinite && abs(loss - (2000 + log(1 + exp(-1)) + 89 + log(1 + exp(-1) + exp(-89))) / 2) < 1e-3)
        softmaxForward(probabilities: &probabilities, logits: logits, batch: 2, classes: 3)
        for row in 0..<2 {
            #expect(abs(grad[(row * 3)..<(row * 3 + 3)].reduce(0, +)) < 1e-7)
            #expect(abs(probabilities[(row * 3)..<(row * 3 + 3)].reduce(0, +) - 1) < 1e-6)
        }
        // The gradient is (softmax − one-hot) / N.
        #expect(maxAbsoluteError(grad, zip(probabilities, [0, 1, 0, 1, 0, 0] as [Float]).map { ($0 - $1) / 2 }) < 1e-7)
    }

    @Test func globalAveragePoolGradientMatchesFiniteDifferences() {
        let (c, n, plane) = (3, 2, 6)
        let x = normals(c * n * plane, seed: 111), r = normals(n * c, seed: 112)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count)
            globalAveragePoolForward(output: &y, input: x, channels: c, batch: n, plane: plane)
            return y
        }
        // Image 1, channel 2: the mean of its plane, [N, C] row-major from CNHW.
        #expect(abs(forward(x)[1 * c + 2] - x[((2 * n + 1) * plane)..<((2 * n + 2) * plane)].reduce(0, +) / Float(plane)) < 1e-6)
        var gx = [Float](repeating: 0, count: x.count)
        globalAveragePoolBackward(inputGrad: &gx, outputGrad: r, channels: c, batch: n, plane: plane)
        expectGradient("global average pool input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0), r) })
    }

    @Test(arguments: [(6, 6, 3), (7, 5, 2), (28, 28, 7)])
    func avgPoolGradientMatchesFiniteDifferences(height: Int, width: Int, kernel: Int) {
        let planes = 3, oh = height / kernel, ow = width / kernel
        let x = normals(planes * height * width, seed: 113), r = normals(planes * oh * ow, seed: 114)
        func forward(_ x: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: r.count)
            avgPool2dForward(output: &y, input: x, planes: planes, height: height, width: width, kernel: kernel)
            return y
        }
        // Plane 2's last window, by hand.
        var window: Float = 0
        for a in 0..<kernel { for b in 0..<kernel { window += x[2 * height * width + ((oh - 1) * kernel + a) * width + (ow - 1) * kernel + b] } }
        #expect(abs(forward(x)[2 * oh * ow + oh * ow - 1] - window / Float(kernel * kernel)) < 1e-5)
        var gx = [Float](repeating: 0, count: x.count)
        avgPool2dBackward(inputGrad: &gx, outputGrad: r, planes: planes, height: height, width: width, kernel: kernel)
        // Rows and columns past the last whole window (7×5 by 2) get no gradient.
        if height % kernel != 0 { #expect(gx[(height - 1) * width] == 0) }
        expectGradient("avg pool \(height)×\(width) k\(kernel) input", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0), r) })
    }

    @Test func channelModulationGradientsMatchFiniteDifferences() {
        // ContextUnet's ce·u + te: bilinear in (scale, x), so central differences are exact for any step.
        let (c, n, plane) = (3, 2, 5)
        let x = normals(c * n * plane, seed: 91), scale = normals(n * c, seed: 92), shift = normals(n * c, seed: 93)
        let r = normals(c * n * plane, seed: 94)
        func forward(_ x: [Float], _ scale: [Float], _ shift: [Float]) -> [Float] {
            var y = [Float](repeating: .nan, count: x.count)
            modulateChannelsForward(output: &y, input: x, scale: scale, shift: shift, channels: c, batch: n, plane: plane)
            return y
        }
        // Channel 2 of image 1, position 3, by hand: [N, C] row-major scale and shift, CNHW x.
        let at = (2 * n + 1) * plane + 3
        #expect(abs(forward(x, scale, shift)[at] - (scale[1 * c + 2] * x[at] + shift[1 * c + 2])) < 1e-6)
        var gx = [Float](repeating: 0, count: x.count), gScale = [Float](repeating: 0, count: scale.count), gShift = gScale
        modulateChannelsBackward(inputGrad: &gx, scaleGrad: &gScale, shiftGrad: &gShift, outputGrad: r, input: x, scale: scale,
                                 channels: c, batch: n, plane: plane)
        expectGradient("modulation x", finiteDifferenceCheck(point: x, analytic: gx, h: 0.5) { dot(forward($0, scale, shift), r) })
        expectGradient("modulation scale", finiteDifferenceCheck(point: scale, analytic: gScale, h: 0.5) { dot(forward(x, $0, shift), r) })
        expectGradient("modulation shift", finiteDifferenceCheck(point: shift, analytic: gShift, h: 0.5) { dot(forward(x, scale, $0), r) })
    }
}
