import Foundation
import Models
import Tensor

/// `disttrain bench --per-layer`: every distinct 3×3 stride-1 convolution of a model, timed alone in each
/// algorithm (forward, and backward with the input gradient), on random data at the bench batch. The
/// figures behind `--conv-algorithm auto`'s rule and the README's per-layer table.
struct ConvolutionBench {
    let model: ModelArchitecture
    let batch: Int
    let repeats: Int
    static let kinds: [ConvolutionAlgorithmKind] = [.im2col, .winogradF2, .winogradF4]

    struct Row {
        let shape: ConvShape
        let layers: Int
        /// Median seconds by algorithm: forward, backward.
        var seconds: [ConvolutionAlgorithmKind: (forward: Double, backward: Double)] = [:]
    }

    func run() -> [Row] {
        let plan = model.buildAtReferenceShape(batchCapacity: batch).convolutionPlan
        var rows: [Row] = []
        for entry in plan where entry.shape.kernel == 3 && entry.shape.stride == 1 && entry.shape.padding == 1 {
            if let i = rows.firstIndex(where: { $0.shape == entry.shape }) { rows[i] = Row(shape: rows[i].shape, layers: rows[i].layers + 1) }
            else { rows.append(Row(shape: entry.shape, layers: 1)) }
        }
        for i in rows.indices { for kind in Self.kinds { rows[i].seconds[kind] = time(kind, rows[i].shape) } }
        return rows
    }

    /// Median forward and backward seconds of one algorithm on one shape.
    private func time(_ kind: ConvolutionAlgorithmKind, _ s: ConvShape) -> (forward: Double, backward: Double) {
        let workspace = Workspace(), algorithm = kind.make(s, workspace: workspace)
        let x = FloatBuffer(count: s.inChannels * s.inputPositions), y = FloatBuffer(count: s.outChannels * s.positions)
        let w = FloatBuffer(count: s.outChannels * s.patchSize), bias = FloatBuffer(count: s.outChannels)
        let gx = FloatBuffer(count: x.count), gw = FloatBuffer(count: w.count), gb = FloatBuffer(count: bias.count)
        var rng = Philox(seed: 1, stream: 0)
        rng.fillUniform(x.pointer, count: x.count, low: -1, high: 1)
        rng.fillUniform(w.pointer, count: w.count, low: -0.05, high: 0.05)
        var forward: [Double] = [], backward: [Double] = []
        for r in 0...repeats {   // the first round warms up
            let t0 = DispatchTime.now().uptimeNanoseconds
            algorithm.forward(output: y.pointer, input: x.pointer, weight: w.pointer, bias: bias.pointer, batch: s.batch)
            let t1 = DispatchTime.now().uptimeNanoseconds
            algorithm.backward(inputGrad: gx.pointer, weightGrad: gw.pointer, biasGrad: gb.pointer, outputGrad: y.pointer,
                               input: x.pointer, weight: w.pointer, batch: s.batch)
            let t2 = DispatchTime.now().uptimeNanoseconds
            if r > 0 { forward.append(Double(t1 - t0) / 1e9); backward.append(Double(t2 - t1) / 1e9) }
        }
        return (forward.sorted()[forward.count / 2], backward.sorted()[backward.count / 2])
    }

    /// The table as printed, one line per shape, milliseconds forward / backward per algorithm.
    static func describe(_ rows: [Row]) -> [String] {
        var lines = ["layer shape (×count)            " + kinds.map { $0.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0) }.joined()]
        for row in rows {
            let s = row.shape
            let label = "\(s.inChannels)→\(s.outChannels) @\(s.height)×\(s.width) ×\(row.layers)"
            var line = label.padding(toLength: 32, withPad: " ", startingAt: 0)
            for kind in kinds {
                let t = row.seconds[kind]!
                line += String(format: "%7.1f / %7.1f ms    ", t.forward * 1e3, t.backward * 1e3)
            }
            lines.append(line)
        }
        return lines
    }

    static func json(_ rows: [Row]) -> [[String: Any]] {
        rows.map { row in
            var entry: [String: Any] = ["in": row.shape.inChannels, "out": row.shape.outChannels, "height": row.shape.height,
                                        "width": row.shape.width, "batch": row.shape.batch, "layers": row.layers]
            for kind in kinds {
                let t = row.seconds[kind]!
                entry[kind.rawValue] = ["forward_ms": (t.forward * 1e5).rounded() / 100, "backward_ms": (t.backward * 1e5).rounded() / 100]
            }
            return entry
        }
    }
}
