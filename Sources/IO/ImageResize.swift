/// Resamples planes of images (C order, [planes, height, width]) to another size, separably:
/// horizontally first, then vertically, in Double, one plane at a time, rounded once at the end.
///
/// Along each axis, shrinking is area averaging (a box filter: an output pixel is the mean of the
/// source pixels it covers, partly covered ones weighted by the covered fraction, so an integer
/// factor k gives exact k×k block means); growing is bilinear with pixel centres aligned
/// (src = (i + ½)·in/out − ½, clamped at the edges). The same size is returned unchanged.
/// uint8 results are rounded half up and clamped to 0…255. Deterministic: no threads, fixed order.
public enum ImageResize {
    public static func resize(_ v: [UInt8], planes: Int, height: Int, width: Int, toHeight outH: Int, width outW: Int) -> [UInt8] {
        if outH == height && outW == width { return v }
        var out = [UInt8](repeating: 0, count: planes * outH * outW)
        out.withUnsafeMutableBufferPointer { out in
            resample(planes: planes, height: height, width: width, outH: outH, outW: outW,
                     load: { p, plane in v.withUnsafeBufferPointer { v in for i in plane.indices { plane[i] = Double(v[p * plane.count + i]) } } },
                     store: { i, x in out[i] = UInt8(Swift.min(255, Swift.max(0, (x + 0.5).rounded(.down)))) })
        }
        return out
    }

    public static func resize(_ v: [Float], planes: Int, height: Int, width: Int, toHeight outH: Int, width outW: Int) -> [Float] {
        if outH == height && outW == width { return v }
        var out = [Float](repeating: 0, count: planes * outH * outW)
        out.withUnsafeMutableBufferPointer { out in
            resample(planes: planes, height: height, width: width, outH: outH, outW: outW,
                     load: { p, plane in v.withUnsafeBufferPointer { v in for i in plane.indices { plane[i] = Double(v[p * plane.count + i]) } } },
                     store: { i, x in out[i] = Float(x) })
        }
        return out
    }

    /// One source sample feeding an output sample.
    struct Tap { let index: Int; let weight: Double }

    /// The taps of each of `outSize` outputs from `inSize` inputs, and the divisor of their sums.
    static func taps(from inSize: Int, to outSize: Int) -> (taps: [[Tap]], divisor: Double) {
        precondition(inSize > 0 && outSize > 0, "ImageResize: sizes must be positive")
        if outSize <= inSize {
            // Output i covers [i·s, (i+1)·s) source pixels, s = in/out. The weights are the overlaps
            // in source pixels (exact for integer and dyadic factors) and the sum is divided by s once,
            // so integer factors give exact means.
            let bounds = (0...outSize).map { Double($0 * inSize) / Double(outSize) }
            let taps = (0..<outSize).map { i in
                var taps: [Tap] = []
                var j = Int(bounds[i].rounded(.down))
                while j < inSize, Double(j) < bounds[i + 1] {
                    let overlap = Swift.min(bounds[i + 1], Double(j + 1)) - Swift.max(bounds[i], Double(j))
                    if overlap > 0 { taps.append(Tap(index: j, weight: overlap)) }
                    j += 1
                }
                return taps
            }
            return (taps, Double(inSize) / Double(outSize))
        }
        let taps = (0..<outSize).map { i in
            let x = Swift.min(Double(inSize - 1), Swift.max(0, (Double(i) + 0.5) * Double(inSize) / Double(outSize) - 0.5))
            let left = Int(x.rounded(.down)), right = Swift.min(left + 1, inSize - 1)
            let f = x - Double(left)
            return f == 0 ? [Tap(index: left, weight: 1)] : [Tap(index: left, weight: 1 - f), Tap(index: right, weight: f)]
        }
        return (taps, 1)
    }

    /// Taps flattened into plain arrays: output i uses entries first[i]..<first[i + 1].
    private struct TapTable {
        var first: [Int] = [0], index: [Int] = [], weight: [Double] = []
        init(_ taps: [[Tap]]) {
            for list in taps {
                for t in list { index.append(t.index); weight.append(t.weight) }
                first.append(index.count)
            }
        }
    }

    private static func resample(planes: Int, height: Int, width: Int, outH: Int, outW: Int,
                                 load: (Int, UnsafeMutableBufferPointer<Double>) -> Void, store: (Int, Double) -> Void) {
        let (columnTaps, columnDivisor) = taps(from: width, to: outW)
        let (rowTaps, rowDivisor) = taps(from: height, to: outH)
        let columns = TapTable(columnTaps), rows = TapTable(rowTaps)
        let divisor = columnDivisor * rowDivisor
        // One plane at a time: the source as Double, then columns resampled (wide), then rows (line).
        let source = UnsafeMutableBufferPointer<Double>.allocate(capacity: height * width)
        let wide = UnsafeMutableBufferPointer<Double>.allocate(capacity: height * outW)
        let line = UnsafeMutableBufferPointer<Double>.allocate(capacity: outW)
        defer { source.deallocate(); wide.deallocate(); line.deallocate() }
        for p in 0..<planes {
            load(p, source)
            for y in 0..<height {
                for x in 0..<outW {
                    var sum = 0.0
                    for k in columns.first[x]..<columns.first[x + 1] { sum += columns.weight[k] * source[y * width + columns.index[k]] }
                    wide[y * outW + x] = sum
                }
            }
            for y in 0..<outH {
                for x in 0..<outW { line[x] = 0 }
                for k in rows.first[y]..<rows.first[y + 1] {
                    let w = rows.weight[k], row = rows.index[k] * outW
                    for x in 0..<outW { line[x] += w * wide[row + x] }
                }
                let target = (p * outH + y) * outW
                for x in 0..<outW { store(target + x, line[x] / divisor) }
            }
        }
    }
}
