import Foundation

/// An elementwise nonlinearity. BatchNorm fuses the one that follows it (see BatchNorm2d.swift); the
/// others run as layers of their own with these kernels.
public enum Activation: String, Sendable, Equatable, CaseIterable {
    case identity
    /// max(x, 0); the gradient at 0 is 0, as in PyTorch.
    case relu
    /// Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch's default, not the tanh approximation), in Double with
    /// erf from `erfRational` (within 7e-8 of erf: below Float rounding, not an approximation of GELU).
    case gelu
    /// SiLU (swish), x·σ(x).
    case silu

    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .identity: x
        case .relu: max(x, 0)
        case .gelu: Float(0.5 * Double(x) * (1 + erfRational(Double(x) * 0.5.squareRoot())))
        case .silu: x / (1 + Float(exp(-Double(x))))
        }
    }

    /// d activation / dx at the pre-activation value x.
    @inline(__always)
    public func derivative(_ x: Float) -> Float {
        switch self {
        case .identity:
            return 1
        case .relu:
            return x > 0 ? 1 : 0
        case .gelu:
            // Φ(x) + x·φ(x), φ the standard normal density.
            let v = Double(x)
            return Float(0.5 * (1 + erfRational(v * 0.5.squareRoot())) + v * 0.3989422804014327 * Double(Foundation.exp(-0.5 * x * x)))
        case .silu:
            let sigma = 1 / (1 + exp(-Double(x)))
            return Float(sigma * (1 + Double(x) * (1 - sigma)))
        }
    }
}

/// erf as a rational function on [−4, 4] (beyond, erf is ±1 to 1.5e-8): an odd polynomial of degree 13
/// over an even one of degree 8, the minimax coefficients Eigen and XLA use for float erf, evaluated in
/// Double: within 7e-8 of erf and smooth (Float evaluation adds rounding noise that finite differences
/// of GELU's tail see). why not libm's erf: GELU follows every convolution of ContextUnet, and libm's
/// erf per value cost more than the convolutions at 16×16 (bench: 46 → 55 img/s).
@inline(__always)
public func erfRational(_ value: Double) -> Double {
    let x = min(max(value, -4), 4), x2 = x * x
    var p = -2.72614225801306e-10
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 - 2.10102402082508e-06
    p = p * x2 - 5.69250639462346e-05
    p = p * x2 - 7.34990630326855e-04
    p = p * x2 - 2.95459980854025e-03
    p = p * x2 - 1.60960333262415e-02
    var q = -1.45660718464996e-05
    q = q * x2 - 2.13374055278905e-04
    q = q * x2 - 1.68282697438203e-03
    q = q * x2 - 7.37332916720468e-03
    q = q * x2 - 1.42647390514189e-02
    return x * p / q
}

/// output = activation(input); may run in place.
public func activationForward(_ activation: Activation, output: UnsafeMutablePointer<Float>,
                              input: UnsafePointer<Float>, count: Int) {
    switch activation {
    case .relu: for i in 0..<count { output[i] = max(input[i], 0) }
    default: for i in 0..<count { output[i] = activation.apply(input[i]) }
    }
}

/// Adds inputGrad += outputGrad · activation′(input), from the pre-activation `input`.
public func activationBackward(_ activation: Activation, inputGrad: UnsafeMutablePointer<Float>,
                               outputGrad: UnsafePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    switch activation {
    case .relu: for i in 0..<count { inputGrad[i] += input[i] > 0 ? outputGrad[i] : 0 }
    default: for i in 0..<count { inputGrad[i] += outputGrad[i] * activation.derivative(input[i]) }
    }
}

/// y = max(x, 0); may run in place.
public func reluForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    activationForward(.relu, output: output, input: input, count: count)
}

/// Adds dx += dy where the forward output was positive (the ReLU's output is positive exactly where
/// its input is, so either can be passed; in-place layers keep only the output).
public func reluBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                         output: UnsafePointer<Float>, count: Int) {
    activationBackward(.relu, inputGrad: inputGrad, outputGrad: outputGrad, input: output, count: count)
}
