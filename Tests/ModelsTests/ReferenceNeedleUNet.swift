import Foundation
import Tensor
@testable import Models

/// The needle U-Net (ZOO.md §3) in Double, NCHW, written from the architecture description and sharing
/// nothing with the Swift kernels but the parameter table (names and offsets) and the sinusoid (an
/// input): the exact function the gradient check differences. BatchNorm in train mode (batch statistics,
/// biased variance, eps 1e-5).
struct ReferenceNeedleUNet {
    let configuration: NeedleUNetConfiguration
    let table: ParameterTable
    let height, width, batch: Int
    let sinusoid: [Double]              // [N, d]
    let input: [Double]                 // [N, C, H, W]

    init(model: NeedleUNet, input: [Float], timesteps: [Int32], batch: Int) {
        configuration = model.configuration; table = model.parameterTable
        height = model.height; width = model.width; self.batch = batch
        let d = model.configuration.timeDimension
        var e = [Float](repeating: 0, count: batch * d)
        sinusoidalTimeEmbedding(output: &e, timesteps: timesteps, batch: batch, dimension: d)
        sinusoid = e.map(Double.init)
        self.input = input.map(Double.init)
    }

    /// An NCHW activation.
    struct Activation {
        var values: [Double]
        let channels, height, width: Int
        var plane: Int { height * width }
        subscript(n: Int, c: Int, y: Int, x: Int) -> Double {
            get { values[((n * channels + c) * height + y) * width + x] }
            set { values[((n * channels + c) * height + y) * width + x] = newValue }
        }
    }

