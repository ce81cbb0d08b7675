import Tensor

/// How PyTorch initialises a tensor by default.
public enum Initialization: Sendable, Equatable {
    /// U(−bound, bound): kaiming-uniform(a=√5) weights and fan-in biases both reduce to 1/√fan_in.
    case uniform(bound: Float)
    case constant(Float)
    /// The frozen sinusoidal time-embedding table of MyUNet (ZOO.md §4), computed from its shape
    /// [rows, d] (`sinusoidalEmbeddingTable`); draws nothing.
    case sinusoidalTable
}

/// One named tensor inside a flat buffer: PyTorch's state_dict key, shape, and where it lives.
public struct ParameterEntry: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public let initialization: Initialization
    /// A buffer entry that is a constant of the model (PyTorch: a parameter with requires_grad False, such
    /// as a frozen embedding table), not a running statistic: it is in every checkpoint under its name, but
    /// no layer writes it, nothing trains it, and whatever averages buffers (over ranks, an EMA) must leave
    /// it out, since an average of equal floats is not always that float (0.999·e + 0.001·e ≠ e).
    public let frozen: Bool
    public var count: Int { shape.reduce(1, *) }
}

/// The table of named sizes behind one flat buffer (as llm.c's ParameterTensors): every parameter
/// (or buffer: BatchNorm running statistics, frozen tables) is a slice of one allocation, so the optimizer,
/// the allreduce and a checkpoint each see one array.
public struct ParameterTable: Sendable, Equatable {
    public private(set) var entries: [ParameterEntry] = []
    public private(set) var totalCount = 0

    public init() {}

    /// Appends `name` and returns its offset. `frozen` only in a model's buffer table (see `ParameterEntry`).
    public mutating func add(_ name: String, shape: [Int], initialization: Initialization, frozen: Bool = false) -> Int {
        precondition(!entries.contains { $0.name == name }, "duplicate parameter name \(name)")
        let entry = ParameterEntry(name: name, shape: shape, offset: totalCount, initialization: initialization, frozen: frozen)
        entries.append(entry)
        totalCount += entry.count
        return entry.offset
    }

    public func entry(named name: String) -> ParameterEntry? { entries.first { $0.name == name } }

    /// Floats in frozen entries (ZOO.md §0's "frozen" column).
    public var frozenCount: Int { entries.filter(\.frozen).reduce(0) { $0 + $1.count } }
    /// Floats in the other entries: for a buffer table, the running statistics (ZOO.md's "buffers").
    public var unfrozenCount: Int { totalCount - frozenCount }

    /// Fills `buffer` as PyTorch's defaults would, drawing in table order from `rng`.
    public func initialize(_ buffer: UnsafeMutablePointer<Float>, rng: inout Philox) {
        for e in entries {
            switch e.initialization {
            case .uniform(let bound): rng.fillUniform(buffer + e.offset, count: e.count, low: -bound, high: bound)
            case .constant(let value): (buffer + e.offset).update(repeating: value, count: e.count)
            case .sinusoidalTable:
                precondition(e.shape.count == 2, "\(e.name): a sinusoidal table is [rows, d], got \(e.shape)")
                sinusoidalEmbeddingTable(output: buffer + e.offset, rows: e.shape[0], dimension: e.shape[1])
            }
        }
    }
}
