import Tensor

extension ModelArchitecture {
    public static let myUNet: ModelArchitecture = {
        var architecture = myUNetEntry
        architecture.timestepTableRows = MyUNet.timesteps
        return architecture
    }()

    private static let myUNetEntry = ModelArchitecture(
        name: "my-unet", className: "MyUNet",
        summary: "the DDPM card's U-Net: LayerNorm, SiLU, per-level time MLPs on a frozen sinusoidal table (T 1000, d 100); 28×28 only, C from the data",
        instances: [ModelInstance("my_unet", sampleShape: [1, 28, 28])],
        options: [],
        validate: { shape, _ in
            guard shape.count == 3 else { return "my-unet needs images [N, C, 28, 28]; /images is [N, \(shape.map(String.init).joined(separator: ", "))]" }
            guard shape[1] == MyUNet.side, shape[2] == MyUNet.side else {
                return "my-unet is hard-wired to 28×28 images (LayerNorm shapes and three fixed down-samplings); got \(shape[1])×\(shape[2]) (prepare with --resize 28)"
            }
            guard shape[0] >= 1 else { return "my-unet needs at least one channel" }
            return nil
        },
        build: { shape, _, capacity, convolutions in
            MyUNet(inChannels: shape[0], batchCapacity: capacity, convolutionAlgorithm: convolutions.algorithm(for:))
        })
}

/// The U-Net of the DDPM card (seed 004, ZOO.md §4) for C×28×28 images, e = time_embed[t] (frozen [1000, 100]):
///   o1 = b1(x + te1 e)                    [10, 28]   down1 Conv k4 s2 p1             → 14
///   o2 = b2(down1 o1 + te2 e)             [20, 14]   down2 Conv k4 s2 p1             → 7
///   o3 = b3(down2 o2 + te3 e)             [40, 7]    down3 Conv k2 s1, SiLU, Conv k4 s2 p1 → 3
///   m  = b_mid(down3 o3 + te_mid e)       [40, 3]    up1 ConvT k4 s2 p1, SiLU, ConvT k2 s1 → 7
///   o4 = b4(cat(o3, up1 m) + te4 e)       [20, 7]    up2 ConvT k4 s2 p1              → 14
///   o5 = b5(cat(o2, up2 o4) + te5 e)      [10, 14]   up3 ConvT k4 s2 p1              → 28
///   o  = b_out(cat(o1, up3 o5) + te_out e) [10, 28]  ε̂ = conv_out o (Conv3x3 p1, 10 → C)
/// t is the raw integer step (`conditioning.timesteps`, 0..<1000). Activations are CNHW; each skip o_k is
/// written by its stage straight into the first half of the concatenation that reads it (and read from
/// there by the next down-sampling), each up-sampling into the second half, so concatenating costs
/// nothing; the skip's gradient gathers the decoder's share there and the down-sampling's on top.
public final class MyUNet: Denoiser {
    public static let side = 28
    /// T: the rows of the frozen table, the timesteps it can embed (0..<T).
    public static let timesteps = 1000
    /// d: the width of the table and of the time MLPs' input.
    public static let timeDimension = 100

    public let inChannels: Int
    public let parameterTable: ParameterTable
    public let bufferTable: ParameterTable
    public let parameters, gradients, buffers: FloatBuffer
    public let batchCapacity: Int
    public let convolutionPlan: [ConvolutionPlanEntry]
    public let workspaceCount: Int
    public var training = true
    public var gradientsReady: ((Int) -> Void)?
    public var reduceStatistics: ((UnsafeMutablePointer<Double>, Int) -> Void)?

    // In PyTorch's order (the table's), whose reverse is the backward pass.
    private let timeEmbed: FrozenEmbedding
    private let stage1: MyUNetStage, down1: Conv2d
    private let stage2: MyUNetStage, down2: Conv2d
    private let stage3: MyUNetStage, down3First: Conv2d, down3Second: Conv2d
    private let stageMid: MyUNetStage, up1First: ConvTranspose2d, up1Second: ConvTranspose2d
    private let stage4: MyUNetStage, up2: ConvTranspose2d
    private let stage5: MyUNetStage, up3: ConvTranspose2d
    private let stageOut: MyUNetStage, convOut: Conv2d

