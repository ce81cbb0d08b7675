/// y = max(x, 0). (The U-Net fuses its ReLUs into BatchNorm; the MLP uses these.)
public func reluForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { output[i] = max(input[i], 0) }
}

/// dx = dy where the forward output was positive, else 0 (PyTorch: the gradient at 0 is 0).
/// `inputGrad` may alias `outputGrad`.
public func reluBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                         output: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { inputGrad[i] = output[i] > 0 ? outputGrad[i] : 0 }
}
