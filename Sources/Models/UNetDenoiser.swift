import Tensor

/// Architecture of the seed's U-Net: base channels b, depth D, C_i = b·2^i (SPEC §1).
public struct UNetConfiguration: Sendable, Equatable {
    public let baseChannels, depth, inChannels: Int
    public init(baseChannels: Int, depth: Int, inChannels: Int) {
        self.baseChannels = baseChannels; self.depth = depth; self.inChannels = inChannels
    }
    /// CNNDenoiser: base 64, depth 2.
    public static func small(inChannels: Int = 3) -> Self { .init(baseChannels: 64, depth: 2, inChannels: inChannels) }
    /// CNNDenoiserLarge: base 128, depth 3.
    public static func large(inChannels: Int = 3) -> Self { .init(baseChannels: 128, depth: 3, inChannels: inChannels) }

    public func channels(_ level: Int) -> Int { baseChannels << level }
}

extension ModelArchitecture {
    public static let cnn = unet("cnn", className: "CNNDenoiser", summary: "base 64, depth 2", baseChannels: 64, depth: 2)
    public static let cnnLarge = unet("cnn-large", className: "CNNDenoiserLarge", summary: "base 128, depth 3", baseChannels: 128, depth: 3)

    /// The seed's U-Net with `baseChannels` and `depth`, on images [C, H, W] with H, W divisible by 2^depth.
    public static func unet(_ name: String, className: String, summary: String, baseChannels: Int, depth: Int) -> ModelArchitecture {
        ModelArchitecture(
            name: name, className: className, summary: "\(className) (U-Net, \(summary))", referenceSampleShape: [3, 32, 32],
            validate: { shape in
                guard shape.count == 3 else {
                    return "\(name) needs images [N, C, H, W]; /images is [N, \(shape.map(String.init).joined(separator: ", "))]"
                }
                let factor = 1 << depth
                guard shape[1] % factor == 0, shape[2] % factor == 0 else {
                    return "images of \(shape[1])×\(shape[2]) cannot pass \(depth) poolings of 2 in \(name): height and width must be divisible by \(factor) (prepare with --pad)"
                }
                return nil
            },
            build: { shape, capacity, convolutions in
                UNetDenoiser(UNetConfiguration(baseChannels: baseChannels, depth: depth, inChannels: shape[0]),
                             height: shape[1], width: shape[2], batchCapacity: capacity,
                             convolutionAlgorithm: convolutions.algorithm(for:))
            })
    }
}

/// U-Net noise predictor. Layout of one forward pass (0-based level i; PyTorch names are 1-based):
///   x → init_conv → down1 … downD (each followed by MaxPool2d(2); its output is kept as skip s_i)
///     → bottleneck → for each level from the bottom: Upsample×2, concat [x, s_i], up_block
///     → out_conv (1×1).
/// Images enter and leave as NCHW; inside, activations are CNHW (see Tensor/Layout.swift).
/// The skip s_i is written straight into the second half of its up block's concat buffer, so the
/// concatenation costs nothing; in backward the decoder adds its share of d(s_i) there first and
/// MaxPool's backward adds the encoder's (the gradient rule, Layer.swift).
public final class UNetDenoiser: Denoiser {
    public let configuration: UNetConfiguration
    public let parameterTable: ParameterTable
    public let bufferTable: ParameterTable
    public let parameters, gradients, buffers: FloatBuffer
    public let batchCapacity: Int
    public let height, width: Int
    public let convolutionPlan: [ConvolutionPlanEntry]
    public let workspaceCount: Int
    public var training = true
    public var gradientsReady: ((Int) -> Void)?
    public var reduceStatistics: ((UnsafeMutablePointer<Double>, Int) -> Void)?

    private let initConv: Conv2d, outConv: Conv2d
    private let downs: [UNetBlock], bottleneck: UNetBlock, ups: [UNetBlock]

    // Activations (CNHW), indexed by level i = 0..<depth unless stated.
    private let inputCNHW, outputCNHW, outputGradCNHW: FloatBuffer
    private let embedding: FloatBuffer                       // [N, 128]
    private let initOutput, initOutputGrad: FloatBuffer      // [C_0, N, H, W]
    private let pooled, pooledGrad: [FloatBuffer]            // [C_{i+1}, N, H>>(i+1), W>>(i+1)]
    private let poolArgmax: [UnsafeMutablePointer<UInt8>]
    private let bottleneckOutput, bottleneckOutputGrad: FloatBuffer
    private let concat, concatGrad: [FloatBuffer]            // by level: [2·C_{i+1}, N, H>>i, W>>i]
    private let upOutput, upOutputGrad: [FloatBuffer]        // by level: [C_i, N, H>>i, W>>i]
    private let activationGradients: ActivationGradients

