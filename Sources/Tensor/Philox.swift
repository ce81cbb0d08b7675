import Foundation

/// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
///
/// The whole state is three integers — seed, stream and counter — so a rank's generator can be
/// checkpointed and restored exactly, and independent streams (per rank, per purpose) need no seeding
/// tricks: block `counter` of stream `stream` is a pure function of (seed, stream, counter).
public struct Philox: Sendable, Equatable, Codable {
    public let seed: UInt64
    public let stream: UInt64
    /// Number of 128-bit blocks drawn so far.
    public private(set) var counter: UInt64

    public init(seed: UInt64, stream: UInt64 = 0, counter: UInt64 = 0) {
        self.seed = seed; self.stream = stream; self.counter = counter
    }

    /// The next four independent uniformly distributed 32-bit words.
    public mutating func nextBlock() -> SIMD4<UInt32> {
        var c = SIMD4<UInt32>(UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32),
                              UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32))
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c[0]), p1 = UInt64(0xCD9E_8D57) &* UInt64(c[2])
            c = SIMD4(UInt32(truncatingIfNeeded: p1 >> 32) ^ c[1] ^ k0, UInt32(truncatingIfNeeded: p1),
                      UInt32(truncatingIfNeeded: p0 >> 32) ^ c[3] ^ k1, UInt32(truncatingIfNeeded: p0))
            k0 &+= 0x9E37_79B9; k1 &+= 0xBB67_AE85
        }
        counter &+= 1
        return c
    }

    /// Uniform in [0, 1) with 24 random bits, exactly representable in Float.
    @inline(__always)
    static func unit(_ word: UInt32) -> Float { Float(word >> 8) * 0x1p-24 }

    /// Fills `count` values uniform in [low, high).
    public mutating func fillUniform(_ out: UnsafeMutablePointer<Float>, count: Int, low: Float, high: Float) {
        var i = 0
        while i < count {
            let b = nextBlock()
            for j in 0..<4 where i + j < count { out[i + j] = low + (high - low) * Philox.unit(b[j]) }
            i += 4
        }
    }

    /// Fills `count` standard normal values (Box–Muller, two per pair of words).
    public mutating func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            let b = nextBlock()
            for pair in 0..<2 {
                // u1 in (0, 1] keeps the logarithm finite.
                let u1 = (Double(b[2 * pair] >> 8) + 1) * 0x1p-24
                let u2 = Double(b[2 * pair + 1] >> 8) * 0x1p-24
                let r = (-2 * log(u1)).squareRoot(), theta = 2 * Double.pi * u2
                if i < count { out[i] = Float(r * cos(theta)); i += 1 }
                if i < count { out[i] = Float(r * sin(theta)); i += 1 }
            }
        }
    }

    /// Fills `count` integers uniform in 0..<bound.
    public mutating func fillIntegers(_ out: UnsafeMutablePointer<Int32>, count: Int, below bound: Int) {
        var i = 0
        while i < count {
            let b = nextBlock()
            for j in 0..<4 where i + j < count {
                out[i + j] = Int32(truncatingIfNeeded: (UInt64(b[j]) &* UInt64(bound)) >> 32)
            }
            i += 4
        }
    }
}

/// Stream numbers that keep the run's random draws independent of one another.
public enum RandomStream {
    public static let initialization: UInt64 = 0
    /// Timesteps and noise of training rank r.
    public static func training(rank: Int) -> UInt64 { 1 << 32 | UInt64(rank) }
    /// The order of rank r's shard in `epoch`.
    public static func shuffle(epoch: Int, rank: Int) -> UInt64 { 2 << 56 | UInt64(epoch) << 24 | UInt64(rank) }
    /// Sampling noise of rank r in sampling round `round`.
    public static func sampling(round: Int, rank: Int) -> UInt64 { 3 << 56 | UInt64(round) << 24 | UInt64(rank) }
    /// Data augmentation (the classifier's random flips) of training rank r.
    public static func augmentation(rank: Int) -> UInt64 { 4 << 56 | UInt64(rank) }
    /// Sampling noise of chunk k of an evaluation's samples in round `round` (whichever rank draws it).
    public static func evaluation(round: Int, chunk: Int) -> UInt64 { 5 << 56 | UInt64(round) << 24 | UInt64(chunk) }
}
