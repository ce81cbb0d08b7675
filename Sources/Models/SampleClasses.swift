/// Which class each generated sample is conditioned on, for a class-conditional model.
public enum SampleClasses: Sendable, Equatable {
    /// No label anywhere (`Conditioning.noLabel`): what an unconditional model always gets.
    case unconditional
    /// One grid row per listed class, the same number of samples in each (`sample --class 3,1,4`;
    /// every class in turn for `train`'s periodic grids).
    case rows([Int])
    /// Sample i gets class i mod K: a balanced set, for evaluations.
    case balanced(Int)

    /// What a model conditioned on `classCount` classes samples by default: a row per class, or nothing.
    public static func everyClass(of classCount: Int) -> SampleClasses {
        classCount > 0 ? .rows(Array(0..<classCount)) : .unconditional
    }

    /// The number of samples to draw when `requested` are asked for: rows hold equally many, at least one.
    public func sampleCount(requested: Int) -> Int {
        guard case .rows(let classes) = self else { return requested }
        return classes.count * max(1, requested / classes.count)
    }

    /// Columns of the grid: the samples of one row; nil for the default near-square grid.
    public func gridColumns(count: Int) -> Int? {
        guard case .rows(let classes) = self else { return nil }
        return max(1, count / classes.count)
    }

    /// The label of sample `index` of `count`.
    public func label(of index: Int, count: Int) -> Int32 {
        switch self {
        case .unconditional: return Conditioning.noLabel
        case .rows(let classes): return Int32(classes[min(index / max(1, count / classes.count), classes.count - 1)])
        case .balanced(let k): return Int32(index % k)
        }
    }
}
