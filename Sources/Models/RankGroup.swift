/// What a training step needs from the other ranks of a data-parallel job. The MPI implementation
/// (Sources/DistTrain) sums the gradient buckets while backward runs; with one rank every sum is the
/// identity (`SingleRank`), the same step without communication.
public protocol RankGroup: AnyObject {
    var worldSize: Int { get }
    /// Called before the backward pass whose gradients are final (the last micro-batch's).
    func beginGradientSum()
    /// Backward's report: every gradient at index ≥ `offset` is final (may start summing those).
    func gradientsFinal(from offset: Int)
    /// Returns when the model's gradients hold their sum over the ranks.
    func finishGradientSum()
    /// In-place sum over the ranks of `count` Doubles.
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int)
}

/// A world of one rank: every sum over ranks is the value itself.
public final class SingleRank: RankGroup {
    public init() {}
    public var worldSize: Int { 1 }
    public func beginGradientSum() {}
    public func gradientsFinal(from offset: Int) {}
    public func finishGradientSum() {}
    public func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {}
}
