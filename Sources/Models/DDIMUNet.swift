import Tensor

/// The DDIM U-Net's sizes (ZOO.md §5): image channels C, widths w_0, …, w_L (a down and an up block for each
/// but the last, the bottleneck's) and the block depth D (residual blocks per down block, up block and bottleneck).
public struct DDIMUNetConfiguration: Sendable, Equatable {
    public let inChannels: Int
    public let widths: [Int]
    public let blockDepth: Int
    public init(inChannels: Int, widths: [Int] = Self.defaultWidths, blockDepth: Int = Self.defaultBlockDepth) {
        self.inChannels = inChannels; self.widths = widths; self.blockDepth = blockDepth
    }

    /// keras.io's DDIM widths and block depth.
    public static let defaultWidths = [32, 64, 96, 128]
    public static let defaultBlockDepth = 2

    /// L: the number of average poolings (and of down and up blocks).
    public var levels: Int { widths.count - 1 }
}

extension DDIMUNetConfiguration {
    /// From a sample shape [C, H, W] and the user's options (unset: the defaults).
    init(_ shape: [Int], _ options: ModelOptions) {
        self.init(inChannels: shape[0], widths: options.channels ?? Self.defaultWidths,
                  blockDepth: options.blockDepth ?? Self.defaultBlockDepth)
    }
}

extension ModelArchitecture {
    public static let ddimUNet = ModelArchitecture(
        name: "ddim-unet", className: "DDIMUNet",
        summary: "keras.io's DDIM residual U-Net: affine-free BatchNorm, SiLU, average-pool down, bilinear up, noise-variance embedding; --channels (widths, default 32,64,96,128), --block-depth (default 2)",
        instances: [ModelInstance("ddim_unet", sampleShape: [1, 64, 64],
                                  options: ModelOptions(channels: DDIMUNetConfiguration.defaultWidths, blockDepth: DDIMUNetConfiguration.defaultBlockDepth)),
                    ModelInstance("ddim_unet_rgb", sampleShape: [3, 64, 64],
                                  options: ModelOptions(channels: DDIMUNetConfiguration.defaultWidths, blockDepth: DDIMUNetConfiguration.defaultBlockDepth))],
        options: [.channels, .blockDepth],
        validate: { shape, options in
            guard shape.count == 3 else { return "ddim-unet needs images [N, C, H, W]; /images is [N, \(shape.map(String.init).joined(separator: ", "))]" }
            let c = DDIMUNetConfiguration(shape, options), listed = c.widths.map(String.init).joined(separator: ",")
            guard c.widths.count >= 2 else { return "--channels \(listed): ddim-unet needs at least two widths, a down block's and the bottleneck's" }
            guard c.widths.allSatisfy({ $0 >= 1 }) else { return "--channels \(listed): ddim-unet's widths must be positive" }
            guard c.blockDepth >= 1 else { return "--block-depth \(c.blockDepth): ddim-unet needs at least one residual block per block" }
            let factor = 1 << c.levels
            guard shape[1] % factor == 0, shape[2] % factor == 0 else {
                return "images of \(shape[1])×\(shape[2]) cannot pass \(c.levels) average poolings of 2 in ddim-unet (--channels \(listed)): height and width must be divisible by \(factor) (prepare with --pad)"
            }
            return nil
        },
        build: { shape, options, capacity, convolutions in
            DDIMUNet(DDIMUNetConfiguration(shape, options), height: shape[1], width: shape[2], batchCapacity: capacity,
                     convolutionAlgorithm: convolutions.algorithm(for:))
        })
}

/// The residual U-Net of keras.io's DDIM example (seed 001, ZOO.md §5), L = widths.count − 1, D = block depth,
/// ν the noise variance (`conditioning.continuous`: noise_rate² under the continuous-time recipe, t/T else):
///   e = [sin(2π f ν), cos(2π f ν)] broadcast over H×W     [32, H]   (NoiseVarianceEmbedding.swift)
///   x = cat(input_conv Conv1x1(x), e)                      [w_0 + 32, H]
///   down_blocks.b: x = residuals.j(x), j < D, each output pushed; x = AvgPool2(x)    [w_b, H/2^b] → [w_b, H/2^{b+1}]
///   bottleneck.j: x = RB(x)                                [w_L, H/2^L]
///   up_blocks.u (level b = L−1−u): x = bilinear ×2 (align_corners=False)(x);
///                  residuals.k: x = RB(cat(x, pop))       [w_b, H/2^b]
///   ε̂ = output_conv Conv1x1(x), zero-initialised         [C, H]
/// Activations are CNHW. Each down block output is written straight into the second half of the
/// concatenation of the up residual that pops it, and each upsampling and up residual writes into the first
/// half of the next concatenation, so concatenating costs nothing; in backward the decoder adds its share of
/// a skip's gradient there first and the encoder's next layer (a residual or the pooling) adds its own.
/// The embedding has no parameters and ν is an input: nothing is differentiated through it.
public final class DDIMUNet: Denoiser {
    public let configuration: DDIMUNetConfiguration
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

