/// mean|prediction − target| over `count` values; writes its gradient d/dprediction = sign(p − t)/count,
/// with sign(0) = 0 (the subgradient PyTorch's L1Loss and Keras' MAE take at a tie).
public func maeLoss(predictionGrad: UnsafeMutablePointer<Float>?, prediction: UnsafePointer<Float>,
                    target: UnsafePointer<Float>, count: Int) -> Float {
    var sum = 0.0
    let scale = 1 / Float(count)
    for i in 0..<count {
        let d = prediction[i] - target[i]
        sum += Double(abs(d))
        predictionGrad?[i] = d > 0 ? scale : d < 0 ? -scale : 0
    }
    return Float(sum / Double(count))
}
