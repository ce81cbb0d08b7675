import Foundation

/// Per-channel dataset normalisation (`--normalize-data`, the keras.io DDIM's Normalization layer, ZOO §5):
/// the training images on their [0, 1] scale, u = x/255, are trained on as (u − μ_c)/σ_c, μ_c and σ_c² the
/// training set's mean and (biased) variance of channel c; samples x̂ come back as clip(μ_c + σ_c·x̂, 0, 1).
/// disttrain holds images in [−1, 1] (x = 2u − 1, ImageShard), so `normalize` reads that scale and
/// `denormalize` writes it: a de-normalised sample is saved like any other.
/// σ_c = max(√σ_c², 1e-7), as Keras does, so a constant channel does not divide by zero.
public struct DataNormalization: Sendable, Equatable {
    public let mean: [Double]
    public let variance: [Double]

    public init(mean: [Double], variance: [Double]) {
        precondition(mean.count == variance.count && !mean.isEmpty, "one mean and one variance per channel")
        self.mean = mean; self.variance = variance
    }

    public var channels: Int { mean.count }
    public var standardDeviation: [Double] { variance.map { max($0.squareRoot(), 1e-7) } }

    /// Images [count, channels, pixels] in [−1, 1] → (u − μ_c)/σ_c, u = (x + 1)/2, in place.
    public func normalize(_ images: UnsafeMutablePointer<Float>, count: Int, channels c: Int, pixels: Int) {
        precondition(c == channels, "\(c) channels, statistics for \(channels)")
        let sigma = standardDeviation
        for k in 0..<c {
            let scale = Float(0.5 / sigma[k]), shift = Float((0.5 - mean[k]) / sigma[k])
            for n in 0..<count {
                let p = images + (n * c + k) * pixels
                for i in 0..<pixels { p[i] = p[i] * scale + shift }
            }
        }
    }

    /// Normalised images [count, channels, pixels] → 2·clip(μ_c + σ_c·x̂, 0, 1) − 1, in place.
    public func denormalize(_ images: UnsafeMutablePointer<Float>, count: Int, channels c: Int, pixels: Int) {
        precondition(c == channels, "\(c) channels, statistics for \(channels)")
        let sigma = standardDeviation
        for k in 0..<c {
            let m = Float(mean[k]), s = Float(sigma[k])
            for n in 0..<count {
                let p = images + (n * c + k) * pixels
                for i in 0..<pixels { p[i] = 2 * min(max(m + s * p[i], 0), 1) - 1 }
            }
        }
    }
}

/// The exact per-channel sums the statistics come from, for any split of the data: every value is put on
/// a fixed grid of its [0, 1] scale — uint8 data exactly (q = byte, `levels` 255), float data to 1/65536 —
/// and q and q² are summed as integers, so the sums (and the statistics) do not depend on the order or
/// on how the images are divided among ranks. `adding` sums shards; the ranks' parts are combined with
/// `packed`/`init(packed:)`, whose Doubles are each below 2^32 and so add exactly in an allreduce.
public struct ChannelSums: Sendable, Equatable {
    public let levels: Int
    public private(set) var count: Int64
    public private(set) var sums: [UInt64]
    public private(set) var squares: [UInt64]

    public init(channels: Int, levels: Int) {
        self.levels = levels; count = 0
        sums = Array(repeating: 0, count: channels); squares = Array(repeating: 0, count: channels)
    }

    /// Adds images [count, channels, pixels] in [−1, 1].
    public mutating func add(_ images: UnsafePointer<Float>, count n: Int, pixels: Int) {
        let c = sums.count, half = Double(levels) / 2
        for k in 0..<c {
            var s: UInt64 = 0, q2: UInt64 = 0
            for image in 0..<n {
                let p = images + (image * c + k) * pixels
                for i in 0..<pixels {
                    let q = UInt64(((Double(p[i]) + 1) * half).rounded())
                    s += q; q2 += q * q
                }
            }
            sums[k] += s; squares[k] += q2
        }
        count += Int64(n * pixels)
    }

    /// μ_c = Σq/(levels·N), σ_c² = Σq²/(levels²·N) − μ_c² (the biased variance, as Keras' Normalization.adapt).
    public var normalization: DataNormalization {
        let n = Double(count), l = Double(levels)
        let mean = sums.map { Double($0) / (l * n) }
        let variance = zip(squares, mean).map { max(0, Double($0) / (l * l * n) - $1 * $1) }
        return DataNormalization(mean: mean, variance: variance)
    }

    /// Each 64-bit integer as two Doubles of 32 bits (high, low): [count, sums…, squares…].
    public var packed: [Double] {
        ([UInt64(count)] + sums + squares).flatMap { [Double($0 >> 32), Double($0 & 0xFFFF_FFFF)] }
    }

    /// The sums from `packed` values (after an allreduce: every rank's added).
    public init(packed: [Double], channels: Int, levels: Int) {
        precondition(packed.count == 2 * (1 + 2 * channels))
        let words = stride(from: 0, to: packed.count, by: 2).map { UInt64(packed[$0]) << 32 &+ UInt64(packed[$0 + 1]) }
        self.levels = levels
        count = Int64(words[0])
        sums = Array(words[1...channels]); squares = Array(words[(channels + 1)...])
    }
}
