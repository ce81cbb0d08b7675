import Foundation
import Testing
import Tensor

/// GELU's erf is a rational function (erfRational), not libm's erf: it must be the same function below
/// Float rounding everywhere, including the tails where GELU's 1 + erf cancels.
@Suite struct ActivationAccuracyTests {
    @Test func erfRationalIsWithinFloatRoundingOfErfEverywhere() {
        var worst = 0.0
        for i in -100_000...100_000 {
            let x = Double(i) / 10_000   // −10 … 10: beyond the clamp at ±4 too
            worst = max(worst, abs(erfRational(x) - erf(x)))
        }
        #expect(worst < 7e-8, "max |erfRational − erf| = \(worst)")
        #expect(erfRational(0) == 0 && erfRational(-1.5) == -erfRational(1.5))
    }

    @Test func geluAndItsDerivativeMatchTheDoubleFormulas() {
        var worstValue = 0.0, worstDerivative = 0.0
        for i in -12_000...12_000 {
            let x = Float(i) / 1_000, v = Double(x)
            let value = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
            let derivative = 0.5 * (1 + erf(v / 2.0.squareRoot())) + v * exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
            // Absolute below 1, relative above: GELU grows like x.
            worstValue = max(worstValue, abs(Double(Activation.gelu.apply(x)) - value) / max(1, abs(value)))
            worstDerivative = max(worstDerivative, abs(Double(Activation.gelu.derivative(x)) - derivative))
        }
        #expect(worstValue < 1e-6, "GELU: \(worstValue)")
        #expect(worstDerivative < 1e-6, "GELU′: \(worstDerivative)")
    }
}
