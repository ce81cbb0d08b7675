import Foundation

/// MyUNet's frozen time-embedding table (ZOO.md §4), [rows, d] row-major, as PyTorch's float32 reference
/// makes it: w_j = Float(1 / 10000^(2j/d)) in Double, then for i < d/2
///   E[t, 2i] = sin(Float(t)·w_{2i}),  E[t, 2i+1] = cos(Float(t)·w_{2i})
/// with the product rounded to Float (int64 t times a float32 tensor) and sin, cos of that Float. Only
/// the even w_j are used, so the frequencies are 10000^(−4i/d): the reference's quirk, kept.
public func sinusoidalEmbeddingTable(output: UnsafeMutablePointer<Float>, rows: Int, dimension d: Int) {
    precondition(d >= 2 && d % 2 == 0, "a sinusoidal table needs an even width, got \(d)")
    for i in 0..<(d / 2) {
        // why 1 / pow: the reference's `1 / 10_000 ** (2 * j / d)` in Python floats, j = 2i.
        let frequency = Float(1 / pow(10000.0, Double(2 * (2 * i)) / Double(d)))
        for t in 0..<rows {
            let angle = Double(Float(t) * frequency)
            output[t * d + 2 * i] = Float(sin(angle))
            output[t * d + 2 * i + 1] = Float(cos(angle))
        }
    }
}

/// output[n, :] = table[index[n], :] for `batch` rows of `dimension` floats (an embedding lookup); every
/// index must be in 0..<rows (the caller checks it: a model's timesteps are validated against its table).
public func embeddingLookup(output: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, indices: UnsafePointer<Int32>,
                            batch: Int, rows: Int, dimension: Int) {
    for n in 0..<batch {
        let row = Int(indices[n])
        precondition(row >= 0 && row < rows, "embedding index \(row) outside 0..<\(rows)")
        (output + n * dimension).update(from: table + row * dimension, count: dimension)
    }
}
