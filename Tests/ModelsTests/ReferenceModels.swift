import Foundation
import Tensor
@testable import Models

// Independent, naive Double-precision implementations of the two denoisers' forward passes, written
// from the architecture description (SPEC §1 / the PyTorch seed), NCHW throughout, sharing nothing with
// the Swift kernels but the parameter table (names and offsets) and the timestep embedding (an input).
// They give the end-to-end gradient checks an exact function to difference, free of Float rounding.

/// The seed's U-Net in Double, train-mode BatchNorm (batch statistics, biased variance, eps 1e-5).
struct ReferenceUNet {
    let configuration: UNetConfiguration
    let table: ParameterTable
    let height, width, batch: Int
    let embedding: [Double]             // [N, 128]
    let input: [Double]                 // [N, C, H, W]

    init(model: UNetDenoiser, input: [Float], timesteps: [Int32], batch: Int) {
        configuration = model.configuration; table = model.parameterTable
        height = model.height; width = model.width; self.batch = batch
        var e = [Float](repeating: 0, count: batch * timeEmbeddingDimension)
        sinusoidalTimeEmbedding(output: &e, timesteps: timesteps, batch: batch)
        embedding = e.map(Double.init)
        self.input = input.map(Double.init)
    }

    /// An NCHW activation.
    struct Activation {
        var values: [Double]
        let channels, height, width: Int
    }