    /// The network's output, NCHW, for the flat parameter vector `p`.
    func output(_ p: [Double]) -> [Double] {
        let c = configuration, levels = c.levels, d = c.timeDimension
        func param(_ name: String) -> ArraySlice<Double> {
            let e = table.entry(named: name)!
            return p[e.offset..<e.offset + e.count]
        }
        func at(_ s: ArraySlice<Double>, _ i: Int) -> Double { s[s.startIndex + i] }
        func linear(_ x: [Double], _ name: String, inF: Int, outF: Int) -> [Double] {
            let w = param("\(name).weight"), b = param("\(name).bias")
            var y = [Double](repeating: 0, count: batch * outF)
            for n in 0..<batch {
                for o in 0..<outF {
                    var s = at(b, o)
                    for i in 0..<inF { s += at(w, o * inF + i) * x[n * inF + i] }
                    y[n * outF + o] = s
                }
            }
            return y
        }
        /// Conv2d, stride 1, padding k/2.
        func conv(_ x: Activation, _ name: String, out: Int, kernel: Int) -> Activation {
            let w = param("\(name).weight"), b = param("\(name).bias"), pad = kernel / 2
            var y = Activation(values: .init(repeating: 0, count: batch * out * x.plane), channels: out, height: x.height, width: x.width)
            for n in 0..<batch { for co in 0..<out { for oy in 0..<x.height { for ox in 0..<x.width {
                var s = at(b, co)
                for ci in 0..<x.channels { for ky in 0..<kernel { for kx in 0..<kernel {
                    let iy = oy + ky - pad, ix = ox + kx - pad
                    if iy >= 0 && iy < x.height && ix >= 0 && ix < x.width {
                        s += at(w, ((co * x.channels + ci) * kernel + ky) * kernel + kx) * x[n, ci, iy, ix]
                    }
                } } }
                y[n, co, oy, ox] = s
            } } } }
            return y
        }
        /// ConvTranspose2d k4 s2 p1 (o → o): y[2i − 1 + a, 2j − 1 + b] += x[i, j]·W[ci, co, a, b].
        func convTranspose(_ x: Activation, _ name: String) -> Activation {
            let w = param("\(name).weight"), b = param("\(name).bias"), o = x.channels
            var y = Activation(values: .init(repeating: 0, count: batch * o * 4 * x.plane), channels: o, height: 2 * x.height, width: 2 * x.width)
            for n in 0..<batch { for co in 0..<o { for i in 0..<y.plane { y.values[(n * o + co) * y.plane + i] = at(b, co) } } }
            for n in 0..<batch { for ci in 0..<o { for iy in 0..<x.height { for ix in 0..<x.width { for co in 0..<o {
                for a in 0..<4 { for bb in 0..<4 {
                    let oy = 2 * iy - 1 + a, ox = 2 * ix - 1 + bb
                    if oy >= 0 && oy < y.height && ox >= 0 && ox < y.width {
                        y[n, co, oy, ox] += x[n, ci, iy, ix] * at(w, ((ci * o + co) * 4 + a) * 4 + bb)
                    }
                } }
            } } } } }
            return y
        }
        func relu(_ x: Activation) -> Activation {
            Activation(values: x.values.map { max($0, 0) }, channels: x.channels, height: x.height, width: x.width)
        }
        func batchNorm(_ x: Activation, _ name: String) -> Activation {
            let g = param("\(name).weight"), b = param("\(name).bias"), m = Double(batch * x.plane)
            var y = x
            for ch in 0..<x.channels {
                var sum = 0.0, squares = 0.0
                for n in 0..<batch { for i in 0..<x.plane { sum += x.values[(n * x.channels + ch) * x.plane + i] } }
                let mean = sum / m
                for n in 0..<batch { for i in 0..<x.plane { let v = x.values[(n * x.channels + ch) * x.plane + i] - mean; squares += v * v } }
                let variance = squares / m
                let invStd = 1 / (variance + 1e-5).squareRoot()
                for n in 0..<batch {
                    for i in 0..<x.plane {
                        let k = (n * x.channels + ch) * x.plane + i
                        y.values[k] = at(g, ch) * (x.values[k] - mean) * invStd + at(b, ch)
                    }
                }
            }
            return y
        }
        func maxPool(_ x: Activation) -> Activation {
            var y = Activation(values: .init(repeating: 0, count: batch * x.channels * x.plane / 4), channels: x.channels,
                               height: x.height / 2, width: x.width / 2)
            for n in 0..<batch { for ch in 0..<x.channels { for oy in 0..<y.height { for ox in 0..<y.width {
                y[n, ch, oy, ox] = max(max(x[n, ch, 2 * oy, 2 * ox], x[n, ch, 2 * oy, 2 * ox + 1]),
                                       max(x[n, ch, 2 * oy + 1, 2 * ox], x[n, ch, 2 * oy + 1, 2 * ox + 1]))
            } } } }
            return y
        }
        func concat(_ a: Activation, _ b: Activation) -> Activation {
            var y: [Double] = []
            for n in 0..<batch {
                y += a.values[n * a.channels * a.plane..<(n + 1) * a.channels * a.plane]
                y += b.values[n * b.channels * b.plane..<(n + 1) * b.channels * b.plane]
            }
            return Activation(values: y, channels: a.channels + b.channels, height: a.height, width: a.width)
        }
        let tau = linear(sinusoid, "time_mlp.1", inF: d, outF: d).map { max($0, 0) }
        func block(_ x: Activation, _ name: String, out: Int, up: Bool) -> Activation {
            var h = batchNorm(relu(conv(x, "\(name).conv1", out: out, kernel: 3)), "\(name).bnorm1")
            let shift = linear(tau, "\(name).time_mlp", inF: d, outF: out).map { max($0, 0) }
            for n in 0..<batch { for co in 0..<out { for i in 0..<h.plane { h.values[(n * out + co) * h.plane + i] += shift[n * out + co] } } }
            h = batchNorm(relu(conv(h, "\(name).conv2", out: out, kernel: 3)), "\(name).bnorm2")
            return up ? convTranspose(h, "\(name).transform") : maxPool(h)
        }

        var x = conv(Activation(values: input, channels: c.inChannels, height: height, width: width), "conv0", out: c.channels[0], kernel: 3)
        var skips: [Activation] = []
        for i in 0..<levels {
            x = block(x, "downs.\(i)", out: c.channels[i + 1], up: false)
            skips.append(x)
        }
        for j in 0..<levels {
            x = block(concat(x, skips.removeLast()), "ups.\(j)", out: c.channels[levels - j - 1], up: true)
        }
        return conv(x, "output", out: c.inChannels, kernel: 1).values
    }
}
