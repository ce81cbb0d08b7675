/// `count` feature vectors of `dimension` floats each, row-major [count, dimension]: one row per image,
/// as the feature network writes them.
public struct FeatureMatrix: Sendable, Equatable {
    public let values: [Float]
    public let count: Int
    public let dimension: Int

    public init(_ values: [Float], count: Int, dimension: Int) throws {
        guard count >= 0, dimension >= 1, values.count == count * dimension else {
            throw EvaluationError("a feature matrix of \(count) × \(dimension) needs \(count * dimension) floats, got \(values.count)")
        }
        self.values = values; self.count = count; self.dimension = dimension
    }
}