    // In table order (= the state_dict's), whose reverse is the backward pass.
    private let inputConv: Conv2d
    private let downs: [[DDIMResidualBlock]]      // [b][j]
    private let bottleneck: [DDIMResidualBlock]   // [j]
    private let ups: [[DDIMResidualBlock]]        // [u][k]
    private let outputConv: Conv2d

    // Activations, CNHW; each *Grad its gradient.
    private let inputCNHW, outputCNHW, outputGradCNHW: FloatBuffer
    private let embedding: FloatBuffer                        // [N, 32]
    private let stem, stemGrad: FloatBuffer                   // [w_0 + 32, N, H, W]: input_conv's output, then e
    private let pooled, pooledGrad: [FloatBuffer]             // by down block b: [w_b, N, H/2^{b+1}, W/2^{b+1}]
    private let bottleneckOutput, bottleneckOutputGrad: [FloatBuffer]   // by j: [w_L, N, H/2^L, W/2^L]
    private let concat, concatGrad: [[FloatBuffer]]           // by up block u, residual k: [x, the popped skip]
    private let upOutput, upOutputGrad: [FloatBuffer]         // by up block u: its last residual's output [w_b, N, H/2^b, W/2^b]
    private let activationGradients: ActivationGradients
    private var lastBatch = 0

    /// Builds the model for images of `height`×`width` (divisible by 2^L) and batches up to `batchCapacity`;
    /// `convolutionAlgorithm` picks each convolution's algorithm from its shape.
    public init(_ c: DDIMUNetConfiguration, height: Int, width: Int, batchCapacity: Int,
                convolutionAlgorithm: @escaping (ConvShape) -> ConvolutionAlgorithmKind = { _ in .im2col }) {
        let levels = c.levels, w = c.widths, depth = c.blockDepth
        precondition(levels >= 1 && w.allSatisfy { $0 >= 1 } && depth >= 1, "ddim-unet needs two or more positive widths and depth ≥ 1")
        precondition(height % (1 << levels) == 0 && width % (1 << levels) == 0,
                     "image size \(height)×\(width) must be divisible by 2^L = \(1 << levels)")
        configuration = c; self.height = height; self.width = width; self.batchCapacity = batchCapacity
        let b = ModelBuilder(batchCapacity: batchCapacity), n = batchCapacity, e = noiseVarianceEmbeddingDimension
        b.convolutionAlgorithm = convolutionAlgorithm
        func block(_ name: String, _ i: Int, _ o: Int, level: Int) -> DDIMResidualBlock {
            DDIMResidualBlock(b, name, inChannels: i, outChannels: o, height: height >> level, width: width >> level)
        }
        inputConv = Conv2d(b, "input_conv", inChannels: c.inChannels, outChannels: w[0], kernel: 1, height: height, width: width)
        downs = (0..<levels).map { level in
            (0..<depth).map { j in
                let i = j > 0 ? w[level] : level == 0 ? w[0] + e : w[level - 1]
                return block("down_blocks.\(level).residuals.\(j)", i, w[level], level: level)
            }
        }
        bottleneck = (0..<depth).map { j in block("bottleneck.\(j)", j == 0 ? w[levels - 1] : w[levels], w[levels], level: levels) }
        ups = (0..<levels).map { u in
            let level = levels - 1 - u
            return (0..<depth).map { k in
                block("up_blocks.\(u).residuals.\(k)", Self.firstHalfChannels(c, u, k) + w[level], w[level], level: level)
            }
        }
        outputConv = Conv2d(b, "output_conv", inChannels: w[0], outChannels: c.inChannels, kernel: 1, height: height, width: width,
                            initialization: .zeros)
        parameterTable = b.parameters; bufferTable = b.buffers; convolutionPlan = b.convolutionPlan
        workspaceCount = b.workspace.count
        parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
        buffers = FloatBuffer(count: b.buffers.totalCount)

        func values(_ channels: Int, level: Int) -> Int { channels * n * (height >> level) * (width >> level) }
        let image = values(c.inChannels, level: 0)
        inputCNHW = b.activation(image); outputCNHW = b.activation(image)
        outputGradCNHW = b.activation(image)   // the loss's gradient, converted: written, not added to
        embedding = b.activation(n * e)
        stem = b.activation(values(w[0] + e, level: 0)); stemGrad = b.gradient(values(w[0] + e, level: 0))
        pooled = (0..<levels).map { b.activation(values(w[$0], level: $0 + 1)) }
        pooledGrad = (0..<levels).map { b.gradient(values(w[$0], level: $0 + 1)) }
        bottleneckOutput = (0..<depth).map { _ in b.activation(values(w[levels], level: levels)) }
        bottleneckOutputGrad = (0..<depth).map { _ in b.gradient(values(w[levels], level: levels)) }
        let concatCounts = (0..<levels).map { u in (0..<depth).map { k in values(Self.firstHalfChannels(c, u, k) + w[levels - 1 - u], level: levels - 1 - u) } }
        concat = concatCounts.map { $0.map { b.activation($0) } }
        concatGrad = concatCounts.map { $0.map { b.gradient($0) } }
        upOutput = (0..<levels).map { b.activation(values(w[levels - 1 - $0], level: levels - 1 - $0)) }
        upOutputGrad = (0..<levels).map { b.gradient(values(w[levels - 1 - $0], level: levels - 1 - $0)) }
        activationGradients = ActivationGradients(b)
    }

