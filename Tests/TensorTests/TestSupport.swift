import Foundation
import Tensor

// Helpers of the TensorTests suites: layout conversion on arrays and a central-difference checker
// (test data and the golden file come from the TestSupport target).

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
