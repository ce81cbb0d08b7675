import Foundation
import Testing
import TestSupport
import Tensor
@testable import Models

/// The classifier of `disttrain classifier`: its forward against an independent Double implementation,
/// its gradient (through the training objective) against central differences of that implementation,
/// the training step with `ClassificationLoss`, and the evaluator's `FeatureNetwork`.
@Suite struct ClassifierTests {
    /// Two channels, two stages (two convolutions, then one), four classes: every kind of layer and join.
    static let tiny = ClassifierConfiguration(inChannels: 2, height: 8, width: 8, classes: 4, stages: [[3, 4], [5]], hidden: 6)

    struct Setup {
        let model: CNNClassifier
        let loss: ClassificationLoss
        let x: [Float], labels: [Int32]
        let value: Float
        let gradient: [Float]
    }

    /// One train-mode forward, loss and backward of the tiny classifier on 3 images.
    static func setup(seed: UInt64 = 3) -> Setup {
        let model = CNNClassifier(tiny, batchCapacity: 3)
        model.initialize(seed: seed)
        let loss = ClassificationLoss(model: model, batch: 3)
        let x = normals(3 * model.sampleCount, seed: seed &+ 1), labels: [Int32] = [2, 0, 3]
        for n in 0..<3 { loss.labels[n] = labels[n] }
        model.gradients.buffer.update(repeating: .nan)
        model.zeroGradients()
        let value = loss.forwardBackward(images: x)
        return Setup(model: model, loss: loss, x: x, labels: labels, value: value, gradient: model.gradients.toArray())
    }

    @Test func forwardEqualsIndependentDoubleReference() {
        let s = Self.setup()
        let reference = ReferenceClassifier(model: s.model, input: s.x, labels: s.labels, batch: 3)
        let (logits, loss) = reference.forward(s.model.parameters.toArray().map(Double.init))
        var worst = 0.0
        for i in logits.indices { worst = max(worst, abs(Double(s.loss.logits[i]) - logits[i]) / (abs(logits[i]) + 1e-2)) }
        report("classifier logits vs Double reference: max rel error (floor 1e-2) \(worst)")
        #expect(worst < 1e-4, "logits differ from the reference by \(worst)")
        #expect(abs(Double(s.value) - loss) < 1e-5 * loss, "loss \(s.value) vs \(loss)")
    }

    /// The largest and one random entry of every tensor, against differences of the Double reference
    /// (h = 1e-6, retried at 1e-7 where a ReLU or max-pool kink lies within the step).
    @Test func gradientMatchesFiniteDifferencesInEveryTensor() {
        let s = Self.setup()
        let g = s.gradient
        #expect(g.allSatisfy { $0.isFinite }, "backward must reach every gradient")
        let reference = ReferenceClassifier(model: s.model, input: s.x, labels: s.labels, batch: 3)
        var p = s.model.parameters.toArray().map(Double.init)
        func difference(_ i: Int, _ h: Double) -> Double {
            let old = p[i]
            p[i] = old + h; let lp = reference.forward(p).loss
            p[i] = old - h; let lm = reference.forward(p).loss
            p[i] = old
            return (lp - lm) / (2 * h)
        }
        var rng = SplitMix64(seed: 7)
        var checked = 0, worst = 0.0, worstName = ""
        for e in s.model.parameterTable.entries {
            let slice = g[e.offset..<e.offset + e.count]
            let rms = (slice.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(e.count)).squareRoot()
            // why: a convolution straight before a BatchNorm has a bias whose true gradient is 0 (the batch
            // mean absorbs it); its entries must be rounding-small next to its weight's gradient.
            if e.name.hasPrefix("stage") && e.name.hasSuffix(".bias") && e.name.contains(".conv") {
                let weight = s.model.parameterTable.entry(named: e.name.replacingOccurrences(of: ".bias", with: ".weight"))!
                let scale = g[weight.offset..<weight.offset + weight.count].map { Double(abs($0)) }.max()!
                #expect(slice.allSatisfy { Double(abs($0)) < 1e-4 * scale }, "\(e.name) should vanish")
                continue
            }
            let picks = largestAndOneRandom(slice, rng: &rng)
            for i in picks {
                let an = Double(g[i]), floor = 1e-2 * rms
                var err = abs(difference(i, 1e-6) - an) / (abs(an) + floor)
                if err >= 1e-3 { err = abs(difference(i, 1e-7) - an) / (abs(an) + floor) }
                checked += 1
                if err > worst { worst = err; worstName = e.name }
                #expect(err < 1e-3, "\(e.name)[\(i - e.offset)]: analytic \(an), relative error \(err)")
            }
        }
        report("classifier FD (Double reference): \(checked) coordinates, max error \(worst) in \(worstName)")
        #expect(checked >= 2 * 8)
    }

    /// The gradient rule (Layer.swift): a second backward without zeroing adds the same gradients again.
    @Test func backwardAddsIntoTheGradients() {
        let s = Self.setup()
        _ = s.loss.forwardBackward(images: s.x)
        let twice = s.model.gradients.toArray()
        #expect(maxAbsoluteError(twice, s.gradient.map { 2 * $0 }) <= 1e-6 * (s.gradient.map(abs).max() ?? 1))
    }