    /// Channels of x in up block u's residual k concatenation: the upsampled map (from the bottleneck or
    /// the up block below) for k = 0, the previous residual's output after.
    private static func firstHalfChannels(_ c: DDIMUNetConfiguration, _ u: Int, _ k: Int) -> Int {
        let level = c.levels - 1 - u
        return k > 0 ? c.widths[level] : c.widths[level + 1]
    }

    public var sampleShape: [Int] { [configuration.inChannels, height, width] }

    public var multiplyAccumulatesPerSample: Int {
        (Array(downs.joined()) + bottleneck + Array(ups.joined())).reduce(0) { $0 + $1.multiplyAccumulatesPerImage }
            + inputConv.multiplyAccumulatesPerImage + outputConv.multiplyAccumulatesPerImage
    }

    // MARK: where each activation lives, for `batch` images

    private func plane(_ level: Int) -> Int { (height >> level) * (width >> level) }

    /// Where down block `level`'s residual j writes: the second half of the up concatenation that pops it
    /// (the stack's last push, level L−1's residual D−1, is the first pop: up_blocks.0.residuals.0).
    private func downOutput(_ list: [[FloatBuffer]], _ level: Int, _ j: Int, batch: Int) -> UnsafeMutablePointer<Float> {
        let c = configuration, u = c.levels - 1 - level, k = c.blockDepth - 1 - j
        return list[u][k].pointer + Self.firstHalfChannels(c, u, k) * batch * plane(level)
    }

    /// What down block `level`'s residual j reads, and where its gradient goes.
    private func downInput(_ level: Int, _ j: Int, batch: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        if j > 0 { return (downOutput(concat, level, j - 1, batch: batch), downOutput(concatGrad, level, j - 1, batch: batch)) }
        return level == 0 ? (stem.pointer, stemGrad.pointer) : (pooled[level - 1].pointer, pooledGrad[level - 1].pointer)
    }

    /// What bottleneck j reads, and where its gradient goes.
    private func bottleneckInput(_ j: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        j == 0 ? (pooled[configuration.levels - 1].pointer, pooledGrad[configuration.levels - 1].pointer)
            : (bottleneckOutput[j - 1].pointer, bottleneckOutputGrad[j - 1].pointer)
    }

    /// What up block u upsamples (the bottleneck's or the up block below's output), and where its gradient goes.
    private func upsampleInput(_ u: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        u == 0 ? (bottleneckOutput[configuration.blockDepth - 1].pointer, bottleneckOutputGrad[configuration.blockDepth - 1].pointer)
            : (upOutput[u - 1].pointer, upOutputGrad[u - 1].pointer)
    }

    /// Where up block u's residual k writes: the first half of the next concatenation, or the block's output.
    private func upResidualOutput(_ u: Int, _ k: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        k + 1 < configuration.blockDepth ? (concat[u][k + 1].pointer, concatGrad[u][k + 1].pointer) : (upOutput[u].pointer, upOutputGrad[u].pointer)
    }

    // MARK: passes

