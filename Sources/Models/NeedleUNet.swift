import Tensor

/// The needle U-Net's sizes (ZOO.md §3): image channels C, channels c_0 < … < c_L (one pooling per level
/// after the first) and the sinusoidal time-embedding width d.
public struct NeedleUNetConfiguration: Sendable, Equatable {
    public let inChannels: Int
    public let channels: [Int]
    public let timeDimension: Int
    public init(inChannels: Int, channels: [Int] = Self.defaultChannels, timeDimension: Int = Self.defaultTimeDimension) {
        self.inChannels = inChannels; self.channels = channels; self.timeDimension = timeDimension
    }

    /// The lineage's default channels and d.
    public static let defaultChannels = [64, 128, 256, 512, 1024]
    public static let defaultTimeDimension = 32

    /// L: the number of poolings (and of down and up blocks).
    public var levels: Int { channels.count - 1 }
}

extension NeedleUNetConfiguration {
    /// From a sample shape [C, H, W] and the user's options (unset: the defaults).
    init(_ shape: [Int], _ options: ModelOptions) {
        self.init(inChannels: shape[0], channels: options.channels ?? Self.defaultChannels,
                  timeDimension: options.timeDimension ?? Self.defaultTimeDimension)
    }
}

extension ModelArchitecture {
    public static let needleUNet = ModelArchitecture(
        name: "needle-unet", className: "NeedleUNet",
        summary: "the needle framework's U-Net: ReLU then BatchNorm, max-pool down, transposed convolutions up; --channels (c_0,…,c_L, default 64,128,256,512,1024), --time-dim (d, default 32)",
        instances: [ModelInstance("needle_unet", sampleShape: [3, 64, 64],
                                  options: ModelOptions(channels: NeedleUNetConfiguration.defaultChannels, timeDimension: 32)),
                    ModelInstance("needle_unet_small", sampleShape: [3, 64, 64], options: ModelOptions(channels: [32, 64, 128], timeDimension: 16))],
        options: [.channels, .timeDimension],
        validate: { shape, options in
            guard shape.count == 3 else { return "needle-unet needs images [N, C, H, W]; /images is [N, \(shape.map(String.init).joined(separator: ", "))]" }
            let c = NeedleUNetConfiguration(shape, options), listed = c.channels.map(String.init).joined(separator: ",")
            guard c.channels.count >= 2 else { return "--channels \(listed): needle-unet needs at least two levels, c_0,c_1" }
            guard c.channels.allSatisfy({ $0 >= 1 }) else { return "--channels \(listed): needle-unet's channels must be positive" }
            guard zip(c.channels, c.channels.dropFirst()).allSatisfy({ $0 < $1 }) else {
                return "--channels \(listed): needle-unet's channels must increase strictly, c_0 < … < c_L"
            }
            guard c.timeDimension >= 4, c.timeDimension % 2 == 0 else {
                return "--time-dim \(c.timeDimension): needle-unet's sinusoidal embedding width must be even and at least 4"
            }
            let factor = 1 << c.levels
            guard shape[1] % factor == 0, shape[2] % factor == 0 else {
                return "images of \(shape[1])×\(shape[2]) cannot pass \(c.levels) poolings of 2 in needle-unet (--channels \(listed)): height and width must be divisible by \(factor) (prepare with --pad)"
            }
            return nil
        },
        build: { shape, options, capacity, convolutions in
            NeedleUNet(NeedleUNetConfiguration(shape, options), height: shape[1], width: shape[2], batchCapacity: capacity,
                       convolutionAlgorithm: convolutions.algorithm(for:))
        })
}

/// The U-Net of the needle framework's diffusion seed (ZOO.md §3), L = channels.count − 1:
///   τ = ReLU(time_mlp.1(sinusoid_d(t)))              t the raw integer step (`conditioning.timesteps`)
///   x = conv0 x                                       [c_0, H]
///   downs.i: x = UnetBlock(c_i → c_{i+1})(x, τ) = r_i [c_{i+1}, H/2^{i+1}]   (MaxPool inside the block)
///   ups.j:   x = UnetBlock(2c_{L−j} → c_{L−j−1}, up)(cat(x, r_{L−1−j}), τ)  [c_{L−j−1}, H/2^{L−j−1}]
///   ε̂ = output x (1×1)                                [C, H]
/// ups.0 sees cat(r_{L−1}, r_{L−1}): the bottom output joined with itself (there is no bottleneck).
/// Activations are CNHW. Each skip r_i is written by its down block straight into the second half of the
/// concatenation that reads it, and each up block writes into the first half of the next one's, so
/// concatenating costs nothing; in backward the decoder adds its share of d(r_i) there first and the
/// encoder's next block adds its own (the gradient rule, Layer.swift).
public final class NeedleUNet: Denoiser {
    public let configuration: NeedleUNetConfiguration
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

    // In table order, whose reverse is the backward pass: time_mlp.1 first, as every block adds into d(τ).
    private let timeMLP: LinearLayer
    private let conv0: Conv2d
    private let downs: [NeedleUNetBlock], ups: [NeedleUNetBlock]
    private let outputConv: Conv2d   // `output`, the 1×1 convolution

