import Tensor

/// ContextUnet's sizes (ZOO.md §2): image channels C, side h (square, divisible by 4), n_feat n
/// (divisible by 8, for GroupNorm(8)) and n_cfeat, the context vector's length.
public struct ContextUnetConfiguration: Sendable, Equatable {
    public let inChannels, size, features, contextFeatures: Int
    public init(inChannels: Int, size: Int, features: Int = 64, contextFeatures: Int = 10) {
        self.inChannels = inChannels; self.size = size; self.features = features; self.contextFeatures = contextFeatures
    }
}

extension ModelArchitecture {
    public static let contextUnet = ModelArchitecture(
        name: "context-unet", className: "ContextUnet",
        summary: "DeepLearning.AI's conditional U-Net: residual GELU blocks, time and class embeddings; --features (n_feat, default 64), --context-features (n_cfeat, default 10)",
        instances: [ModelInstance("context_unet", sampleShape: [3, 16, 16], options: ModelOptions(features: 64, contextFeatures: 5)),
                    ModelInstance("context_unet_fmnist", sampleShape: [1, 28, 28], options: ModelOptions(features: 64, contextFeatures: 10))],
        options: [.features, .contextFeatures],
        validate: { shape, options in
            guard shape.count == 3 else { return "context-unet needs images [N, C, H, W]; /images is [N, \(shape.map(String.init).joined(separator: ", "))]" }
            guard shape[1] == shape[2], shape[1] % 4 == 0, shape[1] >= 4 else {
                return "context-unet needs square images whose side is divisible by 4 (two poolings, then AvgPool2d(h/4)); got \(shape[1])×\(shape[2])"
            }
            let c = ContextUnetConfiguration(shape, options)
            guard c.features >= 8, c.features % 8 == 0 else { return "--features \(c.features): context-unet's n_feat must be a positive multiple of 8 (GroupNorm(8, n))" }
            guard c.contextFeatures >= 1 else { return "--context-features \(c.contextFeatures): context-unet needs at least 1" }
            return nil
        },
        build: { shape, options, capacity, convolutions in
            ContextUnet(ContextUnetConfiguration(shape, options), batchCapacity: capacity, convolutionAlgorithm: convolutions.algorithm(for:))
        })
}

extension ContextUnetConfiguration {
    /// From a sample shape [C, h, h] and the user's options (unset: n_feat 64, n_cfeat 10).
    init(_ shape: [Int], _ options: ModelOptions) {
        self.init(inChannels: shape[0], size: shape[1], features: options.features ?? 64, contextFeatures: options.contextFeatures ?? 10)
    }
}

/// The conditional U-Net of DeepLearning.AI's "How Diffusion Models Work" (ZOO.md §2), n = n_feat, h = side:
///   x0 = init_conv RCB(C→n, residual)                         [n, h]
///   d1 = down1 (RCB n→n, RCB n→n, MaxPool 2)                   [n, h/2]
///   d2 = down2 (RCB n→2n, RCB 2n→2n, MaxPool 2)                [2n, h/4]
///   v  = GELU(AvgPool(h/4)(d2))                                 [2n, 1]
///   u1 = ReLU(GroupNorm(ConvT k=s=h/4 (v)))                     [2n, h/4]
///   u2 = up1(cat(ce1·u1 + te1, d2)): ConvT k2 s2 4n→n, RCB, RCB  [n, h/2]
///   u3 = up2(cat(ce2·u2 + te2, d1)): ConvT k2 s2 2n→n, RCB, RCB  [n, h]
///   ε̂  = Conv3x3(ReLU(GroupNorm(Conv3x3(cat(u3, x0)))))        [C, h]
/// te = EmbedFC of the time t/T (`conditioning.continuous`), ce = EmbedFC of the one-hot class
/// (`conditioning.labels`; `noLabel` gives the zero vector: unconditional, as classifier-free guidance needs).
/// Activations are CNHW; every skip is written into the second half of the concatenation that reads
/// it, so concatenating costs nothing, and its gradient gathers the decoder's share there first.
public final class ContextUnet: Denoiser {
    public let configuration: ContextUnetConfiguration
    public let parameterTable: ParameterTable
    public let bufferTable: ParameterTable
    public let parameters, gradients, buffers: FloatBuffer
    public let batchCapacity: Int
    public let convolutionPlan: [ConvolutionPlanEntry]
    public let workspaceCount: Int
    public var training = true
    public var gradientsReady: ((Int) -> Void)?
    public var reduceStatistics: ((UnsafeMutablePointer<Double>, Int) -> Void)?

