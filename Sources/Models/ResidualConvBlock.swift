import Tensor

/// ContextUnet's ResidualConvBlock(i → o) at one resolution: two stages `conv1`, `conv2` of
/// [`.0` Conv3x3 p1, `.1` BatchNorm2d, GELU] (the GELU fused into the BatchNorm), h = conv2(conv1(x)).
/// With `residual`, out = (s + h)/1.414 where s = x when i = o and otherwise a learned 1×1 `shortcut`
/// convolution (ZOO.md §2, deviation 1: the course built a fresh random one in every forward pass).
/// Activations CNHW, sized once for the model's batch capacity.
final class ResidualConvBlock {
    /// The course divides by this literal, not by √2.
    static let residualScale: Float = 1 / 1.414
    let conv1: Conv2d, bn1: BatchNormLayer, conv2: Conv2d, bn2: BatchNormLayer
    /// Registered after the two stages, so its backward runs first (the gradient-ready order, Layer.swift).
    let shortcut: Conv2d?
    let residual: Bool
    let inChannels, outChannels, height, width: Int
    private let conv1Output, hidden, conv2Output, branch: FloatBuffer   // [o, N, H, W]
    private let conv1OutputGrad, hiddenGrad, conv2OutputGrad, scaledGrad: FloatBuffer
    private let shortcutOutput: FloatBuffer?
    private let conv1Moments, conv2Moments: DoubleBuffer

    init(_ b: ModelBuilder, _ name: String, inChannels: Int, outChannels: Int, height: Int, width: Int, residual: Bool) {
        self.inChannels = inChannels; self.outChannels = outChannels; self.height = height; self.width = width
        self.residual = residual
        conv1 = Conv2d(b, "\(name).conv1.0", inChannels: inChannels, outChannels: outChannels, kernel: 3, height: height, width: width)
        bn1 = BatchNormLayer(b, "\(name).conv1.1", channels: outChannels, activation: .gelu)
        conv2 = Conv2d(b, "\(name).conv2.0", inChannels: outChannels, outChannels: outChannels, kernel: 3, height: height, width: width)
        bn2 = BatchNormLayer(b, "\(name).conv2.1", channels: outChannels, activation: .gelu)
        shortcut = residual && inChannels != outChannels
            ? Conv2d(b, "\(name).shortcut", inChannels: inChannels, outChannels: outChannels, kernel: 1, height: height, width: width)
            : nil
        let count = conv1.outputCount
        conv1Output = b.activation(count); hidden = b.activation(count); conv2Output = b.activation(count)
        branch = b.activation(residual ? count : 0)
        shortcutOutput = shortcut.map { _ in b.activation(count) }
        conv1OutputGrad = b.gradient(count); hiddenGrad = b.gradient(count); conv2OutputGrad = b.gradient(count)
        scaledGrad = b.activation(residual ? count : 0)   // written, not added to: outputGrad / 1.414
        conv1Moments = DoubleBuffer(count: 2 * outChannels); conv2Moments = DoubleBuffer(count: 2 * outChannels)
    }

    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int, training: Bool) {
        let perChannel = batch * height * width, count = outChannels * perChannel
        conv1.forward(m, output: conv1Output.pointer, input: input, batch: batch, moments: training ? conv1Moments.pointer : nil)
        bn1.forward(m, output: hidden.pointer, input: conv1Output.pointer, valuesPerChannel: perChannel, training: training,
                    moments: conv1Moments.pointer)
        conv2.forward(m, output: conv2Output.pointer, input: hidden.pointer, batch: batch, moments: training ? conv2Moments.pointer : nil)
        guard residual else {
            bn2.forward(m, output: output, input: conv2Output.pointer, valuesPerChannel: perChannel, training: training,
                        moments: conv2Moments.pointer)
            return
        }
        bn2.forward(m, output: branch.pointer, input: conv2Output.pointer, valuesPerChannel: perChannel, training: training,
                    moments: conv2Moments.pointer)
        var skip = input
        if let shortcut, let shortcutOutput {
            shortcut.forward(m, output: shortcutOutput.pointer, input: input, batch: batch)
            skip = UnsafePointer(shortcutOutput.pointer)
        }
        let h = branch.pointer, scale = Self.residualScale
        for i in 0..<count { output[i] = (skip[i] + h[i]) * scale }
    }

    /// Adds into `inputGrad` (the gradient rule, Layer.swift); nil when the input is the model's.
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>?, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, batch: Int) {
        let perChannel = batch * height * width, count = outChannels * perChannel
        var branchGrad = outputGrad
        if residual {
            let g = scaledGrad.pointer, scale = Self.residualScale
            for i in 0..<count { g[i] = outputGrad[i] * scale }
            if let shortcut {
                shortcut.backward(m, inputGrad: inputGrad, outputGrad: g, input: input, batch: batch)
            } else if let inputGrad {
                addInPlace(inputGrad, g, count: count)
            }
            branchGrad = UnsafePointer(g)
        }
        bn2.backward(m, inputGrad: conv2OutputGrad.pointer, outputGrad: branchGrad, input: conv2Output.pointer, valuesPerChannel: perChannel)
        conv2.backward(m, inputGrad: hiddenGrad.pointer, outputGrad: conv2OutputGrad.pointer, input: hidden.pointer, batch: batch)
        bn1.backward(m, inputGrad: conv1OutputGrad.pointer, outputGrad: hiddenGrad.pointer, input: conv1Output.pointer, valuesPerChannel: perChannel)
        conv1.backward(m, inputGrad: inputGrad, outputGrad: conv1OutputGrad.pointer, input: input, batch: batch)
    }

    var multiplyAccumulatesPerImage: Int {
        conv1.multiplyAccumulatesPerImage + conv2.multiplyAccumulatesPerImage + (shortcut?.multiplyAccumulatesPerImage ?? 0)
    }
}
