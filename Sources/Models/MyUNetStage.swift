import Tensor

/// One resolution of MyUNet (ZOO.md §4): y = b(x + te(e)[:, :, None, None]), with te the time MLP
/// `te*.0` Linear(d → i), SiLU, `te*.2` Linear(i → i) of the embedding row e [N, d], and b three MyBlocks
/// `b*.0`, `b*.1`, `b*.2` of channels i → c1 → c2 → c3 at H × W. Registered te first, then the blocks
/// (PyTorch's order, whose reverse is the backward pass's).
final class MyUNetStage {
    let timeMLP: EmbedFC
    let blocks: [MyBlock]
    let inChannels, height, width: Int
    /// x + te(e) [i, N, H, W] (the first block's input, kept for its backward), and the blocks' outputs between them.
    private let shifted, shiftedGrad: FloatBuffer
    private let between, betweenGrad: [FloatBuffer]

    /// `channels` = [i, c1, c2, c3]; the last block skips its LayerNorm unless `normalizeLast`.
    init(_ b: ModelBuilder, block name: String, timeMLP timeName: String, channels: [Int], timeDimension: Int,
         height: Int, width: Int, normalizeLast: Bool = true) {
        precondition(channels.count == 4, "a MyUNet stage has three blocks, got channels \(channels)")
        inChannels = channels[0]; self.height = height; self.width = width
        timeMLP = EmbedFC(b, first: "\(timeName).0", second: "\(timeName).2", inFeatures: timeDimension, outFeatures: channels[0],
                          activation: .silu)
        blocks = (0..<3).map { k in
            MyBlock(b, "\(name).\(k)", inChannels: channels[k], outChannels: channels[k + 1], height: height, width: width,
                    normalize: k < 2 || normalizeLast)
        }
        let plane = b.batchCapacity * height * width
        shifted = b.activation(channels[0] * plane); shiftedGrad = b.gradient(channels[0] * plane)
        between = [b.activation(channels[1] * plane), b.activation(channels[2] * plane)]
        betweenGrad = [b.gradient(channels[1] * plane), b.gradient(channels[2] * plane)]
    }

    var outChannels: Int { blocks[2].outChannels }

    /// output [c3, N, H, W] of input [i, N, H, W] and the embedding rows e [N, d].
    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                 embedding: UnsafePointer<Float>, batch: Int) {
        let plane = height * width
        timeMLP.forward(m, input: embedding, batch: batch)
        shifted.pointer.update(from: input, count: inChannels * batch * plane)
        addPerChannel(shifted.pointer, timeMLP.output.pointer, channels: inChannels, batch: batch, plane: plane)
        blocks[0].forward(m, output: between[0].pointer, input: shifted.pointer, batch: batch)
        blocks[1].forward(m, output: between[1].pointer, input: between[0].pointer, batch: batch)
        blocks[2].forward(m, output: output, input: between[1].pointer, batch: batch)
    }

    /// Adds into `inputGrad`; the embedding (a frozen lookup) gets no gradient.
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  embedding: UnsafePointer<Float>, batch: Int) {
        let plane = height * width
        blocks[2].backward(m, inputGrad: betweenGrad[1].pointer, outputGrad: outputGrad, input: between[1].pointer, batch: batch)
        blocks[1].backward(m, inputGrad: betweenGrad[0].pointer, outputGrad: betweenGrad[1].pointer, input: between[0].pointer, batch: batch)
        blocks[0].backward(m, inputGrad: shiftedGrad.pointer, outputGrad: betweenGrad[0].pointer, input: shifted.pointer, batch: batch)
        // d(x + te) reaches x unchanged and te summed over each plane.
        addInPlace(inputGrad, shiftedGrad.pointer, count: inChannels * batch * plane)
        addPerChannelBackward(addGrad: timeMLP.outputGrad.pointer, xGrad: shiftedGrad.pointer, channels: inChannels, batch: batch, plane: plane)
        timeMLP.backward(m, input: embedding, batch: batch)
    }

    var multiplyAccumulatesPerImage: Int { timeMLP.multiplyAccumulatesPerImage + blocks.reduce(0) { $0 + $1.multiplyAccumulatesPerImage } }
}
