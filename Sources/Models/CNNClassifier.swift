import Tensor

/// The shape of a `CNNClassifier`: stages of 3×3 convolutions (padding 1, each followed by BatchNorm and
/// ReLU) with a 2×2 max-pool after each stage, then global average pooling, `fc1` (hidden units, ReLU;
/// its output is the feature vector) and `fc2` (one logit per class).
public struct ClassifierConfiguration: Sendable, Equatable {
    public var inChannels, height, width, classes: Int
    /// Output channels of each convolution, by stage: [[32], [64, 64], [128, 128]] is
    /// conv 32 → pool → conv 64 → conv 64 → pool → conv 128 → conv 128 → pool.
    public var stages: [[Int]]
    public var hidden: Int

    public static let architectureName = "cnn-classifier"
    /// why this shape: on Fashion-MNIST 32×32 it beat [[32, 32], [64, 64], [128]] (92.8 against 92.4 % held
    /// out after 3 epochs) at the same multiply-accumulates: a second 3×3 at 8×8 helps more than one at 32×32.
    public static let defaultStages = [[32], [64, 64], [128, 128]]
    public static let defaultHidden = 128

    public init(inChannels: Int, height: Int, width: Int, classes: Int, stages: [[Int]] = defaultStages, hidden: Int = defaultHidden) {
        self.inChannels = inChannels; self.height = height; self.width = width; self.classes = classes
        self.stages = stages; self.hidden = hidden
    }

    /// The layer whose output `FeatureNetwork` reports: the hidden layer, after its ReLU.
    public var featureLayer: String { "fc1" }
    public var featureDimension: Int { hidden }
    public var inputShape: [Int] { [inChannels, height, width] }

    /// "32/64,64/128,128": stages separated by "/", widths within a stage by ",".
    public static func stagesText(_ stages: [[Int]]) -> String {
        stages.map { $0.map(String.init).joined(separator: ",") }.joined(separator: "/")
    }

    /// The inverse of `stagesText`; nil unless every width is a positive integer and no stage is empty.
    public static func parseStages(_ text: String) -> [[Int]]? {
        let stages = text.split(separator: "/", omittingEmptySubsequences: false).map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        }
        guard !stages.isEmpty, stages.allSatisfy({ !$0.isEmpty && $0.allSatisfy { ($0 ?? 0) > 0 } }) else { return nil }
        return stages.map { $0.compactMap { $0 } }
    }

    /// nil when the network can be built; otherwise what is wrong, in the users' words.
    public var problem: String? {
        guard !stages.isEmpty, stages.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 > 0 } }) else {
            return "the classifier needs at least one stage of convolutions with positive widths"
        }
        guard hidden > 0 else { return "the classifier's hidden layer needs at least one unit" }
        guard classes >= 2 else { return "a classifier needs at least 2 classes, the labels give \(classes)" }
        guard inChannels > 0 else { return "images need at least one channel" }
        let factor = 1 << stages.count
        guard height % factor == 0, width % factor == 0 else {
            return "images of \(height)×\(width) cannot pass \(stages.count) poolings of 2 in the classifier: height and width must be divisible by \(factor) (prepare with --pad)"
        }
        return nil
    }
}

/// A small CNN classifier over images [C, H, W] in [−1, 1] (the datasets' range), built from the
/// project's layers: Conv2d (any convolution algorithm), BatchNorm with its fused ReLU, MaxPool2d(2),
/// global average pooling, Linear. Parameter names: `stage<s>.conv<j>`, `stage<s>.bn<j>` (1-based),
/// `fc1`, `fc2`. Images enter as NCHW and are CNHW inside (Tensor/Layout.swift); features and logits
/// are [N, hidden] and [N, classes]. Every buffer is allocated here, for `batchCapacity` images.
public final class CNNClassifier: TrainableModel {
    public let configuration: ClassifierConfiguration
    public let parameterTable: ParameterTable
    public let bufferTable: ParameterTable
    public let parameters, gradients, buffers: FloatBuffer
    public let batchCapacity: Int
    public let convolutionPlan: [ConvolutionPlanEntry]
    public let workspaceCount: Int
    /// Train mode uses batch statistics in BatchNorm; eval mode the running ones.
    public var training = true
    public var gradientsReady: ((Int) -> Void)?

