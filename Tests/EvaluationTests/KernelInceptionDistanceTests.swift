import Foundation
import Testing
import Evaluation

@Suite struct KernelInceptionDistanceTests {
    static let identity8 = (0..<64).map { $0 % 9 == 0 ? 1.0 : 0 }

    /// Unbiased MMD² with k(x, y) = (xᵀy/d + 1)³ over the whole sets, by plain loops.
    static func bruteForceMMD(_ a: FeatureMatrix, _ b: FeatureMatrix) -> Double {
        let d = a.dimension
        func k(_ x: FeatureMatrix, _ i: Int, _ y: FeatureMatrix, _ j: Int) -> Double {
            var dot = 0.0
            for c in 0..<d { dot += Double(x.values[i * d + c]) * Double(y.values[j * d + c]) }
            return pow(dot / Double(d) + 1, 3)
        }
        let m = Double(a.count), n = Double(b.count)
        var xx = 0.0, yy = 0.0, xy = 0.0
        for i in 0..<a.count { for j in 0..<a.count where i != j { xx += k(a, i, a, j) } }
        for i in 0..<b.count { for j in 0..<b.count where i != j { yy += k(b, i, b, j) } }
        for i in 0..<a.count { for j in 0..<b.count { xy += k(a, i, b, j) } }
        return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)
    }

    @Test func wholeSetSubsetsGiveTheBruteForceUnbiasedMMD() throws {
        // Subsets as large as the sets hold every row, in some order: each subset's estimate is the
        // full-set MMD², so the spread is only rounding.
        let a = try FeatureMatrix((0..<120).map { Float(sin(Double($0) * 0.37)) }, count: 30, dimension: 4)
        let b = try FeatureMatrix((0..<120).map { Float(cos(Double($0) * 0.91)) * 1.2 + 0.1 }, count: 30, dimension: 4)
        let kid = try kernelInceptionDistance(a, b, subsets: 5, subsetSize: 1000, seed: 3)
        let expected = Self.bruteForceMMD(a, b)
        #expect(expected > 0.01)
        #expect(abs(kid.mean - expected) < 1e-12 * max(1, abs(expected)), "KID \(kid.mean), brute force \(expected)")
        #expect(kid.standardDeviation < 1e-12)
    }

    @Test func sameDistributionGivesZeroWithinItsSpread() throws {
        let a = try gaussianSamples(mean: [Double](repeating: 0, count: 8), choleskyFactor: Self.identity8, count: 2000, seed: 21)
        let b = try gaussianSamples(mean: [Double](repeating: 0, count: 8), choleskyFactor: Self.identity8, count: 2000, seed: 22)
        let kid = try kernelInceptionDistance(a, b, subsets: 50, subsetSize: 500, seed: 5)
        #expect(kid.standardDeviation > 0)
        #expect(abs(kid.mean) < 3 * kid.standardDeviation, "KID \(kid.mean) ± \(kid.standardDeviation)")
    }

    @Test func shiftedDistributionGivesAClearlyPositiveDistance() throws {
        let a = try gaussianSamples(mean: [Double](repeating: 0, count: 8), choleskyFactor: Self.identity8, count: 2000, seed: 21)
        let b = try gaussianSamples(mean: [Double](repeating: 0.5, count: 8), choleskyFactor: Self.identity8, count: 2000, seed: 22)
        let kid = try kernelInceptionDistance(a, b, subsets: 50, subsetSize: 500, seed: 5)
        #expect(kid.mean > 10 * kid.standardDeviation, "KID \(kid.mean) ± \(kid.standardDeviation)")
    }

    @Test func resultIsAPureFunctionOfTheSeed() throws {
        let a = try gaussianSamples(mean: [Double](repeating: 0, count: 8), choleskyFactor: Self.identity8, count: 300, seed: 1)
        let b = try gaussianSamples(mean: [Double](repeating: 0.2, count: 8), choleskyFactor: Self.identity8, count: 300, seed: 2)
        let first = try kernelInceptionDistance(a, b, subsets: 10, subsetSize: 100, seed: 9)
        let again = try kernelInceptionDistance(a, b, subsets: 10, subsetSize: 100, seed: 9)
        let other = try kernelInceptionDistance(a, b, subsets: 10, subsetSize: 100, seed: 10)
        #expect(first.mean == again.mean && first.standardDeviation == again.standardDeviation)
        #expect(first.mean != other.mean)
    }

    @Test func subsetSizeIsClampedToTheSmallerSet() throws {
        let a = try FeatureMatrix((0..<40).map { Float($0 % 7) }, count: 10, dimension: 4)
        let b = try FeatureMatrix((0..<4000).map { Float($0 % 5) }, count: 1000, dimension: 4)
        let kid = try kernelInceptionDistance(a, b, subsets: 3, subsetSize: 1000, seed: 0)
        #expect(kid.mean.isFinite && kid.standardDeviation.isFinite)
    }

    @Test func tooSmallSubsetsAndMismatchedDimensionsAreErrors() throws {
        let a = try FeatureMatrix([Float](repeating: 1, count: 40), count: 10, dimension: 4)
        let one = try FeatureMatrix([1, 2, 3, 4], count: 1, dimension: 4)
        let wide = try FeatureMatrix([Float](repeating: 1, count: 50), count: 10, dimension: 5)
        #expect(throws: EvaluationError("KID needs subsets of at least 2 feature vectors, got 1 (subset size 1000, sets of 10 and 1)")) {
            try kernelInceptionDistance(a, one)
        }
        #expect(throws: EvaluationError.self) { try kernelInceptionDistance(a, a, subsetSize: 1) }
        #expect(throws: EvaluationError("KID of features of different dimensions: 4 and 5")) {
            try kernelInceptionDistance(a, wide)
        }
    }
}