    // Activations, CNHW; each *Grad its gradient. catK: [skip, up-sampled] of the stage at that size.
    private let inputCNHW, inputGrad, outputCNHW, outputGradCNHW: FloatBuffer
    private let embedding: FloatBuffer                                              // [N, d]
    private let cat28, cat28Grad, cat14, cat14Grad, cat7, cat7Grad: FloatBuffer     // [20|40|80, N, ·, ·]
    private let down1Output, down1OutputGrad, down2Output, down2OutputGrad: FloatBuffer
    private let down3Hidden, down3Activated, down3Output: FloatBuffer               // [40, N, 6|6|3, ·]
    private let down3HiddenGrad, down3ActivatedGrad, down3OutputGrad: FloatBuffer
    private let middle, middleGrad: FloatBuffer                                     // [40, N, 3, 3]
    private let up1Hidden, up1Activated, up1HiddenGrad, up1ActivatedGrad: FloatBuffer   // [40, N, 6, 6]
    private let o4, o4Grad, o5, o5Grad, o, oGrad: FloatBuffer
    private let activationGradients: ActivationGradients
    private var lastBatch = 0

    /// Builds the model for C×28×28 images and batches up to `batchCapacity`.
    public init(inChannels: Int, batchCapacity: Int, convolutionAlgorithm: @escaping (ConvShape) -> ConvolutionAlgorithmKind = { _ in .im2col }) {
        precondition(inChannels >= 1, "my-unet needs at least one channel")
        self.inChannels = inChannels; self.batchCapacity = batchCapacity
        let b = ModelBuilder(batchCapacity: batchCapacity), n = batchCapacity, d = Self.timeDimension, c = inChannels
        b.convolutionAlgorithm = convolutionAlgorithm
        func stage(_ name: String, _ te: String, _ channels: [Int], _ side: Int, normalizeLast: Bool = true) -> MyUNetStage {
            MyUNetStage(b, block: name, timeMLP: te, channels: channels, timeDimension: d, height: side, width: side, normalizeLast: normalizeLast)
        }
        timeEmbed = FrozenEmbedding(b, "time_embed", rows: Self.timesteps, dimension: d, initialization: .sinusoidalTable)
        stage1 = stage("b1", "te1", [c, 10, 10, 10], 28)
        down1 = Conv2d(b, "down1", inChannels: 10, outChannels: 10, kernel: 4, stride: 2, padding: 1, height: 28, width: 28)
        stage2 = stage("b2", "te2", [10, 20, 20, 20], 14)
        down2 = Conv2d(b, "down2", inChannels: 20, outChannels: 20, kernel: 4, stride: 2, padding: 1, height: 14, width: 14)
        stage3 = stage("b3", "te3", [20, 40, 40, 40], 7)
        down3First = Conv2d(b, "down3.0", inChannels: 40, outChannels: 40, kernel: 2, stride: 1, padding: 0, height: 7, width: 7)
        down3Second = Conv2d(b, "down3.2", inChannels: 40, outChannels: 40, kernel: 4, stride: 2, padding: 1, height: 6, width: 6)
        stageMid = stage("b_mid", "te_mid", [40, 20, 20, 40], 3)
        up1First = ConvTranspose2d(b, "up1.0", inChannels: 40, outChannels: 40, kernel: 4, stride: 2, padding: 1, height: 3, width: 3)
        up1Second = ConvTranspose2d(b, "up1.2", inChannels: 40, outChannels: 40, kernel: 2, stride: 1, padding: 0, height: 6, width: 6)
        stage4 = stage("b4", "te4", [80, 40, 20, 20], 7)
        up2 = ConvTranspose2d(b, "up2", inChannels: 20, outChannels: 20, kernel: 4, stride: 2, padding: 1, height: 7, width: 7)
        stage5 = stage("b5", "te5", [40, 20, 10, 10], 14)
        up3 = ConvTranspose2d(b, "up3", inChannels: 10, outChannels: 10, kernel: 4, stride: 2, padding: 1, height: 14, width: 14)
        stageOut = stage("b_out", "te_out", [20, 10, 10, 10], 28, normalizeLast: false)
        convOut = Conv2d(b, "conv_out", inChannels: 10, outChannels: c, kernel: 3, padding: 1, height: 28, width: 28)
        parameterTable = b.parameters; bufferTable = b.buffers; convolutionPlan = b.convolutionPlan
        workspaceCount = b.workspace.count
        parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
        buffers = FloatBuffer(count: b.buffers.totalCount)

        let p28 = n * 28 * 28, p14 = n * 14 * 14, p7 = n * 7 * 7, p6 = n * 6 * 6, p3 = n * 3 * 3
        inputCNHW = b.activation(c * p28); inputGrad = b.gradient(c * p28)   // (the input's gradient is not used)
        outputCNHW = b.activation(c * p28)
        outputGradCNHW = b.activation(c * p28)   // the loss's gradient, converted: written, not added to
        embedding = b.activation(n * d)
        cat28 = b.activation(20 * p28); cat28Grad = b.gradient(20 * p28)
        cat14 = b.activation(40 * p14); cat14Grad = b.gradient(40 * p14)
        cat7 = b.activation(80 * p7); cat7Grad = b.gradient(80 * p7)
        down1Output = b.activation(10 * p14); down1OutputGrad = b.gradient(10 * p14)
        down2Output = b.activation(20 * p7); down2OutputGrad = b.gradient(20 * p7)
        down3Hidden = b.activation(40 * p6); down3Activated = b.activation(40 * p6); down3Output = b.activation(40 * p3)
        down3HiddenGrad = b.gradient(40 * p6); down3ActivatedGrad = b.gradient(40 * p6); down3OutputGrad = b.gradient(40 * p3)
        middle = b.activation(40 * p3); middleGrad = b.gradient(40 * p3)
        up1Hidden = b.activation(40 * p6); up1Activated = b.activation(40 * p6)
        up1HiddenGrad = b.gradient(40 * p6); up1ActivatedGrad = b.gradient(40 * p6)
        o4 = b.activation(20 * p7); o4Grad = b.gradient(20 * p7)
        o5 = b.activation(10 * p14); o5Grad = b.gradient(10 * p14)
        o = b.activation(10 * p28); oGrad = b.gradient(10 * p28)
        activationGradients = ActivationGradients(b)
    }