    /// One convolution, its BatchNorm + ReLU, and their activations [cout, N, H, W].
    private struct Unit {
        let conv: Conv2d, bn: BatchNormLayer
        let convOutput, convOutputGrad, output, outputGrad: FloatBuffer
    }
    private let units: [[Unit]]
    private let inputCNHW: FloatBuffer
    private let pooled, pooledGrad: [FloatBuffer]                   // by stage: [C_s, N, H >> (s+1), W >> (s+1)]
    private let poolArgmax: [UnsafeMutablePointer<UInt8>]
    private let averaged, averagedGrad: FloatBuffer                  // [N, C_last]
    private let fc1, fc2: LinearLayer
    private let hidden, hiddenGrad, hiddenPreActivationGrad: FloatBuffer   // [N, hidden], after the ReLU (in place)
    private let activationGradients: ActivationGradients
    private var lastBatch = 0

    /// Builds the network (`configuration.problem` must be nil) for batches up to `batchCapacity`;
    /// `convolutionAlgorithm` picks each convolution's algorithm from its shape.
    public init(_ c: ClassifierConfiguration, batchCapacity: Int,
                convolutionAlgorithm: @escaping (ConvShape) -> ConvolutionAlgorithmKind = { _ in .im2col }) {
        precondition(c.problem == nil, c.problem ?? "")
        configuration = c; self.batchCapacity = batchCapacity
        let b = ModelBuilder(batchCapacity: batchCapacity), n = batchCapacity
        b.convolutionAlgorithm = convolutionAlgorithm
        var inChannels = c.inChannels
        var built: [[Unit]] = []
        for (s, widths) in c.stages.enumerated() {
            let (h, w) = (c.height >> s, c.width >> s)
            built.append(widths.enumerated().map { j, out in
                let conv = Conv2d(b, "stage\(s + 1).conv\(j + 1)", inChannels: j == 0 ? inChannels : widths[j - 1], outChannels: out,
                                  kernel: 3, height: h, width: w)
                let bn = BatchNormLayer(b, "stage\(s + 1).bn\(j + 1)", channels: out, activation: .relu)
                let count = out * n * h * w
                return Unit(conv: conv, bn: bn, convOutput: b.activation(count), convOutputGrad: b.gradient(count),
                            output: b.activation(count), outputGrad: b.gradient(count))
            })
            inChannels = widths.last!
        }
        units = built
        fc1 = LinearLayer(b, "fc1", inFeatures: inChannels, outFeatures: c.hidden)
        fc2 = LinearLayer(b, "fc2", inFeatures: c.hidden, outFeatures: c.classes)
        parameterTable = b.parameters; bufferTable = b.buffers; convolutionPlan = b.convolutionPlan
        workspaceCount = b.workspace.count
        parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
        buffers = FloatBuffer(count: b.buffers.totalCount)

        inputCNHW = b.activation(c.inChannels * n * c.height * c.width)
        let pooledCounts = c.stages.indices.map { c.stages[$0].last! * n * (c.height >> ($0 + 1)) * (c.width >> ($0 + 1)) }
        pooled = pooledCounts.map { b.activation($0) }
        pooledGrad = pooledCounts.map { b.gradient($0) }
        poolArgmax = pooledCounts.map {
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: $0); p.initialize(repeating: 0, count: $0); return p
        }
        averaged = b.activation(n * inChannels); averagedGrad = b.gradient(n * inChannels)
        hidden = b.activation(n * c.hidden); hiddenGrad = b.gradient(n * c.hidden); hiddenPreActivationGrad = b.gradient(n * c.hidden)
        activationGradients = ActivationGradients(b)
    }

    deinit { for p in poolArgmax { p.deallocate() } }

    public var sampleShape: [Int] { configuration.inputShape }
    public var sampleCount: Int { sampleShape.reduce(1, *) }
    public var multiplyAccumulatesPerSample: Int {
        units.joined().reduce(0) { $0 + $1.conv.multiplyAccumulatesPerImage } + fc1.inFeatures * fc1.outFeatures + fc2.inFeatures * fc2.outFeatures
    }

    /// The features of the last `forward`: fc1's output after its ReLU, [batch, hidden].
    public var features: UnsafePointer<Float> { UnsafePointer(hidden.pointer) }

    private var pointers: ModelPointers {
        ModelPointers(parameters: parameters.pointer, gradients: gradients.pointer, buffers: buffers.pointer,
                      gradientsReady: gradientsReady, reduceStatistics: nil)
    }

    /// logits[batch, classes] of images `input` [batch, C, H, W]; keeps what `backward` needs (and `features`).
    public func forward(input: UnsafePointer<Float>, logits: UnsafeMutablePointer<Float>, batch: Int) {
        precondition(batch >= 1 && batch <= batchCapacity, "batch \(batch) outside 1...\(batchCapacity)")
        let m = pointers, c = configuration
        nchwToCNHW(inputCNHW.pointer, input, batch: batch, channels: c.inChannels, plane: c.height * c.width)
        var current = UnsafePointer(inputCNHW.pointer)
        for (s, stage) in units.enumerated() {
            let (h, w) = (c.height >> s, c.width >> s)
            for unit in stage {
                unit.conv.forward(m, output: unit.convOutput.pointer, input: current, batch: batch)
                unit.bn.forward(m, output: unit.output.pointer, input: unit.convOutput.pointer, valuesPerChannel: batch * h * w, training: training)
                current = UnsafePointer(unit.output.pointer)
            }
            maxPool2x2Forward(output: pooled[s].pointer, argmax: poolArgmax[s], input: current,
                              planes: c.stages[s].last! * batch, height: h, width: w)
            current = UnsafePointer(pooled[s].pointer)
        }
        let bottom = c.stages.count
        globalAveragePoolForward(output: averaged.pointer, input: current, channels: fc1.inFeatures, batch: batch,
                                 plane: (c.height >> bottom) * (c.width >> bottom))
        fc1.forward(m, output: hidden.pointer, input: averaged.pointer, batch: batch)
        reluForward(output: hidden.pointer, input: hidden.pointer, count: batch * c.hidden)
        fc2.forward(m, output: logits, input: hidden.pointer, batch: batch)
        lastBatch = batch
    }

    /// Adds the gradients of Σ logits·logitsGrad for the last `forward` into `gradients` (the gradient
    /// rule, Layer.swift). The forward pass read in reverse.
    public func backward(logitsGrad: UnsafePointer<Float>) {
        precondition(training, "backward needs a train-mode forward pass")
        let m = pointers, c = configuration, batch = lastBatch, bottom = c.stages.count
        activationGradients.zero(batch: batch)
        fc2.backward(m, inputGrad: hiddenGrad.pointer, outputGrad: logitsGrad, input: hidden.pointer, batch: batch)
        reluBackward(inputGrad: hiddenPreActivationGrad.pointer, outputGrad: hiddenGrad.pointer, output: hidden.pointer, count: batch * c.hidden)
        fc1.backward(m, inputGrad: averagedGrad.pointer, outputGrad: hiddenPreActivationGrad.pointer, input: averaged.pointer, batch: batch)
        globalAveragePoolBackward(inputGrad: pooledGrad[bottom - 1].pointer, outputGrad: averagedGrad.pointer, channels: fc1.inFeatures,
                                  batch: batch, plane: (c.height >> bottom) * (c.width >> bottom))
        for s in units.indices.reversed() {
            let (h, w) = (c.height >> s, c.width >> s), stage = units[s]
            maxPool2x2Backward(inputGrad: stage.last!.outputGrad.pointer, outputGrad: pooledGrad[s].pointer, argmax: poolArgmax[s],
                               planes: c.stages[s].last! * batch, height: h, width: w)
            for j in stage.indices.reversed() {
                let unit = stage[j]
                unit.bn.backward(m, inputGrad: unit.convOutputGrad.pointer, outputGrad: unit.outputGrad.pointer,
                                 input: unit.convOutput.pointer, valuesPerChannel: batch * h * w)
                // The convolution's input: the previous unit of the stage, else the previous stage's pooled output.
                let input = j > 0 ? stage[j - 1].output.pointer : s > 0 ? pooled[s - 1].pointer : inputCNHW.pointer
                let inputGrad = j > 0 ? stage[j - 1].outputGrad.pointer : s > 0 ? pooledGrad[s - 1].pointer : nil
                unit.conv.backward(m, inputGrad: inputGrad, outputGrad: unit.convOutputGrad.pointer, input: input, batch: batch)
            }
        }
    }
}