    /// The network's output, NCHW, for the flat parameter vector `p`.
    func output(_ p: [Double]) -> [Double] {
        p.withUnsafeBufferPointer { p in
            let c = configuration
            func param(_ name: String) -> UnsafeBufferPointer<Double> {
                let e = table.entry(named: name)!
                return UnsafeBufferPointer(rebasing: p[e.offset..<e.offset + e.count])
            }
            func conv(_ x: Activation, _ name: String, out: Int, kernel: Int) -> Activation {
                let w = param("\(name).weight"), b = param("\(name).bias")
                let (h, wd, cin, pad) = (x.height, x.width, x.channels, kernel / 2)
                var y = [Double](repeating: 0, count: batch * out * h * wd)
                x.values.withUnsafeBufferPointer { xs in
                    y.withUnsafeMutableBufferPointer { ys in
                        for n in 0..<batch {
                            for co in 0..<out {
                                let yo = ys.baseAddress! + (n * out + co) * h * wd
                                for i in 0..<h * wd { yo[i] = b[co] }
                                for ci in 0..<cin {
                                    let xi = xs.baseAddress! + (n * cin + ci) * h * wd
                                    for ky in 0..<kernel {
                                        for kx in 0..<kernel {
                                            let wv = w[((co * cin + ci) * kernel + ky) * kernel + kx]
                                            let dy = ky - pad, dx = kx - pad
                                            for oy in max(0, -dy)..<min(h, h - dy) {
                                                let row = xi + (oy + dy) * wd + dx, orow = yo + oy * wd
                                                for ox in max(0, -dx)..<min(wd, wd - dx) { orow[ox] += wv * row[ox] }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                return Activation(values: y, channels: out, height: h, width: wd)
            }
            func batchNormRelu(_ x: Activation, _ name: String) -> Activation {
                let g = param("\(name).weight"), b = param("\(name).bias")
                let plane = x.height * x.width, m = Double(batch * plane)
                var y = x.values
                for ch in 0..<x.channels {
                    var mean = 0.0
                    for n in 0..<batch { for i in 0..<plane { mean += x.values[(n * x.channels + ch) * plane + i] } }
                    mean /= m
                    var variance = 0.0
                    for n in 0..<batch { for i in 0..<plane { let d = x.values[(n * x.channels + ch) * plane + i] - mean; variance += d * d } }
                    variance /= m
                    let invStd = 1 / (variance + 1e-5).squareRoot()
                    for n in 0..<batch {
                        for i in 0..<plane {
                            let k = (n * x.channels + ch) * plane + i
                            y[k] = max(0, g[ch] * (x.values[k] - mean) * invStd + b[ch])
                        }
                    }
                }
                return Activation(values: y, channels: x.channels, height: x.height, width: x.width)
            }
            func block(_ x: Activation, _ name: String, out: Int) -> Activation {
                var h = batchNormRelu(conv(x, "\(name).conv1", out: out, kernel: 3), "\(name).bn1")
                let w = param("\(name).time_mlp.weight"), b = param("\(name).time_mlp.bias")
                let plane = h.height * h.width
                for n in 0..<batch {
                    for co in 0..<out {
                        var s = b[co]
                        for k in 0..<timeEmbeddingDimension { s += w[co * timeEmbeddingDimension + k] * embedding[n * timeEmbeddingDimension + k] }
                        for i in 0..<plane { h.values[(n * out + co) * plane + i] += s }
                    }
                }
                return batchNormRelu(conv(h, "\(name).conv2", out: out, kernel: 3), "\(name).bn2")
            }
            func maxPool(_ x: Activation) -> Activation {
                let (oh, ow) = (x.height / 2, x.width / 2)
                var y = [Double](repeating: 0, count: batch * x.channels * oh * ow)
                for p in 0..<batch * x.channels {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let at = p * x.height * x.width + 2 * oy * x.width + 2 * ox
                            y[(p * oh + oy) * ow + ox] = max(max(x.values[at], x.values[at + 1]),
                                                             max(x.values[at + x.width], x.values[at + x.width + 1]))
                        }
                    }
                }
                return Activation(values: y, channels: x.channels, height: oh, width: ow)
            }
            func upsample(_ x: Activation) -> Activation {
                let (oh, ow) = (2 * x.height, 2 * x.width)
                func source(_ o: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Double) {
                    let s = Double(o) * Double(inSize - 1) / Double(outSize - 1)
                    let i0 = Int(s.rounded(.down))
                    return (i0, min(i0 + 1, inSize - 1), s - Double(i0))
                }
                var y = [Double](repeating: 0, count: batch * x.channels * oh * ow)
                for p in 0..<batch * x.channels {
                    let xp = p * x.height * x.width
                    for oy in 0..<oh {
                        let (y0, y1, ly) = source(oy, x.height, oh)
                        for ox in 0..<ow {
                            let (x0, x1, lx) = source(ox, x.width, ow)
                            let top = (1 - lx) * x.values[xp + y0 * x.width + x0] + lx * x.values[xp + y0 * x.width + x1]
                            let bottom = (1 - lx) * x.values[xp + y1 * x.width + x0] + lx * x.values[xp + y1 * x.width + x1]
                            y[(p * oh + oy) * ow + ox] = (1 - ly) * top + ly * bottom
                        }
                    }
                }
                return Activation(values: y, channels: x.channels, height: oh, width: ow)
            }
            func concat(_ a: Activation, _ b: Activation) -> Activation {
                let plane = a.height * a.width
                var y: [Double] = []
                y.reserveCapacity(a.values.count + b.values.count)
                for n in 0..<batch {
                    y += a.values[n * a.channels * plane..<(n + 1) * a.channels * plane]
                    y += b.values[n * b.channels * plane..<(n + 1) * b.channels * plane]
                }
                return Activation(values: y, channels: a.channels + b.channels, height: a.height, width: a.width)
            }

            var current = conv(Activation(values: input, channels: c.inChannels, height: height, width: width),
                               "init_conv", out: c.baseChannels, kernel: 3)
            var skips: [Activation] = []
            for i in 0..<c.depth {
                let s = block(current, "down\(i + 1)", out: c.channels(i + 1))
                skips.append(s)
                current = maxPool(s)
            }
            current = block(current, "bottleneck", out: c.channels(c.depth))
            for j in 0..<c.depth {
                let i = c.depth - 1 - j
                current = block(concat(upsample(current), skips[i]), "up_block\(j + 1)", out: c.channels(i))
            }
            return conv(current, "out_conv", out: c.inChannels, kernel: 1).values
        }
    }
}

/// The MLP denoiser in Double: [x, t/T] → Linear → ReLU → Linear → ReLU → Linear. Also reports the
/// pre-activations of both hidden layers, so a test can tell how far each ReLU is from its kink.
struct ReferenceMLP {
    let dimension, hidden, batch: Int
    let table: ParameterTable
    let features: [Double]              // [N, dim + 1]

    init(model: MLPDenoiser, input: [Float], timesteps: [Int32], batch: Int) {
        dimension = model.dimension; hidden = model.hidden; self.batch = batch; table = model.parameterTable
        var f: [Double] = []
        for n in 0..<batch {
            f += input[n * model.dimension..<(n + 1) * model.dimension].map(Double.init)
            f.append(Double(Float(timesteps[n]) / Float(1000)))   // the feature is formed in Float
        }
        features = f
    }

    func forward(_ p: [Double]) -> (output: [Double], z1: [Double], z2: [Double]) {
        p.withUnsafeBufferPointer { p in
            func linear(_ x: [Double], _ name: String, inF: Int, outF: Int) -> [Double] {
                let w = p.baseAddress! + table.entry(named: "\(name).weight")!.offset
                let b = p.baseAddress! + table.entry(named: "\(name).bias")!.offset
                var y = [Double](repeating: 0, count: batch * outF)
                x.withUnsafeBufferPointer { x in
                    y.withUnsafeMutableBufferPointer { y in
                        for n in 0..<batch {
                            let xn = x.baseAddress! + n * inF
                            for o in 0..<outF {
                                var s = b[o]
                                let wo = w + o * inF
                                for i in 0..<inF { s += wo[i] * xn[i] }
                                y[n * outF + o] = s
                            }
                        }
                    }
                }
                return y
            }
            let z1 = linear(features, "net.0", inF: dimension + 1, outF: hidden)
            let z2 = linear(z1.map { max($0, 0) }, "net.2", inF: hidden, outF: hidden)
            return (linear(z2.map { max($0, 0) }, "net.4", inF: hidden, outF: dimension), z1, z2)
        }
    }
}

/// mean((output − target)²) in Double.
func meanSquaredError(_ output: [Double], _ target: [Float]) -> Double {
    var s = 0.0
    for i in output.indices { let d = output[i] - Double(target[i]); s += d * d }
    return s / Double(output.count)
}

func meanSquaredError(_ output: [Float], _ target: [Float]) -> Double {
    var s = 0.0
    for i in output.indices { let d = Double(output[i]) - Double(target[i]); s += d * d }
    return s / Double(output.count)
}
