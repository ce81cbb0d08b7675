import Foundation

/// Width of the sinusoidal timestep embedding used by the U-Nets.
public let timeEmbeddingDimension = 128

/// embedding[n, k] = sin(t_n·f_k) for k < 64 and cos(t_n·f_{k−64}) above, f_k = exp(−ln(10000)·k/63),
/// with the raw integer timestep t. Exponent and product t·f are rounded to Float in the order the
/// reference computes them ((k·−ln 10⁴)/63, then t·f), so large t agree to the last bits.
public func sinusoidalTimeEmbedding(output: UnsafeMutablePointer<Float>, timesteps: UnsafePointer<Int32>,
                                    batch: Int, dimension: Int = timeEmbeddingDimension) {
    let half = dimension / 2
    let negativeLog = -Float(log(10000.0)), denominator = Float(half - 1)
    for n in 0..<batch {
        let t = Float(timesteps[n])
        let row = output + n * dimension
        for k in 0..<half {
            let frequency = Float(exp(Double((Float(k) * negativeLog) / denominator)))
            let angle = Double(t * frequency)
            row[k] = Float(sin(angle))
            row[half + k] = Float(cos(angle))
        }
    }
}

/// x[c, n, :] += add[n, c] over the `plane` values of each (c, n): the time projection broadcast over H×W.
public func addPerChannel(_ x: UnsafeMutablePointer<Float>, _ add: UnsafePointer<Float>,
                          channels: Int, batch: Int, plane: Int) {
    parallelFor(channels) { c in
        for n in 0..<batch {
            let v = add[n * channels + c], row = x + (c * batch + n) * plane
            for i in 0..<plane { row[i] += v }
        }
    }
}

/// addGrad[n, c] += Σ over the plane of xGrad[c, n, :], the adjoint of `addPerChannel`.
public func addPerChannelBackward(addGrad: UnsafeMutablePointer<Float>, xGrad: UnsafePointer<Float>,
                                  channels: Int, batch: Int, plane: Int) {
    parallelFor(channels) { c in   // each thread its own channels: no two write the same addGrad entry
        for n in 0..<batch { addGrad[n * channels + c] += sumOf(xGrad + (c * batch + n) * plane, count: plane) }
    }
}
