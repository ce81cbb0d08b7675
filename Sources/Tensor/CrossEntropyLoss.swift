import Foundation

/// probabilities[n, k] = softmax(logits[n, :])[k] over `batch` rows of `classes` logits (row-major
/// [N, K]), with the row's maximum subtracted first so that no exp overflows. May run in place.
public func softmaxForward(probabilities: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                           batch: Int, classes: Int) {
    for n in 0..<batch {
        let z = logits + n * classes, p = probabilities + n * classes
        var top = z[0]
        for k in 1..<classes { top = max(top, z[k]) }
        var sum = 0.0
        for k in 0..<classes { let e = Float(exp(Double(z[k] - top))); p[k] = e; sum += Double(e) }
        let scale = Float(1 / sum)
        for k in 0..<classes { p[k] *= scale }
    }
}

/// Mean softmax cross-entropy of `batch` rows of `classes` logits [N, K] against integer labels in
/// 0..<K (PyTorch's `F.cross_entropy`, reduction "mean"):
///   loss = (1/N) Σ_n [logsumexp(z_n) − z_n[y_n]]
/// and writes (when given) its gradient d loss / d logits = (softmax(z_n) − onehot(y_n)) / N. Like every
/// loss it writes its gradient, the seed of backward, rather than adding into it. Sums in Double.
public func softmaxCrossEntropyLoss(logitsGrad: UnsafeMutablePointer<Float>?, logits: UnsafePointer<Float>,
                                    labels: UnsafePointer<Int32>, batch: Int, classes: Int) -> Float {
    var total = 0.0
    let scale = 1 / Double(batch)
    for n in 0..<batch {
        let z = logits + n * classes, y = Int(labels[n])
        precondition(y >= 0 && y < classes, "label \(y) of row \(n) outside 0..<\(classes)")
        var top = z[0]
        for k in 1..<classes { top = max(top, z[k]) }
        var sum = 0.0
        for k in 0..<classes { sum += exp(Double(z[k] - top)) }
        let logSumExp = Double(top) + log(sum)
        total += logSumExp - Double(z[y])
        if let g = logitsGrad.map({ $0 + n * classes }) {
            for k in 0..<classes { g[k] = Float(exp(Double(z[k]) - logSumExp) * scale) }
            g[y] -= Float(scale)
        }
    }
    return Float(total * scale)
}