    /// The one training step of every command, with the classification objective: it learns to tell
    /// apart images bright in their top half from images bright in their bottom half.
    @Test func theTrainingStepWithTheClassificationObjectiveLearns() {
        let configuration = ClassifierConfiguration(inChannels: 1, height: 8, width: 8, classes: 2, stages: [[4], [4]], hidden: 8)
        let model = CNNClassifier(configuration, batchCapacity: 8)
        model.initialize(seed: 1)
        let step = OptimizerStep(objective: ClassificationLoss(model: model, batch: 8), ranks: SingleRank())
        let noise = normals(64 * 64, seed: 9, scale: 0.3)
        func load(_ k: Int) {
            for n in 0..<8 {
                let label = Int32((k + n) % 2), image = (k * 8 + n) % 64
                for i in 0..<64 { step.images[n * 64 + i] = (i < 32) == (label == 0) ? 0.8 : -0.8 + noise[image * 64 + i] }
                step.labels[n] = label
            }
        }
        var losses: [Double] = []
        for k in 0..<40 { losses.append(step.run(learningRate: 1e-2, loadBatch: { _ in load(k) }).loss) }
        #expect(losses.allSatisfy(\.isFinite) && step.optimizer.step == 40)
        #expect(losses.suffix(5).reduce(0, +) / 5 < 0.1, "loss did not fall: \(losses.prefix(3)) … \(losses.suffix(3))")
        #expect(step.model === model && step.loss.correct == 8)
    }