    public var sampleShape: [Int] { [inChannels, Self.side, Self.side] }

    public var multiplyAccumulatesPerSample: Int {
        [stage1, stage2, stage3, stageMid, stage4, stage5, stageOut].reduce(0) { $0 + $1.multiplyAccumulatesPerImage }
            + [down1, down2, down3First, down3Second, convOut].reduce(0) { $0 + $1.multiplyAccumulatesPerImage }
            + [up1First, up1Second, up2, up3].reduce(0) { $0 + $1.multiplyAccumulatesPerImage }
    }

    /// The second half of a concatenation whose first half holds `skipChannels` channels of `side`² for `batch` images.
    private func secondHalf(_ buffer: FloatBuffer, skipChannels: Int, side: Int, batch: Int) -> UnsafeMutablePointer<Float> {
        buffer.pointer + skipChannels * batch * side * side
    }

    public func forward(input: UnsafePointer<Float>, conditioning: Conditioning, output: UnsafeMutablePointer<Float>, batch: Int) {
        precondition(batch >= 1 && batch <= batchCapacity, "batch \(batch) outside 1...\(batchCapacity)")
        let m = pointers, e = UnsafePointer(embedding.pointer), plane = Self.side * Self.side
        nchwToCNHW(inputCNHW.pointer, input, batch: batch, channels: inChannels, plane: plane)
        timeEmbed.forward(m, output: embedding.pointer, indices: conditioning.timesteps, batch: batch)
        let o1 = cat28.pointer, o2 = cat14.pointer, o3 = cat7.pointer   // the skips: first halves
        stage1.forward(m, output: o1, input: inputCNHW.pointer, embedding: e, batch: batch)
        down1.forward(m, output: down1Output.pointer, input: o1, batch: batch)
        stage2.forward(m, output: o2, input: down1Output.pointer, embedding: e, batch: batch)
        down2.forward(m, output: down2Output.pointer, input: o2, batch: batch)
        stage3.forward(m, output: o3, input: down2Output.pointer, embedding: e, batch: batch)
        down3First.forward(m, output: down3Hidden.pointer, input: o3, batch: batch)
        activationForward(.silu, output: down3Activated.pointer, input: down3Hidden.pointer, count: 40 * batch * 36)
        down3Second.forward(m, output: down3Output.pointer, input: down3Activated.pointer, batch: batch)
        stageMid.forward(m, output: middle.pointer, input: down3Output.pointer, embedding: e, batch: batch)
        up1First.forward(m, output: up1Hidden.pointer, input: middle.pointer, batch: batch)
        activationForward(.silu, output: up1Activated.pointer, input: up1Hidden.pointer, count: 40 * batch * 36)
        up1Second.forward(m, output: secondHalf(cat7, skipChannels: 40, side: 7, batch: batch), input: up1Activated.pointer, batch: batch)
        stage4.forward(m, output: o4.pointer, input: cat7.pointer, embedding: e, batch: batch)
        up2.forward(m, output: secondHalf(cat14, skipChannels: 20, side: 14, batch: batch), input: o4.pointer, batch: batch)
        stage5.forward(m, output: o5.pointer, input: cat14.pointer, embedding: e, batch: batch)
        up3.forward(m, output: secondHalf(cat28, skipChannels: 10, side: 28, batch: batch), input: o5.pointer, batch: batch)
        stageOut.forward(m, output: o.pointer, input: cat28.pointer, embedding: e, batch: batch)
        convOut.forward(m, output: outputCNHW.pointer, input: o.pointer, batch: batch)
        cnhwToNCHW(output, outputCNHW.pointer, batch: batch, channels: inChannels, plane: plane)
        lastBatch = batch
    }