    // Layers in the order of the state_dict, which is also the parameter table's: backward visits them in reverse.
    private let initConv, down1a, down1b, down2a, down2b: ResidualConvBlock
    private let timeEmbed1, timeEmbed2, contextEmbed1, contextEmbed2: EmbedFC
    private let up0: ConvTranspose2d, up0Norm: GroupNormLayer
    private let up1: ConvTranspose2d, up1a, up1b: ResidualConvBlock
    private let up2: ConvTranspose2d, up2a, up2b: ResidualConvBlock
    private let outConv1: Conv2d, outNorm: GroupNormLayer, outConv2: Conv2d

    // Activations, CNHW (names by ZOO.md's symbols); each *Grad its gradient.
    private let inputCNHW, outputCNHW, outputGradCNHW: FloatBuffer
    private let contextInput: FloatBuffer                          // [N, n_cfeat] one-hot
    private let timeInput: FloatBuffer                             // [N, 1]: t/T, kept for backward
    private let down1aOut, down1bOut, down1aOutGrad, down1bOutGrad: FloatBuffer   // [n, h]
    private let down2aOut, down2bOut, down2aOutGrad, down2bOutGrad: FloatBuffer   // [2n, h/2]
    private let poolArgmax1, poolArgmax2: UnsafeMutablePointer<UInt8>
    private let pooledVector, vector, pooledVectorGrad, vectorGrad: FloatBuffer    // [2n, N]
    private let up0Out, u1, up0OutGrad, u1Grad: FloatBuffer        // [2n, h/4]
    private let concat1, concat1Grad: FloatBuffer                  // [4n, h/4]: ce1·u1 + te1, d2
    private let up1Out, up1aOut, u2, up1OutGrad, up1aOutGrad, u2Grad: FloatBuffer  // [n, h/2]
    private let concat2, concat2Grad: FloatBuffer                  // [2n, h/2]: ce2·u2 + te2, d1
    private let up2Out, up2aOut, up2OutGrad, up2aOutGrad: FloatBuffer   // [n, h]
    private let concat3, concat3Grad: FloatBuffer                  // [2n, h]: u3, x0
    private let outHidden, outNormed, outHiddenGrad, outNormedGrad: FloatBuffer   // [n, h]
    private let activationGradients: ActivationGradients
    private var lastBatch = 0