    /// `evaluate` in batches of the capacity gives what one eval-mode forward over all images gives, and
    /// probabilities that are the softmax of the logits.
    @Test func featureNetworkEvaluatesAnyCountInBatchesInEvalMode() {
        let trained = Self.setup().model
        // Running statistics other than the initial ones, so that eval mode is visible.
        for i in 0..<trained.buffers.count { trained.buffers[i] = 0.5 + Float(i % 5) * 0.1 }
        let whole = CNNClassifier(Self.tiny, batchCapacity: 7), network = FeatureNetwork(classifier: CNNClassifier(Self.tiny, batchCapacity: 3))
        for m in [whole, network.classifier] { m.parameters.copy(from: trained.parameters); m.buffers.copy(from: trained.buffers) }
        #expect(network.featureDimension == 6 && network.classes == 4 && network.inputShape == [2, 8, 8] && network.featureLayer == "fc1")
        let x = normals(7 * 128, seed: 5)
        var features = [Float](repeating: .nan, count: 7 * 6), probabilities = [Float](repeating: .nan, count: 7 * 4)
        network.evaluate(images: x, count: 7, features: &features, probabilities: &probabilities)
        whole.training = false
        var logits = [Float](repeating: .nan, count: 7 * 4)
        whole.forward(input: x, logits: &logits, batch: 7)
        let expectedFeatures = Array(UnsafeBufferPointer(start: whole.features, count: 7 * 6))
        #expect(maxAbsoluteError(features, expectedFeatures) < 1e-5)
        for n in 0..<7 {
            let z = logits[(n * 4)..<(n * 4 + 4)].map(Double.init), sum = z.map { exp($0) }.reduce(0, +)
            for k in 0..<4 { #expect(abs(Double(probabilities[n * 4 + k]) - exp(z[k]) / sum) < 1e-6) }
        }
        #expect(features.contains { $0 > 0 } && features.allSatisfy { $0 >= 0 }, "features follow fc1's ReLU")
        // Eval mode: the same image gives the same features whatever else is in the batch.
        var alone = [Float](repeating: .nan, count: 6), aloneP = [Float](repeating: .nan, count: 4)
        network.evaluate(images: Array(x[(5 * 128)..<(6 * 128)]), count: 1, features: &alone, probabilities: &aloneP)
        #expect(maxAbsoluteError(alone, Array(features[30..<36])) < 1e-5)
    }

    @Test func configurationsNameWhatIsWrong() {
        #expect(ClassifierConfiguration.parseStages("32,32/64,64/128") == [[32, 32], [64, 64], [128]])
        #expect(ClassifierConfiguration.stagesText([[32, 32], [64, 64], [128]]) == "32,32/64,64/128")
        for bad in ["", "32,/64", "32//64", "a", "0", "-3"] { #expect(ClassifierConfiguration.parseStages(bad) == nil, "\(bad)") }
        var c = ClassifierConfiguration(inChannels: 1, height: 28, width: 28, classes: 10)
        #expect(c.problem == "images of 28×28 cannot pass 3 poolings of 2 in the classifier: height and width must be divisible by 8 (prepare with --pad)")
        c.height = 32; c.width = 32
        #expect(c.problem == nil)
        c.classes = 1
        #expect(c.problem?.contains("at least 2 classes") == true)
        let model = CNNClassifier(.init(inChannels: 1, height: 32, width: 32, classes: 10), batchCapacity: 1)
        #expect(model.parameterTable.entries.map(\.name).prefix(4) == ["stage1.conv1.weight", "stage1.conv1.bias", "stage1.bn1.weight", "stage1.bn1.bias"])
        #expect(model.parameterTable.entry(named: "stage3.conv2.weight")?.shape == [128, 128, 3, 3])
        #expect(model.parameterTable.entry(named: "fc2.weight")?.shape == [10, 128])
        #expect(model.parameterTable.totalCount == 295_818)
    }
}

/// The classifier in Double, NCHW throughout, from its description (CNNClassifier.swift): 3×3 convolutions
/// (padding 1), train-mode BatchNorm (batch statistics, biased variance, eps 1e-5) with ReLU, 2×2 max-pool
/// after each stage, global average pooling, fc1 + ReLU, fc2, mean softmax cross-entropy. It shares
/// nothing with the Swift kernels but the parameter table (names and offsets).
struct ReferenceClassifier {
    let configuration: ClassifierConfiguration
    let table: ParameterTable
    let batch: Int
    let input: [Double]
    let labels: [Int32]

    init(model: CNNClassifier, input: [Float], labels: [Int32], batch: Int) {
        configuration = model.configuration; table = model.parameterTable; self.batch = batch
        self.input = input.map(Double.init); self.labels = labels
    }

    func forward(_ p: [Double]) -> (logits: [Double], loss: Double) {
        let c = configuration
        func param(_ name: String) -> ArraySlice<Double> {
            let e = table.entry(named: name)!
            return p[e.offset..<e.offset + e.count]
        }
        var x = input, channels = c.inChannels, h = c.height, w = c.width
        for (s, widths) in c.stages.enumerated() {
            for (j, out) in widths.enumerated() {
                let wt = Array(param("stage\(s + 1).conv\(j + 1).weight")), b = Array(param("stage\(s + 1).conv\(j + 1).bias"))
                var y = [Double](repeating: 0, count: batch * out * h * w)
                for n in 0..<batch {
                    for co in 0..<out {
                        for oy in 0..<h {
                            for ox in 0..<w {
                                var sum = b[co]
                                for ci in 0..<channels {
                                    for ky in 0..<3 {
                                        for kx in 0..<3 {
                                            let iy = oy + ky - 1, ix = ox + kx - 1
                                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                            sum += wt[((co * channels + ci) * 3 + ky) * 3 + kx] * x[((n * channels + ci) * h + iy) * w + ix]
                                        }
                                    }
                                }
                                y[((n * out + co) * h + oy) * w + ox] = sum
                            }
                        }
                    }
                }
                let gamma = Array(param("stage\(s + 1).bn\(j + 1).weight")), beta = Array(param("stage\(s + 1).bn\(j + 1).bias"))
                let plane = h * w, m = Double(batch * plane)
                for co in 0..<out {
                    var mean = 0.0, variance = 0.0
                    for n in 0..<batch { for i in 0..<plane { mean += y[(n * out + co) * plane + i] } }
                    mean /= m
                    for n in 0..<batch { for i in 0..<plane { let d = y[(n * out + co) * plane + i] - mean; variance += d * d } }
                    let invStd = 1 / (variance / m + 1e-5).squareRoot()
                    for n in 0..<batch {
                        for i in 0..<plane {
                            let k = (n * out + co) * plane + i
                            y[k] = max(0, gamma[co] * (y[k] - mean) * invStd + beta[co])
                        }
                    }
                }
                x = y; channels = out
            }
            var pooled = [Double](repeating: 0, count: batch * channels * (h / 2) * (w / 2))
            for q in 0..<batch * channels {
                for oy in 0..<h / 2 {
                    for ox in 0..<w / 2 {
                        let at = q * h * w + 2 * oy * w + 2 * ox
                        pooled[(q * (h / 2) + oy) * (w / 2) + ox] = max(max(x[at], x[at + 1]), max(x[at + w], x[at + w + 1]))
                    }
                }
            }
            x = pooled; h /= 2; w /= 2
        }
        let averaged = (0..<batch * channels).map { q in x[(q * h * w)..<((q + 1) * h * w)].reduce(0, +) / Double(h * w) }
        func linear(_ v: [Double], _ name: String, inF: Int, outF: Int) -> [Double] {
            let wt = Array(param("\(name).weight")), b = Array(param("\(name).bias"))
            return (0..<batch * outF).map { k in
                let (n, o) = (k / outF, k % outF)
                return (0..<inF).reduce(b[o]) { $0 + wt[o * inF + $1] * v[n * inF + $1] }
            }
        }
        let hidden = linear(averaged, "fc1", inF: channels, outF: c.hidden).map { max($0, 0) }
        let logits = linear(hidden, "fc2", inF: c.hidden, outF: c.classes)
        var loss = 0.0
        for n in 0..<batch {
            let z = logits[(n * c.classes)..<((n + 1) * c.classes)]
            loss += log(z.map { exp($0) }.reduce(0, +)) - z[n * c.classes + Int(labels[n])]
        }
        return (logits, loss / Double(batch))
    }
}
