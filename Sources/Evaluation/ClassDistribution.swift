import Foundation

/// What a classifier says about a set of generated images, from its class probabilities
/// [count, classes] (softmax outputs, one row per image): how the images spread over the classes and
/// the classifier score, the Inception score's analogue.
public struct ClassDistribution: Sendable, Equatable {
    public let count: Int
    public let classes: Int
    /// [classes]: the fraction of images whose most probable class is each class (sums to 1).
    public let histogram: [Double]
    /// −Σ h log h of `histogram`, in nats: ln(classes) when every class is equally common, 0 when all
    /// images fall in one.
    public let entropy: Double
    /// exp(mean over images of KL(p(y|x) ‖ p(y))), p(y) the mean of the rows; the mean over `splits`
    /// equal consecutive parts, each with its own p(y) (Salimans et al. use 10). Between 1 (every image
    /// looks the same to the classifier) and `classes` (confident, and evenly spread).
    public let score: Double
    /// Standard deviation of the per-split scores (population, like the reference code); 0 for 1 split.
    public let scoreStandardDeviation: Double

    /// Rows must be probability vectors: entries ≥ 0 summing to 1 (within 1e-3, Float softmax
    /// rounding); logits are refused rather than silently giving a meaningless score.
    public init(probabilities: [Float], count: Int, classes: Int, splits: Int = 1) throws {
        guard count >= 1, classes >= 1, probabilities.count == count * classes else {
            throw EvaluationError("class probabilities of \(count) × \(classes) need \(count * classes) floats, got \(probabilities.count)")
        }
        guard splits >= 1, splits <= count else {
            throw EvaluationError("the classifier score needs 1 to \(count) splits of \(count) images, got \(splits)")
        }
        var histogram = [Double](repeating: 0, count: classes)
        try probabilities.withUnsafeBufferPointer { p in
            for row in 0..<count {
                var sum = 0.0, best = 0
                for c in 0..<classes {
                    let v = p[row * classes + c]
                    guard v >= 0 else {
                        throw EvaluationError("class probability [\(row), \(c)] is \(v): pass softmax outputs, not logits")
                    }
                    sum += Double(v)
                    if v > p[row * classes + best] { best = c }
                }
                guard abs(sum - 1) <= 1e-3 else {
                    throw EvaluationError("class probabilities of row \(row) sum to \(sum), not 1: pass softmax outputs, not logits")
                }
                histogram[best] += 1
            }
        }
        for c in 0..<classes { histogram[c] /= Double(count) }
        let entropy = -histogram.reduce(0) { $0 + ($1 > 0 ? $1 * log($1) : 0) }

        var scores = [Double]()
        for s in 0..<splits {
            scores.append(classifierScore(probabilities, rows: (count * s / splits)..<(count * (s + 1) / splits), classes: classes))
        }
        let mean = scores.reduce(0, +) / Double(splits)
        let variance = scores.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(splits)

        self.count = count; self.classes = classes; self.histogram = histogram; self.entropy = entropy
        self.score = mean; self.scoreStandardDeviation = variance.squareRoot()
    }
}

/// exp(mean over `rows` of KL(p(y|x) ‖ p(y))), p(y) the mean of those rows; 0·log 0 = 0.
private func classifierScore(_ probabilities: [Float], rows: Range<Int>, classes: Int) -> Double {
    var marginal = [Double](repeating: 0, count: classes)
    for row in rows { for c in 0..<classes { marginal[c] += Double(probabilities[row * classes + c]) } }
    for c in 0..<classes { marginal[c] /= Double(rows.count) }
    var divergence = 0.0
    for row in rows {
        for c in 0..<classes {
            let p = Double(probabilities[row * classes + c])
            // why p > 0 suffices: marginal[c] ≥ p / rows.count > 0 whenever p > 0.
            if p > 0 { divergence += p * log(p / marginal[c]) }
        }
    }
    return exp(divergence / Double(rows.count))
}