    public init(_ c: ContextUnetConfiguration, batchCapacity: Int,
                convolutionAlgorithm: @escaping (ConvShape) -> ConvolutionAlgorithmKind = { _ in .im2col }) {
        precondition(c.size % 4 == 0 && c.features % 8 == 0, "ContextUnet needs a side divisible by 4 and n_feat by 8")
        configuration = c; self.batchCapacity = batchCapacity
        let b = ModelBuilder(batchCapacity: batchCapacity), n = c.features, h = c.size, q = h / 2, r = h / 4, N = batchCapacity
        b.convolutionAlgorithm = convolutionAlgorithm
        func block(_ name: String, _ i: Int, _ o: Int, _ side: Int, residual: Bool = false) -> ResidualConvBlock {
            ResidualConvBlock(b, name, inChannels: i, outChannels: o, height: side, width: side, residual: residual)
        }
        initConv = block("init_conv", c.inChannels, n, h, residual: true)
        down1a = block("down1.model.0", n, n, h); down1b = block("down1.model.1", n, n, h)
        down2a = block("down2.model.0", n, 2 * n, q); down2b = block("down2.model.1", 2 * n, 2 * n, q)
        timeEmbed1 = EmbedFC(b, "timeembed1", inFeatures: 1, outFeatures: 2 * n)
        timeEmbed2 = EmbedFC(b, "timeembed2", inFeatures: 1, outFeatures: n)
        contextEmbed1 = EmbedFC(b, "contextembed1", inFeatures: c.contextFeatures, outFeatures: 2 * n)
        contextEmbed2 = EmbedFC(b, "contextembed2", inFeatures: c.contextFeatures, outFeatures: n)
        up0 = ConvTranspose2d(b, "up0.0", inChannels: 2 * n, outChannels: 2 * n, kernel: r, stride: r, height: 1, width: 1)
        up0Norm = GroupNormLayer(b, "up0.1", groups: 8, channels: 2 * n, activation: .relu)
        up1 = ConvTranspose2d(b, "up1.model.0", inChannels: 4 * n, outChannels: n, kernel: 2, stride: 2, height: r, width: r)
        up1a = block("up1.model.1", n, n, q); up1b = block("up1.model.2", n, n, q)
        up2 = ConvTranspose2d(b, "up2.model.0", inChannels: 2 * n, outChannels: n, kernel: 2, stride: 2, height: q, width: q)
        up2a = block("up2.model.1", n, n, h); up2b = block("up2.model.2", n, n, h)
        outConv1 = Conv2d(b, "out.0", inChannels: 2 * n, outChannels: n, kernel: 3, height: h, width: h)
        outNorm = GroupNormLayer(b, "out.1", groups: 8, channels: n, activation: .relu)
        outConv2 = Conv2d(b, "out.3", inChannels: n, outChannels: c.inChannels, kernel: 3, height: h, width: h)
        parameterTable = b.parameters; bufferTable = b.buffers; convolutionPlan = b.convolutionPlan
        workspaceCount = b.workspace.count
        parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
        buffers = FloatBuffer(count: b.buffers.totalCount)

        let image = c.inChannels * N * h * h, full = n * N * h * h, half = n * N * q * q, quarter = n * N * r * r
        inputCNHW = b.activation(image); outputCNHW = b.activation(image)
        outputGradCNHW = b.activation(image)   // the loss's gradient, converted: written, not added to
        contextInput = b.activation(N * c.contextFeatures); timeInput = b.activation(N)
        down1aOut = b.activation(full); down1bOut = b.activation(full); down1aOutGrad = b.gradient(full); down1bOutGrad = b.gradient(full)
        down2aOut = b.activation(2 * half); down2bOut = b.activation(2 * half)
        down2aOutGrad = b.gradient(2 * half); down2bOutGrad = b.gradient(2 * half)
        poolArgmax1 = .allocate(capacity: half); poolArgmax1.initialize(repeating: 0, count: half)
        poolArgmax2 = .allocate(capacity: 2 * quarter); poolArgmax2.initialize(repeating: 0, count: 2 * quarter)
        pooledVector = b.activation(2 * n * N); vector = b.activation(2 * n * N)
        pooledVectorGrad = b.gradient(2 * n * N); vectorGrad = b.gradient(2 * n * N)
        up0Out = b.activation(2 * quarter); u1 = b.activation(2 * quarter); up0OutGrad = b.gradient(2 * quarter); u1Grad = b.gradient(2 * quarter)
        concat1 = b.activation(4 * quarter); concat1Grad = b.gradient(4 * quarter)
        up1Out = b.activation(half); up1aOut = b.activation(half); u2 = b.activation(half)
        up1OutGrad = b.gradient(half); up1aOutGrad = b.gradient(half); u2Grad = b.gradient(half)
        concat2 = b.activation(2 * half); concat2Grad = b.gradient(2 * half)
        up2Out = b.activation(full); up2aOut = b.activation(full); up2OutGrad = b.gradient(full); up2aOutGrad = b.gradient(full)
        concat3 = b.activation(2 * full); concat3Grad = b.gradient(2 * full)
        outHidden = b.activation(full); outNormed = b.activation(full); outHiddenGrad = b.gradient(full); outNormedGrad = b.gradient(full)
        activationGradients = ActivationGradients(b)
    }