    public func backward(outputGrad: UnsafePointer<Float>) {
        let m = pointers, batch = lastBatch, e = UnsafePointer(embedding.pointer), plane = Self.side * Self.side
        activationGradients.zero(batch: batch)
        nchwToCNHW(outputGradCNHW.pointer, outputGrad, batch: batch, channels: inChannels, plane: plane)
        let o1Grad = cat28Grad.pointer, o2Grad = cat14Grad.pointer, o3Grad = cat7Grad.pointer
        convOut.backward(m, inputGrad: oGrad.pointer, outputGrad: outputGradCNHW.pointer, input: o.pointer, batch: batch)
        stageOut.backward(m, inputGrad: cat28Grad.pointer, outputGrad: oGrad.pointer, embedding: e, batch: batch)
        up3.backward(m, inputGrad: o5Grad.pointer, outputGrad: secondHalf(cat28Grad, skipChannels: 10, side: 28, batch: batch),
                     input: o5.pointer, batch: batch)
        stage5.backward(m, inputGrad: cat14Grad.pointer, outputGrad: o5Grad.pointer, embedding: e, batch: batch)
        up2.backward(m, inputGrad: o4Grad.pointer, outputGrad: secondHalf(cat14Grad, skipChannels: 20, side: 14, batch: batch),
                     input: o4.pointer, batch: batch)
        stage4.backward(m, inputGrad: cat7Grad.pointer, outputGrad: o4Grad.pointer, embedding: e, batch: batch)
        up1Second.backward(m, inputGrad: up1ActivatedGrad.pointer, outputGrad: secondHalf(cat7Grad, skipChannels: 40, side: 7, batch: batch),
                           input: up1Activated.pointer, batch: batch)
        activationBackward(.silu, inputGrad: up1HiddenGrad.pointer, outputGrad: up1ActivatedGrad.pointer, input: up1Hidden.pointer,
                           count: 40 * batch * 36)
        up1First.backward(m, inputGrad: middleGrad.pointer, outputGrad: up1HiddenGrad.pointer, input: middle.pointer, batch: batch)
        stageMid.backward(m, inputGrad: down3OutputGrad.pointer, outputGrad: middleGrad.pointer, embedding: e, batch: batch)
        down3Second.backward(m, inputGrad: down3ActivatedGrad.pointer, outputGrad: down3OutputGrad.pointer, input: down3Activated.pointer,
                             batch: batch)
        activationBackward(.silu, inputGrad: down3HiddenGrad.pointer, outputGrad: down3ActivatedGrad.pointer, input: down3Hidden.pointer,
                           count: 40 * batch * 36)
        // d(o3) holds the decoder's share (from cat7); the down-sampling adds its own.
        down3First.backward(m, inputGrad: o3Grad, outputGrad: down3HiddenGrad.pointer, input: cat7.pointer, batch: batch)
        stage3.backward(m, inputGrad: down2OutputGrad.pointer, outputGrad: o3Grad, embedding: e, batch: batch)
        down2.backward(m, inputGrad: o2Grad, outputGrad: down2OutputGrad.pointer, input: cat14.pointer, batch: batch)
        stage2.backward(m, inputGrad: down1OutputGrad.pointer, outputGrad: o2Grad, embedding: e, batch: batch)
        down1.backward(m, inputGrad: o1Grad, outputGrad: down1OutputGrad.pointer, input: cat28.pointer, batch: batch)
        stage1.backward(m, inputGrad: inputGrad.pointer, outputGrad: o1Grad, embedding: e, batch: batch)
    }
}