    public func forward(input: UnsafePointer<Float>, conditioning: Conditioning, output: UnsafeMutablePointer<Float>, batch: Int) {
        precondition(batch >= 1 && batch <= batchCapacity, "batch \(batch) outside 1...\(batchCapacity)")
        let m = pointers, c = configuration, levels = c.levels, depth = c.blockDepth, w = c.widths, t = training
        nchwToCNHW(inputCNHW.pointer, input, batch: batch, channels: c.inChannels, plane: plane(0))
        inputConv.forward(m, output: stem.pointer, input: inputCNHW.pointer, batch: batch)
        noiseVarianceEmbedding(output: embedding.pointer, noiseVariance: conditioning.continuous, batch: batch)
        broadcastPerChannelForward(output: stem.pointer + w[0] * batch * plane(0), values: embedding.pointer,
                                   channels: noiseVarianceEmbeddingDimension, batch: batch, plane: plane(0))
        for level in 0..<levels {
            for j in 0..<depth {
                downs[level][j].forward(m, output: downOutput(concat, level, j, batch: batch), input: downInput(level, j, batch: batch).0,
                                        batch: batch, training: t)
            }
            avgPool2dForward(output: pooled[level].pointer, input: downOutput(concat, level, depth - 1, batch: batch),
                             planes: w[level] * batch, height: height >> level, width: width >> level, kernel: 2)
        }
        for j in 0..<depth {
            bottleneck[j].forward(m, output: bottleneckOutput[j].pointer, input: bottleneckInput(j).0, batch: batch, training: t)
        }
        for u in 0..<levels {
            let below = levels - u
            upsampleBilinearHalfPixel2xForward(output: concat[u][0].pointer, input: upsampleInput(u).0,
                                               planes: Self.firstHalfChannels(c, u, 0) * batch, height: height >> below, width: width >> below)
            for k in 0..<depth {
                ups[u][k].forward(m, output: upResidualOutput(u, k).0, input: concat[u][k].pointer, batch: batch, training: t)
            }
        }
        outputConv.forward(m, output: outputCNHW.pointer, input: upOutput[levels - 1].pointer, batch: batch)
        cnhwToNCHW(output, outputCNHW.pointer, batch: batch, channels: c.inChannels, plane: plane(0))
        lastBatch = batch
    }

    public func backward(outputGrad: UnsafePointer<Float>) {
        precondition(training, "backward needs a train-mode forward pass")
        let m = pointers, c = configuration, levels = c.levels, depth = c.blockDepth, w = c.widths, batch = lastBatch
        activationGradients.zero(batch: batch)
        nchwToCNHW(outputGradCNHW.pointer, outputGrad, batch: batch, channels: c.inChannels, plane: plane(0))
        outputConv.backward(m, inputGrad: upOutputGrad[levels - 1].pointer, outputGrad: outputGradCNHW.pointer,
                            input: upOutput[levels - 1].pointer, batch: batch)
        for u in (0..<levels).reversed() {
            for k in (0..<depth).reversed() {
                ups[u][k].backward(m, inputGrad: concatGrad[u][k].pointer, outputGrad: upResidualOutput(u, k).1,
                                   input: concat[u][k].pointer, batch: batch)
            }
            let below = levels - u
            upsampleBilinearHalfPixel2xBackward(inputGrad: upsampleInput(u).1, outputGrad: concatGrad[u][0].pointer,
                                                planes: Self.firstHalfChannels(c, u, 0) * batch, height: height >> below, width: width >> below)
        }
        for j in (0..<depth).reversed() {
            let (input, inputGrad) = bottleneckInput(j)
            bottleneck[j].backward(m, inputGrad: inputGrad, outputGrad: bottleneckOutputGrad[j].pointer, input: input, batch: batch)
        }
        for level in (0..<levels).reversed() {
            // A skip's gradient holds the decoder's share; the pooling, then the next residual, add theirs.
            avgPool2dBackward(inputGrad: downOutput(concatGrad, level, depth - 1, batch: batch), outputGrad: pooledGrad[level].pointer,
                              planes: w[level] * batch, height: height >> level, width: width >> level, kernel: 2)
            for j in (0..<depth).reversed() {
                let (input, inputGrad) = downInput(level, j, batch: batch)
                downs[level][j].backward(m, inputGrad: inputGrad, outputGrad: downOutput(concatGrad, level, j, batch: batch),
                                         input: input, batch: batch)
            }
        }
        // The first w_0 channels of the stem's gradient are input_conv's; the embedding's are not needed.
        inputConv.backward(m, inputGrad: nil, outputGrad: stemGrad.pointer, input: inputCNHW.pointer, batch: batch)
    }
}