    // Activations, CNHW; each *Grad its gradient.
    private let inputCNHW, outputCNHW, outputGradCNHW: FloatBuffer
    private let sinusoid: FloatBuffer                          // [N, d]
    private let timeEmbedding, timeEmbeddingGrad, timeHiddenGrad: FloatBuffer   // [N, d]: τ, ReLU run in place
    private let conv0Output, conv0OutputGrad: FloatBuffer      // [c_0, N, H, W]
    private let concat, concatGrad: [FloatBuffer]              // by up block j: [2·c_{L−j}, N, H/2^{L−j}, W/2^{L−j}]
    private let lastUpOutput, lastUpOutputGrad: FloatBuffer    // [c_0, N, H, W]
    private let activationGradients: ActivationGradients
    private var lastBatch = 0

    /// Builds the model for images of `height`×`width` (divisible by 2^L) and batches up to `batchCapacity`;
    /// `convolutionAlgorithm` picks each convolution's algorithm from its shape.
    public init(_ c: NeedleUNetConfiguration, height: Int, width: Int, batchCapacity: Int,
                convolutionAlgorithm: @escaping (ConvShape) -> ConvolutionAlgorithmKind = { _ in .im2col }) {
        let levels = c.levels, ch = c.channels
        precondition(levels >= 1 && zip(ch, ch.dropFirst()).allSatisfy { $0 < $1 }, "needle-unet needs increasing channels, got \(ch)")
        precondition(c.timeDimension >= 4 && c.timeDimension % 2 == 0, "needle-unet needs an even time dimension ≥ 4, got \(c.timeDimension)")
        precondition(height % (1 << levels) == 0 && width % (1 << levels) == 0,
                     "image size \(height)×\(width) must be divisible by 2^L = \(1 << levels)")
        configuration = c; self.height = height; self.width = width; self.batchCapacity = batchCapacity
        let b = ModelBuilder(batchCapacity: batchCapacity), n = batchCapacity, d = c.timeDimension
        b.convolutionAlgorithm = convolutionAlgorithm
        timeMLP = LinearLayer(b, "time_mlp.1", inFeatures: d, outFeatures: d)
        conv0 = Conv2d(b, "conv0", inChannels: c.inChannels, outChannels: ch[0], kernel: 3, height: height, width: width)
        downs = (0..<levels).map { i in
            NeedleUNetBlock(b, "downs.\(i)", inChannels: ch[i], outChannels: ch[i + 1], timeDimension: d,
                            height: height >> i, width: width >> i, direction: .down)
        }
        ups = (0..<levels).map { j in
            NeedleUNetBlock(b, "ups.\(j)", inChannels: 2 * ch[levels - j], outChannels: ch[levels - j - 1], timeDimension: d,
                            height: height >> (levels - j), width: width >> (levels - j), direction: .up)
        }
        outputConv = Conv2d(b, "output", inChannels: ch[0], outChannels: c.inChannels, kernel: 1, height: height, width: width)
        parameterTable = b.parameters; bufferTable = b.buffers; convolutionPlan = b.convolutionPlan
        workspaceCount = b.workspace.count
        parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
        buffers = FloatBuffer(count: b.buffers.totalCount)

        let image = c.inChannels * n * height * width
        inputCNHW = b.activation(image); outputCNHW = b.activation(image)
        outputGradCNHW = b.activation(image)   // the loss's gradient, converted: written, not added to
        sinusoid = b.activation(n * d); timeEmbedding = b.activation(n * d)
        timeEmbeddingGrad = b.gradient(n * d); timeHiddenGrad = b.gradient(n * d)
        conv0Output = b.activation(conv0.outputCount); conv0OutputGrad = b.gradient(conv0.outputCount)
        let concatCounts = (0..<levels).map { j in 2 * ch[levels - j] * n * (height >> (levels - j)) * (width >> (levels - j)) }
        concat = concatCounts.map { b.activation($0) }
        concatGrad = concatCounts.map { b.gradient($0) }
        lastUpOutput = b.activation(ch[0] * n * height * width); lastUpOutputGrad = b.gradient(ch[0] * n * height * width)
        activationGradients = ActivationGradients(b)
    }

    public var sampleShape: [Int] { [configuration.inChannels, height, width] }

    public var multiplyAccumulatesPerSample: Int {
        (downs + ups).reduce(0) { $0 + $1.multiplyAccumulatesPerImage } + timeMLP.inFeatures * timeMLP.outFeatures
            + conv0.multiplyAccumulatesPerImage + outputConv.multiplyAccumulatesPerImage
    }

    /// The first and second halves of up block j's concatenation for `batch` images: x, and the skip.
    private func halves(_ list: [FloatBuffer], _ j: Int, batch: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        let levels = configuration.levels
        let half = configuration.channels[levels - j] * batch * (height >> (levels - j)) * (width >> (levels - j))
        return (list[j].pointer, list[j].pointer + half)
    }

