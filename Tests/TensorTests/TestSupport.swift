import Foundation
import Tensor

// Helpers shared by the TensorTests suites: deterministic test data that does not come from the code
// under test (SplitMix64, not Philox), layout conversion on arrays, and a central-difference checker.

/// SplitMix64 (Steele et al.): a tiny seeded generator for test inputs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// `count` standard normal values (Box–Muller) from `seed`, scaled by `scale` and shifted by `shift`.
func normals(_ count: Int, seed: UInt64, scale: Float = 1, shift: Float = 0) -> [Float] {
    var g = SplitMix64(seed: seed)
    return (0..<count).map { _ in
        let u1 = 1 - g.unit(), u2 = g.unit()
        return shift + scale * Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

/// NCHW array → CNHW array.
func toCNHW(_ a: [Float], batch: Int, channels: Int, plane: Int) -> [Float] {
    var out = [Float](repeating: 0, count: a.count)
    nchwToCNHW(&out, a, batch: batch, channels: channels, plane: plane)
    return out
}

/// CNHW array → NCHW array.
func toNCHW(_ a: [Float], batch: Int, channels: Int, plane: Int) -> [Float] {
    var out = [Float](repeating: 0, count: a.count)
    cnhwToNCHW(&out, a, batch: batch, channels: channels, plane: plane)
    return out
}

/// Σ y·r in Double.
func dot(_ y: [Float], _ r: [Float]) -> Double {
    precondition(y.count == r.count)
    var s = 0.0
    for i in y.indices { s += Double(y[i]) * Double(r[i]) }
    return s
}

/// Largest |a − b| over two arrays.
func maxAbsoluteError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "lengths \(a.count) and \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Prints measured errors when TEST_REPORT is set (for the closing notes); silent otherwise.
func report(_ line: @autoclosure () -> String) {
    if ProcessInfo.processInfo.environment["TEST_REPORT"] != nil { print("[report] \(line())") }
}

/// Result of a finite-difference check over some coordinates of one tensor.
struct GradientCheck {
    /// max over coordinates of |fd − analytic| / (|analytic| + floor)
    var maxError = 0.0
    var worstIndex = -1
    var worstFD = 0.0, worstAnalytic = 0.0
    var checked = 0
    var description: String {
        "max error \(maxError) over \(checked) coordinates (worst index \(worstIndex): fd \(worstFD), analytic \(worstAnalytic))"
    }
}

/// Root mean square of a gradient: its typical size.
func rms(_ a: [Float]) -> Double {
    (a.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(a.count, 1))).squareRoot()
}

/// Central differences of `loss` around `point` at the coordinates `indices` (all by default),
/// against `analytic`. The step actually taken, (x+h) − (x−h) after rounding to Float, is the
/// denominator, so rounding of the perturbed coordinate does not count as error.
/// The error of a coordinate is |fd − analytic| / (|analytic| + floor); the floor defaults to 1% of the
/// gradient's RMS, because a coordinate whose true gradient is near 0 still carries the Float rounding
/// noise of the loss difference, which is set by the gradient's overall scale, not by its own size.
func finiteDifferenceCheck(point: [Float], analytic: [Float], h: Float, floor: Double? = nil,
                           indices: [Int]? = nil, loss: ([Float]) -> Double) -> GradientCheck {
    precondition(point.count == analytic.count, "point \(point.count) vs gradient \(analytic.count)")
    let floor = floor ?? max(1e-2 * rms(analytic), 1e-9)
    var result = GradientCheck()
    var x = point
    for i in indices ?? Array(point.indices) {
        let plus = point[i] + h, minus = point[i] - h
        x[i] = plus
        let lp = loss(x)
        x[i] = minus
        let lm = loss(x)
        x[i] = point[i]
        let fd = (lp - lm) / Double(plus - minus)
        let an = Double(analytic[i])
        let err = abs(fd - an) / (abs(an) + floor)
        result.checked += 1
        if err > result.maxError || result.worstIndex < 0 {
            result.maxError = err; result.worstIndex = i; result.worstFD = fd; result.worstAnalytic = an
        }
    }
    return result
}