    /// Builds the model for images of `height`×`width` (divisible by 2^depth) and batches up to
    /// `batchCapacity`; `convolutionAlgorithm` picks each convolution's algorithm from its shape.
    public init(_ c: UNetConfiguration, height: Int, width: Int, batchCapacity: Int,
                convolutionAlgorithm: @escaping (ConvShape) -> ConvolutionAlgorithmKind = { _ in .im2col }) {
        precondition(height % (1 << c.depth) == 0 && width % (1 << c.depth) == 0,
                     "image size \(height)×\(width) must be divisible by 2^depth = \(1 << c.depth)")
        configuration = c; self.height = height; self.width = width; self.batchCapacity = batchCapacity
        let b = ModelBuilder(batchCapacity: batchCapacity), n = batchCapacity
        b.convolutionAlgorithm = convolutionAlgorithm
        initConv = Conv2d(b, "init_conv", inChannels: c.inChannels, outChannels: c.baseChannels, kernel: 3, height: height, width: width)
        downs = (0..<c.depth).map { i in
            UNetBlock(b, name: "down\(i + 1)", inChannels: c.channels(i), outChannels: c.channels(i + 1), height: height >> i, width: width >> i)
        }
        bottleneck = UNetBlock(b, name: "bottleneck", inChannels: c.channels(c.depth), outChannels: c.channels(c.depth),
                               height: height >> c.depth, width: width >> c.depth)
        // ups[i] serves level i; PyTorch numbers them from the bottom: up_block1 is level depth−1.
        var upsByLevel = [UNetBlock?](repeating: nil, count: c.depth)
        for j in 0..<c.depth {
            let i = c.depth - 1 - j
            upsByLevel[i] = UNetBlock(b, name: "up_block\(j + 1)", inChannels: 2 * c.channels(i + 1), outChannels: c.channels(i),
                                      height: height >> i, width: width >> i)
        }
        ups = upsByLevel.map { $0! }
        outConv = Conv2d(b, "out_conv", inChannels: c.baseChannels, outChannels: c.inChannels, kernel: 1, height: height, width: width)
        parameterTable = b.parameters; bufferTable = b.buffers; convolutionPlan = b.convolutionPlan
        workspaceCount = b.workspace.count
        parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
        buffers = FloatBuffer(count: b.buffers.totalCount)

        let imageCount = c.inChannels * n * height * width
        inputCNHW = b.activation(imageCount); outputCNHW = b.activation(imageCount)
        outputGradCNHW = b.activation(imageCount)   // the loss's gradient, converted: written, not added to
        embedding = b.activation(n * timeEmbeddingDimension)
        initOutput = b.activation(initConv.outputCount); initOutputGrad = b.gradient(initConv.outputCount)
        let pooledCounts = (0..<c.depth).map { c.channels($0 + 1) * n * (height >> ($0 + 1)) * (width >> ($0 + 1)) }
        pooled = pooledCounts.map { b.activation($0) }
        pooledGrad = pooledCounts.map { b.gradient($0) }
        poolArgmax = pooledCounts.map {
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: $0); p.initialize(repeating: 0, count: $0); return p
        }
        let bottom = c.channels(c.depth) * n * (height >> c.depth) * (width >> c.depth)
        bottleneckOutput = b.activation(bottom); bottleneckOutputGrad = b.gradient(bottom)
        let concatCounts = (0..<c.depth).map { 2 * c.channels($0 + 1) * n * (height >> $0) * (width >> $0) }
        concat = concatCounts.map { b.activation($0) }
        concatGrad = concatCounts.map { b.gradient($0) }
        upOutput = (0..<c.depth).map { b.activation(c.channels($0) * n * (height >> $0) * (width >> $0)) }
        upOutputGrad = (0..<c.depth).map { b.gradient(c.channels($0) * n * (height >> $0) * (width >> $0)) }
        activationGradients = ActivationGradients(b)
    }

    deinit { for p in poolArgmax { p.deallocate() } }

    public var sampleShape: [Int] { [configuration.inChannels, height, width] }

    public var multiplyAccumulatesPerSample: Int {
        (downs + [bottleneck] + ups).reduce(0) { $0 + $1.multiplyAccumulatesPerImage }
            + initConv.multiplyAccumulatesPerImage + outConv.multiplyAccumulatesPerImage
    }

    /// The skip tensor of level i: the second half of that level's concat buffer.
    private func skip(_ i: Int, batch: Int) -> UnsafeMutablePointer<Float> {
        concat[i].pointer + configuration.channels(i + 1) * batch * (height >> i) * (width >> i)
    }
    private func skipGrad(_ i: Int, batch: Int) -> UnsafeMutablePointer<Float> {
        concatGrad[i].pointer + configuration.channels(i + 1) * batch * (height >> i) * (width >> i)
    }

    public func forward(input: UnsafePointer<Float>, conditioning: Conditioning, output: UnsafeMutablePointer<Float>, batch: Int) {
        precondition(batch >= 1 && batch <= batchCapacity, "batch \(batch) outside 1...\(batchCapacity)")
        let m = pointers, c = configuration, plane = height * width
        nchwToCNHW(inputCNHW.pointer, input, batch: batch, channels: c.inChannels, plane: plane)
        sinusoidalTimeEmbedding(output: embedding.pointer, timesteps: conditioning.timesteps, batch: batch)
        initConv.forward(m, output: initOutput.pointer, input: inputCNHW.pointer, batch: batch)
        var current = UnsafePointer(initOutput.pointer)
        for i in 0..<c.depth {
            downs[i].forward(m, output: skip(i, batch: batch), input: current, embedding: embedding.pointer, batch: batch, training: training)
            maxPool2x2Forward(output: pooled[i].pointer, argmax: poolArgmax[i], input: skip(i, batch: batch),
                              planes: c.channels(i + 1) * batch, height: height >> i, width: width >> i)
            current = UnsafePointer(pooled[i].pointer)
        }
        bottleneck.forward(m, output: bottleneckOutput.pointer, input: current, embedding: embedding.pointer, batch: batch, training: training)
        current = UnsafePointer(bottleneckOutput.pointer)
        for i in (0..<c.depth).reversed() {
            upsampleBilinear2xForward(output: concat[i].pointer, input: current, planes: c.channels(i + 1) * batch,
                                      height: height >> (i + 1), width: width >> (i + 1))
            ups[i].forward(m, output: upOutput[i].pointer, input: concat[i].pointer, embedding: embedding.pointer, batch: batch, training: training)
            current = UnsafePointer(upOutput[i].pointer)
        }
        outConv.forward(m, output: outputCNHW.pointer, input: current, batch: batch)
        cnhwToNCHW(output, outputCNHW.pointer, batch: batch, channels: c.inChannels, plane: plane)
        lastBatch = batch
    }

    private var lastBatch = 0

    public func backward(outputGrad: UnsafePointer<Float>) {
        precondition(training, "backward needs a train-mode forward pass")
        let m = pointers, c = configuration, batch = lastBatch, plane = height * width, e = embedding.pointer
        activationGradients.zero(batch: batch)
        nchwToCNHW(outputGradCNHW.pointer, outputGrad, batch: batch, channels: c.inChannels, plane: plane)
        outConv.backward(m, inputGrad: upOutputGrad[0].pointer, outputGrad: outputGradCNHW.pointer, input: upOutput[0].pointer, batch: batch)
        for i in 0..<c.depth {
            ups[i].backward(m, inputGrad: concatGrad[i].pointer, outputGrad: upOutputGrad[i].pointer, input: concat[i].pointer,
                            embedding: e, batch: batch)
            // The first half of d(concat) belongs to the upsampled tensor from the level below.
            let below = i + 1 < c.depth ? upOutputGrad[i + 1].pointer : bottleneckOutputGrad.pointer
            upsampleBilinear2xBackward(inputGrad: below, outputGrad: concatGrad[i].pointer, planes: c.channels(i + 1) * batch,
                                       height: height >> (i + 1), width: width >> (i + 1))
        }
        bottleneck.backward(m, inputGrad: pooledGrad[c.depth - 1].pointer, outputGrad: bottleneckOutputGrad.pointer,
                            input: pooled[c.depth - 1].pointer, embedding: e, batch: batch)
        for i in (0..<c.depth).reversed() {
            // d(skip) already holds the decoder's share; MaxPool adds the encoder's.
            maxPool2x2Backward(inputGrad: skipGrad(i, batch: batch), outputGrad: pooledGrad[i].pointer, argmax: poolArgmax[i],
                               planes: c.channels(i + 1) * batch, height: height >> i, width: width >> i)
            let inputGrad = i > 0 ? pooledGrad[i - 1].pointer : initOutputGrad.pointer
            let input = i > 0 ? pooled[i - 1].pointer : initOutput.pointer
            downs[i].backward(m, inputGrad: inputGrad, outputGrad: skipGrad(i, batch: batch), input: input, embedding: e, batch: batch)
        }
        initConv.backward(m, inputGrad: nil, outputGrad: initOutputGrad.pointer, input: inputCNHW.pointer, batch: batch)
    }
}
