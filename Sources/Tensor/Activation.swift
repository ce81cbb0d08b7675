import Foundation

/// An elementwise nonlinearity. BatchNorm fuses the one that follows it (see BatchNorm2d.swift); the
/// others run as layers of their own with these kernels.
public enum Activation: String, Sendable, Equatable, CaseIterable {
    case identity
    /// max(x, 0); the gradient at 0 is 0, as in PyTorch.
    case relu
    /// Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch's default, not the tanh approximation).
    case gelu
    /// SiLU (swish), x·σ(x).
    case silu

    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .identity: x
        case .relu: max(x, 0)
        case .gelu: Float(0.5 * Double(x) * (1 + erf(Double(x) * 0.5.squareRoot())))
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
            let v = Double(x)
            return Float(0.5 * (1 + erf(v * 0.5.squareRoot())) + v * exp(-0.5 * v * v) / (2 * Double.pi).squareRoot())
        case .silu:
            let sigma = 1 / (1 + exp(-Double(x)))
            return Float(sigma * (1 + Double(x) * (1 - sigma)))
        }
    }
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