    /// Where downs.i writes r_i: the second half of the concatenation of ups.{L−1−i}, which pops it.
    private func skip(_ list: [FloatBuffer], _ i: Int, batch: Int) -> UnsafeMutablePointer<Float> {
        halves(list, configuration.levels - 1 - i, batch: batch).1
    }

    /// What downs.i reads (the previous block's output, or conv0's) and where its gradient goes.
    private func downInput(_ i: Int, batch: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        i == 0 ? (conv0Output.pointer, conv0OutputGrad.pointer) : (skip(concat, i - 1, batch: batch), skip(concatGrad, i - 1, batch: batch))
    }

    /// Where ups.j writes: the first half of the next up block's concatenation, or the last up output.
    private func upOutput(_ j: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        j + 1 < configuration.levels ? (concat[j + 1].pointer, concatGrad[j + 1].pointer) : (lastUpOutput.pointer, lastUpOutputGrad.pointer)
    }

    public func forward(input: UnsafePointer<Float>, conditioning: Conditioning, output: UnsafeMutablePointer<Float>, batch: Int) {
        precondition(batch >= 1 && batch <= batchCapacity, "batch \(batch) outside 1...\(batchCapacity)")
        let m = pointers, c = configuration, levels = c.levels, plane = height * width, d = c.timeDimension, t = training
        nchwToCNHW(inputCNHW.pointer, input, batch: batch, channels: c.inChannels, plane: plane)
        sinusoidalTimeEmbedding(output: sinusoid.pointer, timesteps: conditioning.timesteps, batch: batch, dimension: d)
        timeMLP.forward(m, output: timeEmbedding.pointer, input: sinusoid.pointer, batch: batch)
        reluForward(output: timeEmbedding.pointer, input: timeEmbedding.pointer, count: batch * d)
        let tau = UnsafePointer(timeEmbedding.pointer)
        conv0.forward(m, output: conv0Output.pointer, input: inputCNHW.pointer, batch: batch)
        for i in 0..<levels {
            downs[i].forward(m, output: skip(concat, i, batch: batch), input: downInput(i, batch: batch).0, timeEmbedding: tau,
                             batch: batch, training: t)
        }
        // ups.0 reads cat(r_{L−1}, r_{L−1}): the bottom output sits in its second half already.
        let (bottomCopy, bottom) = halves(concat, 0, batch: batch)
        bottomCopy.update(from: bottom, count: bottom - bottomCopy)
        for j in 0..<levels {
            ups[j].forward(m, output: upOutput(j).0, input: concat[j].pointer, timeEmbedding: tau, batch: batch, training: t)
        }
        outputConv.forward(m, output: outputCNHW.pointer, input: lastUpOutput.pointer, batch: batch)
        cnhwToNCHW(output, outputCNHW.pointer, batch: batch, channels: c.inChannels, plane: plane)
        lastBatch = batch
    }

    public func backward(outputGrad: UnsafePointer<Float>) {
        precondition(training, "backward needs a train-mode forward pass")
        let m = pointers, c = configuration, levels = c.levels, batch = lastBatch, plane = height * width
        let tau = UnsafePointer(timeEmbedding.pointer), tauGrad = timeEmbeddingGrad.pointer
        activationGradients.zero(batch: batch)
        nchwToCNHW(outputGradCNHW.pointer, outputGrad, batch: batch, channels: c.inChannels, plane: plane)
        outputConv.backward(m, inputGrad: lastUpOutputGrad.pointer, outputGrad: outputGradCNHW.pointer, input: lastUpOutput.pointer, batch: batch)
        for j in (0..<levels).reversed() {
            ups[j].backward(m, inputGrad: concatGrad[j].pointer, outputGrad: upOutput(j).1, input: concat[j].pointer,
                            timeEmbedding: tau, timeEmbeddingGrad: tauGrad, batch: batch)
        }
        // r_{L−1} was read twice by ups.0: its gradient is the sum of both halves'.
        let (bottomCopyGrad, bottomGrad) = halves(concatGrad, 0, batch: batch)
        addInPlace(bottomGrad, bottomCopyGrad, count: bottomGrad - bottomCopyGrad)
        for i in (0..<levels).reversed() {
            // d(r_i) holds the decoder's share and, below the bottom, downs.{i+1}'s.
            let (input, inputGrad) = downInput(i, batch: batch)
            downs[i].backward(m, inputGrad: inputGrad, outputGrad: skip(concatGrad, i, batch: batch), input: input,
                              timeEmbedding: tau, timeEmbeddingGrad: tauGrad, batch: batch)
        }
        conv0.backward(m, inputGrad: nil, outputGrad: conv0OutputGrad.pointer, input: inputCNHW.pointer, batch: batch)
        // d(τ) is complete: every block has added its share.
        reluBackward(inputGrad: timeHiddenGrad.pointer, outputGrad: tauGrad, output: tau, count: batch * c.timeDimension)
        timeMLP.backward(m, inputGrad: nil, outputGrad: timeHiddenGrad.pointer, input: sinusoid.pointer, batch: batch)
    }
}
