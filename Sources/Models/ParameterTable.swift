import Tensor

/// How PyTorch initialises a tensor by default.
public enum Initialization: Sendable, Equatable {
    /// U(−bound, bound): kaiming-uniform(a=√5) weights and fan-in biases both reduce to 1/√fan_in.
    case uniform(bound: Float)
    case constant(Float)
}

/// One named tensor inside a flat buffer: PyTorch's state_dict key, shape, and where it lives.
public struct ParameterEntry: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public let initialization: Initialization
    public var count: Int { shape.reduce(1, *) }
}

/// The table of named sizes behind one flat buffer (as llm.c's ParameterTensors): every parameter
/// (or BatchNorm running statistic) is a slice of one allocation, so the optimizer, the allreduce and
/// a checkpoint each see one array.
public struct ParameterTable: Sendable, Equatable {
    public private(set) var entries: [ParameterEntry] = []
    public private(set) var totalCount = 0

    public init() {}

    /// Appends `name` and returns its offset.
    public mutating func add(_ name: String, shape: [Int], initialization: Initialization) -> Int {
        precondition(!entries.contains { $0.name == name }, "duplicate parameter name \(name)")
        let entry = ParameterEntry(name: name, shape: shape, offset: totalCount, initialization: initialization)
        entries.append(entry)
        totalCount += entry.count
        return entry.offset
    }

    public func entry(named name: String) -> ParameterEntry? { entries.first { $0.name == name } }

    /// Fills `buffer` as PyTorch's defaults would, drawing in table order from `rng`.
    public func initialize(_ buffer: UnsafeMutablePointer<Float>, rng: inout Philox) {
        for e in entries {
            switch e.initialization {
            case .uniform(let bound): rng.fillUniform(buffer + e.offset, count: e.count, low: -bound, high: bound)
            case .constant(let value): (buffer + e.offset).update(repeating: value, count: e.count)
            }
        }
    }
}

