import Foundation

// Test data that does not come from the code under test (SplitMix64, not Philox), shared by the
// kernel and model test targets.

/// SplitMix64 (Steele et al.): a tiny seeded generator for test inputs.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// `count` standard normal values (Box–Muller) from `seed`, scaled by `scale` and shifted by `shift`.
public func normals(_ count: Int, seed: UInt64, scale: Float = 1, shift: Float = 0) -> [Float] {
    var g = SplitMix64(seed: seed)
    return (0..<count).map { _ in
        let u1 = 1 - g.unit(), u2 = g.unit()
        return shift + scale * Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

/// Prints measured errors when TEST_REPORT is set (for the closing notes); silent otherwise.
public func report(_ line: @autoclosure () -> String) {
    if ProcessInfo.processInfo.environment["TEST_REPORT"] != nil { print("[report] \(line())") }
}

/// Bitwise equality of two Float sequences (NaN-safe, −0 ≠ +0).
public func bitwiseEqual(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Bool {
    a.count == b.count && memcmp(a.baseAddress!, b.baseAddress!, a.count * MemoryLayout<Float>.stride) == 0
}

/// Largest |a − b| over two arrays.
public func maxAbsoluteError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "lengths \(a.count) and \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}
