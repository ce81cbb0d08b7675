/// mean((prediction − target)²) over `count` values; writes its gradient d/dprediction = 2(p − t)/count.
public func mseLoss(predictionGrad: UnsafeMutablePointer<Float>?, prediction: UnsafePointer<Float>,
                    target: UnsafePointer<Float>, count: Int) -> Float {
    var sum = 0.0
    let scale = 2 / Float(count)
    for i in 0..<count {
        let d = prediction[i] - target[i]
        sum += Double(d * d)
        predictionGrad?[i] = scale * d
    }
    return Float(sum / Double(count))
}