    deinit { poolArgmax1.deallocate(); poolArgmax2.deallocate() }

    public var sampleShape: [Int] { [configuration.inChannels, configuration.size, configuration.size] }
    public var classCount: Int { configuration.contextFeatures }

    public var multiplyAccumulatesPerSample: Int {
        let blocks = [initConv, down1a, down1b, down2a, down2b, up1a, up1b, up2a, up2b].reduce(0) { $0 + $1.multiplyAccumulatesPerImage }
        let embeddings = [timeEmbed1, timeEmbed2, contextEmbed1, contextEmbed2].reduce(0) { $0 + $1.multiplyAccumulatesPerImage }
        return blocks + embeddings + up0.multiplyAccumulatesPerImage + up1.multiplyAccumulatesPerImage + up2.multiplyAccumulatesPerImage
            + outConv1.multiplyAccumulatesPerImage + outConv2.multiplyAccumulatesPerImage
    }

    /// The second half of a concatenation of `channels` + `channels` at `side` for `batch` images: the skip.
    private func secondHalf(_ buffer: FloatBuffer, channels: Int, side: Int, batch: Int) -> UnsafeMutablePointer<Float> {
        buffer.pointer + channels * batch * side * side
    }

    public func forward(input: UnsafePointer<Float>, conditioning: Conditioning, output: UnsafeMutablePointer<Float>, batch: Int) {
        precondition(batch >= 1 && batch <= batchCapacity, "batch \(batch) outside 1...\(batchCapacity)")
        let m = pointers, c = configuration, n = c.features, h = c.size, q = h / 2, r = h / 4, t = training
        nchwToCNHW(inputCNHW.pointer, input, batch: batch, channels: c.inChannels, plane: h * h)
        oneHot(conditioning.labels, batch: batch)
        timeInput.pointer.update(from: conditioning.continuous, count: batch)
        let x0 = secondHalf(concat3, channels: n, side: h, batch: batch)
        let d1 = secondHalf(concat2, channels: n, side: q, batch: batch)
        let d2 = secondHalf(concat1, channels: 2 * n, side: r, batch: batch)
        initConv.forward(m, output: x0, input: inputCNHW.pointer, batch: batch, training: t)
        down1a.forward(m, output: down1aOut.pointer, input: x0, batch: batch, training: t)
        down1b.forward(m, output: down1bOut.pointer, input: down1aOut.pointer, batch: batch, training: t)
        maxPool2x2Forward(output: d1, argmax: poolArgmax1, input: down1bOut.pointer, planes: n * batch, height: h, width: h)
        down2a.forward(m, output: down2aOut.pointer, input: d1, batch: batch, training: t)
        down2b.forward(m, output: down2bOut.pointer, input: down2aOut.pointer, batch: batch, training: t)
        maxPool2x2Forward(output: d2, argmax: poolArgmax2, input: down2bOut.pointer, planes: 2 * n * batch, height: q, width: q)
        avgPool2dForward(output: pooledVector.pointer, input: d2, planes: 2 * n * batch, height: r, width: r, kernel: r)
        activationForward(.gelu, output: vector.pointer, input: pooledVector.pointer, count: 2 * n * batch)
        timeEmbed1.forward(m, input: timeInput.pointer, batch: batch)
        timeEmbed2.forward(m, input: timeInput.pointer, batch: batch)
        contextEmbed1.forward(m, input: contextInput.pointer, batch: batch)
        contextEmbed2.forward(m, input: contextInput.pointer, batch: batch)
        up0.forward(m, output: up0Out.pointer, input: vector.pointer, batch: batch)
        up0Norm.forward(m, output: u1.pointer, input: up0Out.pointer, batch: batch, plane: r * r)
        modulateChannelsForward(output: concat1.pointer, input: u1.pointer, scale: contextEmbed1.output.pointer,
                                shift: timeEmbed1.output.pointer, channels: 2 * n, batch: batch, plane: r * r)
        up1.forward(m, output: up1Out.pointer, input: concat1.pointer, batch: batch)
        up1a.forward(m, output: up1aOut.pointer, input: up1Out.pointer, batch: batch, training: t)
        up1b.forward(m, output: u2.pointer, input: up1aOut.pointer, batch: batch, training: t)
        modulateChannelsForward(output: concat2.pointer, input: u2.pointer, scale: contextEmbed2.output.pointer,
                                shift: timeEmbed2.output.pointer, channels: n, batch: batch, plane: q * q)
        up2.forward(m, output: up2Out.pointer, input: concat2.pointer, batch: batch)
        up2a.forward(m, output: up2aOut.pointer, input: up2Out.pointer, batch: batch, training: t)
        up2b.forward(m, output: concat3.pointer, input: up2aOut.pointer, batch: batch, training: t)   // u3
        outConv1.forward(m, output: outHidden.pointer, input: concat3.pointer, batch: batch)
        outNorm.forward(m, output: outNormed.pointer, input: outHidden.pointer, batch: batch, plane: h * h)
        outConv2.forward(m, output: outputCNHW.pointer, input: outNormed.pointer, batch: batch)
        cnhwToNCHW(output, outputCNHW.pointer, batch: batch, channels: c.inChannels, plane: h * h)
        lastBatch = batch
    }

