import Tensor

/// A frozen Embedding(rows, d) (ZOO.md §1): `name.weight` [rows, d] is a *frozen buffer* entry (see
/// `ParameterEntry.frozen`), computed when the model is initialised, stored in every checkpoint, and
/// never given a gradient or an optimizer state. Forward is a row lookup; there is no backward.
public struct FrozenEmbedding: Sendable {
    public let rows, dimension: Int
    let weight: Int

    public init(_ b: ModelBuilder, _ name: String, rows: Int, dimension: Int, initialization: Initialization) {
        self.rows = rows; self.dimension = dimension
        weight = b.buffers.add("\(name).weight", shape: [rows, dimension], initialization: initialization, frozen: true)
    }

    /// output[n, :] = weight[indices[n], :], [N, d].
    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, indices: UnsafePointer<Int32>, batch: Int) {
        embeddingLookup(output: output, table: m.buffers + weight, indices: indices, batch: batch, rows: rows, dimension: dimension)
    }
}
