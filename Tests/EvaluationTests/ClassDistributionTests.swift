import Foundation
import Testing
import Evaluation

@Suite struct ClassDistributionTests {
    /// One-hot rows, image i in class `label(i)`.
    static func oneHot(count: Int, classes: Int, label: (Int) -> Int) -> [Float] {
        var p = [Float](repeating: 0, count: count * classes)
        for i in 0..<count { p[i * classes + label(i)] = 1 }
        return p
    }

    @Test func confidentImagesSpreadEvenlyOverTenClassesScoreTen() throws {
        let p = Self.oneHot(count: 200, classes: 10) { $0 % 10 }
        let distribution = try ClassDistribution(probabilities: p, count: 200, classes: 10)
        #expect(distribution.histogram.allSatisfy { abs($0 - 0.1) < 1e-15 })
        #expect(abs(distribution.entropy - log(10)) < 1e-12)
        #expect(abs(distribution.score - 10) < 1e-10)
        #expect(distribution.scoreStandardDeviation == 0)
        // Every split of 20 consecutive images still covers each class twice.
        let split = try ClassDistribution(probabilities: p, count: 200, classes: 10, splits: 10)
        #expect(abs(split.score - 10) < 1e-10 && split.scoreStandardDeviation < 1e-10)
    }

    @Test func imagesAllInOneClassScoreOne() throws {
        let p = Self.oneHot(count: 50, classes: 10) { _ in 3 }
        let distribution = try ClassDistribution(probabilities: p, count: 50, classes: 10)
        #expect(distribution.histogram[3] == 1 && distribution.histogram.reduce(0, +) == 1)
        #expect(distribution.entropy == 0)
        #expect(abs(distribution.score - 1) < 1e-12)
    }

    @Test func unsureImagesScoreOneWhateverTheirArgmax() throws {
        // Identical soft rows: p(y|x) = p(y), so every KL is 0, though the histogram is one class.
        let row: [Float] = [0.5, 0.3, 0.2]
        let distribution = try ClassDistribution(probabilities: Array(repeating: row, count: 20).flatMap { $0 }, count: 20, classes: 3)
        #expect(abs(distribution.score - 1) < 1e-6)
        #expect(distribution.histogram == [1, 0, 0])
    }

    @Test func logitsAreRefused() throws {
        #expect(throws: EvaluationError("class probabilities of row 0 sum to 3.5, not 1: pass softmax outputs, not logits")) {
            try ClassDistribution(probabilities: [2, 1, 0.5, 0.2, 0.3, 0.5], count: 2, classes: 3)
        }
        #expect(throws: EvaluationError.self) { try ClassDistribution(probabilities: [1.5, -0.5], count: 1, classes: 2) }
        #expect(throws: EvaluationError.self) { try ClassDistribution(probabilities: [1, 0], count: 1, classes: 2, splits: 2) }
    }
}