    /// The context vectors: one-hot rows of the labels, zero rows for `noLabel`.
    private func oneHot(_ labels: UnsafePointer<Int32>, batch: Int) {
        let k = configuration.contextFeatures, row = contextInput.pointer
        row.update(repeating: 0, count: batch * k)
        for i in 0..<batch where labels[i] != Conditioning.noLabel {
            precondition(labels[i] >= 0 && Int(labels[i]) < k, "label \(labels[i]) outside the \(k) context features")
            row[i * k + Int(labels[i])] = 1
        }
    }

    public func backward(outputGrad: UnsafePointer<Float>) {
        precondition(training, "backward needs a train-mode forward pass")
        let m = pointers, c = configuration, n = c.features, h = c.size, q = h / 2, r = h / 4, batch = lastBatch
        activationGradients.zero(batch: batch)
        nchwToCNHW(outputGradCNHW.pointer, outputGrad, batch: batch, channels: c.inChannels, plane: h * h)
        let x0 = secondHalf(concat3, channels: n, side: h, batch: batch), x0Grad = secondHalf(concat3Grad, channels: n, side: h, batch: batch)
        let d1 = secondHalf(concat2, channels: n, side: q, batch: batch), d1Grad = secondHalf(concat2Grad, channels: n, side: q, batch: batch)
        let d2Grad = secondHalf(concat1Grad, channels: 2 * n, side: r, batch: batch)
        outConv2.backward(m, inputGrad: outNormedGrad.pointer, outputGrad: outputGradCNHW.pointer, input: outNormed.pointer, batch: batch)
        outNorm.backward(m, inputGrad: outHiddenGrad.pointer, outputGrad: outNormedGrad.pointer, input: outHidden.pointer, batch: batch, plane: h * h)
        outConv1.backward(m, inputGrad: concat3Grad.pointer, outputGrad: outHiddenGrad.pointer, input: concat3.pointer, batch: batch)
        up2b.backward(m, inputGrad: up2aOutGrad.pointer, outputGrad: concat3Grad.pointer, input: up2aOut.pointer, batch: batch)
        up2a.backward(m, inputGrad: up2OutGrad.pointer, outputGrad: up2aOutGrad.pointer, input: up2Out.pointer, batch: batch)
        up2.backward(m, inputGrad: concat2Grad.pointer, outputGrad: up2OutGrad.pointer, input: concat2.pointer, batch: batch)
        modulateChannelsBackward(inputGrad: u2Grad.pointer, scaleGrad: contextEmbed2.outputGrad.pointer, shiftGrad: timeEmbed2.outputGrad.pointer,
                                 outputGrad: concat2Grad.pointer, input: u2.pointer, scale: contextEmbed2.output.pointer,
                                 channels: n, batch: batch, plane: q * q)
        up1b.backward(m, inputGrad: up1aOutGrad.pointer, outputGrad: u2Grad.pointer, input: up1aOut.pointer, batch: batch)
        up1a.backward(m, inputGrad: up1OutGrad.pointer, outputGrad: up1aOutGrad.pointer, input: up1Out.pointer, batch: batch)
        up1.backward(m, inputGrad: concat1Grad.pointer, outputGrad: up1OutGrad.pointer, input: concat1.pointer, batch: batch)
        modulateChannelsBackward(inputGrad: u1Grad.pointer, scaleGrad: contextEmbed1.outputGrad.pointer, shiftGrad: timeEmbed1.outputGrad.pointer,
                                 outputGrad: concat1Grad.pointer, input: u1.pointer, scale: contextEmbed1.output.pointer,
                                 channels: 2 * n, batch: batch, plane: r * r)
        up0Norm.backward(m, inputGrad: up0OutGrad.pointer, outputGrad: u1Grad.pointer, input: up0Out.pointer, batch: batch, plane: r * r)
        up0.backward(m, inputGrad: vectorGrad.pointer, outputGrad: up0OutGrad.pointer, input: vector.pointer, batch: batch)
        // Every embedding's output gradient is complete now (up1 and up2 have added theirs).
        contextEmbed2.backward(m, input: contextInput.pointer, batch: batch)
        contextEmbed1.backward(m, input: contextInput.pointer, batch: batch)
        timeEmbed2.backward(m, input: timeInput.pointer, batch: batch)
        timeEmbed1.backward(m, input: timeInput.pointer, batch: batch)
        activationBackward(.gelu, inputGrad: pooledVectorGrad.pointer, outputGrad: vectorGrad.pointer, input: pooledVector.pointer,
                           count: 2 * n * batch)
        // d(d2) already holds up1's share; AvgPool adds to_vec's, then MaxPool hands it to the encoder.
        avgPool2dBackward(inputGrad: d2Grad, outputGrad: pooledVectorGrad.pointer, planes: 2 * n * batch, height: r, width: r, kernel: r)
        maxPool2x2Backward(inputGrad: down2bOutGrad.pointer, outputGrad: d2Grad, argmax: poolArgmax2, planes: 2 * n * batch, height: q, width: q)
        down2b.backward(m, inputGrad: down2aOutGrad.pointer, outputGrad: down2bOutGrad.pointer, input: down2aOut.pointer, batch: batch)
        down2a.backward(m, inputGrad: d1Grad, outputGrad: down2aOutGrad.pointer, input: d1, batch: batch)
        maxPool2x2Backward(inputGrad: down1bOutGrad.pointer, outputGrad: d1Grad, argmax: poolArgmax1, planes: n * batch, height: h, width: h)
        down1b.backward(m, inputGrad: down1aOutGrad.pointer, outputGrad: down1bOutGrad.pointer, input: down1aOut.pointer, batch: batch)
        down1a.backward(m, inputGrad: x0Grad, outputGrad: down1aOutGrad.pointer, input: x0, batch: batch)
        initConv.backward(m, inputGrad: nil, outputGrad: x0Grad, input: inputCNHW.pointer, batch: batch)
    }
}
