// Winograd F(m×m, 3×3), m = 2 or 4, for 3×3 stride-1 padding-1 convolutions on CNHW activations.
// Each m×m output tile comes from an α×α input tile (α = m + 2): with U = G·g·Gᵀ (filter) and
// V = Bᵀ·d·B (input), the tile is Y = Aᵀ·(U ⊙ V)·A. Over all channels and tiles the elementwise stage
// is α² independent matrix products M[ξ] = U[ξ] (Cout × Cin) · V[ξ] (Cin × tiles), one sgemm each:
// α²/m² multiplications per output and channel pair instead of 9 (4 for F(2×2), 2.25 for F(4×4)).
// The backward passes are the exact adjoints of this forward:
//   dM[ξ] = A·dY·Aᵀ per tile;  dU[ξ] = dM[ξ]·V[ξ]ᵀ;  dW += Gᵀ·dU·G;
//   dV[ξ] = U[ξ]ᵀ·dM[ξ];  dX += B·dV·Bᵀ (tiles overlap: added).
// Layouts (ξ = α·row + column of the tile): U [α², Cout, Cin], V [α², Cin, T], M [α², Cout, T] with
// T = N·⌈H/m⌉·⌈W/m⌉ tiles, tile t = (n·tilesHigh + ty)·tilesWide + tx. The transforms
// (WinogradTransforms.swift) work on 8 tiles (or 8 filters) at once, one per SIMD lane; the input and
// the output gradient are first copied, one channel at a time, into a zero-padded plane of the thread's
// own (small enough to stay in cache) so no tile needs a bounds test.

/// Conv2d 3×3 / stride 1 / padding 1 by Winograd F(2×2, 3×3) or F(4×4, 3×3) (ConvolutionAlgorithm.swift).
public final class WinogradConvolution: ConvolutionAlgorithm {
    public let shape: ConvShape
    /// The output tile edge m: 2 or 4.
    public let outputTile: Int
    private let workspace: Workspace
    public var name: String { "winograd F(\(outputTile)x\(outputTile),3x3)" }

    private var alpha: Int { outputTile + 2 }
    private var tilesHigh: Int { (shape.height + outputTile - 1) / outputTile }
    private var tilesWide: Int { (shape.width + outputTile - 1) / outputTile }
    /// The zero-padded input plane of one image: the tiles' rows and columns −1 ..< m·tiles + 1.
    private var paddedHeight: Int { outputTile * tilesHigh + 2 }
    private var paddedWidth: Int { outputTile * tilesWide + 2 }

    /// Each tile's first element in the padded input plane and in the output-gradient plane, at the batch
    /// capacity (a smaller batch uses the first tiles), plus 8 copies of the last for a partial lane group.
    private let paddedOrigins, gradientOrigins: UnsafeMutablePointer<Int>

    public init(_ shape: ConvShape, outputTile: Int, workspace: Workspace) {
        precondition(shape.kernel == 3 && shape.stride == 1 && shape.padding == 1, "Winograd F(m×m, 3×3) needs a 3×3 stride-1 padding-1 convolution")
        precondition(outputTile == 2 || outputTile == 4, "Winograd output tiles are 2×2 or 4×4")
        self.shape = shape; self.outputTile = outputTile; self.workspace = workspace
        let th = (shape.height + outputTile - 1) / outputTile, tw = (shape.width + outputTile - 1) / outputTile
        let tiles = shape.batch * th * tw
        func origins(planeHeight: Int, planeWidth: Int) -> UnsafeMutablePointer<Int> {
            let table = UnsafeMutablePointer<Int>.allocate(capacity: tiles + 8)
            for t in 0..<(tiles + 8) {
                let u = min(t, tiles - 1), tx = u % tw, rest = u / tw, ty = rest % th, n = rest / th
                table[t] = (n * planeHeight + outputTile * ty) * planeWidth + outputTile * tx
            }
            return table
        }
        paddedOrigins = origins(planeHeight: outputTile * th + 2, planeWidth: outputTile * tw + 2)
        gradientOrigins = origins(planeHeight: outputTile * th, planeWidth: outputTile * tw)
        workspace.reserve(workspaceCount)
    }

    deinit { paddedOrigins.deallocate(); gradientOrigins.deallocate() }

    /// Floats of scratch: U (or its gradient, which reuses it), V, M, and the padded planes.
    public var workspaceCount: Int {
        let s = shape, cells = alpha * alpha, tiles = s.batch * tilesHigh * tilesWide
        return cells * (s.outChannels * s.inChannels + (s.inChannels + s.outChannels) * tiles) + paddedCount
            + maxKernelThreads * TileScratch.floatsPerThread
    }

    /// One channel's padded plane (all images) per thread. why per thread, not per channel: the plane is
    /// written and read back at once, so a cache-sized one saves writing the whole padded tensor to memory
    /// and reading it again (the copies were 4 % of a cnn step).
    private var paddedCount: Int {
        let s = shape
        return maxKernelThreads * s.batch * max(paddedHeight * paddedWidth, outputTile * tilesHigh * outputTile * tilesWide)
    }

    private struct Buffers {
        let u, v, m, padded: UnsafeMutablePointer<Float>
        let scratch: TileScratch
        let tiles: Int
    }

    private func buffers(batch: Int) -> Buffers {
        let s = shape, cells = alpha * alpha, tiles = batch * tilesHigh * tilesWide
        let u = workspace.pointer, v = u + cells * s.outChannels * s.inChannels
        let m = v + cells * s.inChannels * s.batch * tilesHigh * tilesWide
        let padded = m + cells * s.outChannels * s.batch * tilesHigh * tilesWide
        return Buffers(u: u, v: v, m: m, padded: padded, scratch: TileScratch(padded + paddedCount), tiles: tiles)
    }

    public func forward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, batch: Int, moments: UnsafeMutablePointer<Double>?) {
        let b = buffers(batch: batch)
        transformFilters(b, weight)
        transformInput(b, input, batch: batch)
        multiplyTiles(b, batch: batch)
        transformOutput(b, output, bias: bias, batch: batch, moments: moments)
    }

    public func backward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                         input: UnsafePointer<Float>, weight: UnsafePointer<Float>, batch: Int) {
        let s = shape, b = buffers(batch: batch), p = batch * s.height * s.width, cells = alpha * alpha
        addChannelSums(biasGrad, outputGrad, channels: s.outChannels, count: p)
        transformInput(b, input, batch: batch)
        transformOutputGradient(b, outputGrad, batch: batch)   // m holds dM
        parallelRanges(cells) { _, cellRange in for xi in cellRange {   // u holds dU
            BLAS.serialGemm(transposeB: true, m: s.outChannels, n: s.inChannels, k: b.tiles, a: b.m + xi * s.outChannels * b.tiles, lda: b.tiles,
                      b: b.v + xi * s.inChannels * b.tiles, ldb: b.tiles, beta: 0, c: b.u + xi * s.outChannels * s.inChannels, ldc: s.inChannels)
        } }
        addFilterGradient(b, weightGrad)
        guard let inputGrad else { return }
        transformFilters(b, weight)
        parallelRanges(cells) { _, cellRange in for xi in cellRange {   // v holds dV
            BLAS.serialGemm(transposeA: true, m: s.inChannels, n: b.tiles, k: s.outChannels, a: b.u + xi * s.outChannels * s.inChannels, lda: s.inChannels,
                      b: b.m + xi * s.outChannels * b.tiles, ldb: b.tiles, beta: 0, c: b.v + xi * s.inChannels * b.tiles, ldc: b.tiles)
        } }
        addInputGradient(b, inputGrad, batch: batch)
    }

    /// M[ξ] = U[ξ]·V[ξ] for every tile cell ξ.
    private func multiplyTiles(_ b: Buffers, batch: Int) {
        let s = shape
        parallelRanges(alpha * alpha) { _, cellRange in for xi in cellRange {   // independent products: one thread each
            BLAS.serialGemm(m: s.outChannels, n: b.tiles, k: s.inChannels, a: b.u + xi * s.outChannels * s.inChannels, lda: s.inChannels,
                      b: b.v + xi * s.inChannels * b.tiles, ldb: b.tiles, beta: 0, c: b.m + xi * s.outChannels * b.tiles, ldc: b.tiles)
        } }
    }

    // MARK: the four transforms and their adjoints, dispatched once per pass to the tile size's code

    private func transformFilters(_ b: Buffers, _ weight: UnsafePointer<Float>) {
        let pairs = shape.outChannels * shape.inChannels
        if outputTile == 4 { winogradFilters(WinogradF4.self, b.u, weight, pairs: pairs, tileScratch: b.scratch) }
        else { winogradFilters(WinogradF2.self, b.u, weight, pairs: pairs, tileScratch: b.scratch) }
    }

    private func addFilterGradient(_ b: Buffers, _ weightGrad: UnsafeMutablePointer<Float>) {
        let pairs = shape.outChannels * shape.inChannels
        if outputTile == 4 { winogradFilterGradient(WinogradF4.self, weightGrad, b.u, pairs: pairs, tileScratch: b.scratch) }
        else { winogradFilterGradient(WinogradF2.self, weightGrad, b.u, pairs: pairs, tileScratch: b.scratch) }
    }

    private func transformInput(_ b: Buffers, _ input: UnsafePointer<Float>, batch: Int) {
        let g = grid(batch: batch, planeHeight: paddedHeight, planeWidth: paddedWidth), c = shape.inChannels
        if outputTile == 4 {
            winogradTransformPlanes(WinogradF4.self, b.v, input, padded: b.padded, grid: g, channels: c, tileScratch: b.scratch,
                                    edge: WinogradF4.inputTile, offset: 1, WinogradF4.input)
        } else {
            winogradTransformPlanes(WinogradF2.self, b.v, input, padded: b.padded, grid: g, channels: c, tileScratch: b.scratch,
                                    edge: WinogradF2.inputTile, offset: 1, WinogradF2.input)
        }
    }

    private func addInputGradient(_ b: Buffers, _ inputGrad: UnsafeMutablePointer<Float>, batch: Int) {
        let g = grid(batch: batch, planeHeight: paddedHeight, planeWidth: paddedWidth), c = shape.inChannels
        if outputTile == 4 { winogradInputGradient(WinogradF4.self, inputGrad, b.v, padded: b.padded, grid: g, channels: c, tileScratch: b.scratch) }
        else { winogradInputGradient(WinogradF2.self, inputGrad, b.v, padded: b.padded, grid: g, channels: c, tileScratch: b.scratch) }
    }

    private func transformOutput(_ b: Buffers, _ output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, batch: Int,
                                 moments: UnsafeMutablePointer<Double>?) {
        let g = grid(batch: batch, planeHeight: outputTile * tilesHigh, planeWidth: outputTile * tilesWide), c = shape.outChannels
        if outputTile == 4 { winogradOutput(WinogradF4.self, output, b.m, bias: bias, grid: g, channels: c, tileScratch: b.scratch, moments: moments) }
        else { winogradOutput(WinogradF2.self, output, b.m, bias: bias, grid: g, channels: c, tileScratch: b.scratch, moments: moments) }
    }

    private func transformOutputGradient(_ b: Buffers, _ outputGrad: UnsafePointer<Float>, batch: Int) {
        let g = grid(batch: batch, planeHeight: outputTile * tilesHigh, planeWidth: outputTile * tilesWide), c = shape.outChannels
        if outputTile == 4 {
            winogradTransformPlanes(WinogradF4.self, b.m, outputGrad, padded: b.padded, grid: g, channels: c, tileScratch: b.scratch,
                                    edge: WinogradF4.outputTile, offset: 0, WinogradF4.outputAdjoint)
        } else {
            winogradTransformPlanes(WinogradF2.self, b.m, outputGrad, padded: b.padded, grid: g, channels: c, tileScratch: b.scratch,
                                    edge: WinogradF2.outputTile, offset: 0, WinogradF2.outputAdjoint)
        }
    }

    private func grid(batch: Int, planeHeight: Int, planeWidth: Int) -> TileGrid {
        TileGrid(batch: batch, height: shape.height, width: shape.width, tilesHigh: tilesHigh, tilesWide: tilesWide,
                 step: outputTile, planeHeight: planeHeight, planeWidth: planeWidth,
                 origins: planeWidth == paddedWidth ? paddedOrigins : gradientOrigins)
    }
}

/// Where the tiles of one channel lie: images of height × width cut into tilesHigh × tilesWide tiles of
/// `step` outputs, read from (or written to) a plane of planeHeight × planeWidth per image.
struct TileGrid {
    let batch, height, width, tilesHigh, tilesWide, step, planeHeight, planeWidth: Int
    /// Each tile's first element in the plane (tiles of the batch capacity, then 8 repeats of the last one).
    /// why a table: computing 8 origins per lane group (3 divisions each) into a SIMD vector cost a quarter
    /// of the input transform in store-forwarding stalls.
    let origins: UnsafePointer<Int>
    var tiles: Int { batch * tilesHigh * tilesWide }
    var planeCount: Int { batch * planeHeight * planeWidth }

    /// Copies one channel's images into the interior of its planes at (offset, offset) and zeroes the rest
    /// (only the rest: the interior is overwritten anyway).
    func pad(_ plane: UnsafeMutablePointer<Float>, from image: UnsafePointer<Float>, offset: Int) {
        let right = planeWidth - offset - width
        for n in 0..<batch {
            let p = plane + n * planeHeight * planeWidth
            p.update(repeating: 0, count: offset * planeWidth)                       // rows above
            for y in 0..<height {
                let row = p + (y + offset) * planeWidth
                row.update(repeating: 0, count: offset)
                (row + offset).update(from: image + (n * height + y) * width, count: width)
                (row + offset + width).update(repeating: 0, count: right)
            }
            let below = offset + height
            (p + below * planeWidth).update(repeating: 0, count: (planeHeight - below) * planeWidth)   // rows below
        }
    }
}

/// Gathers `rows × cols` values of 8 tiles at `origins` (row stride `rowStride`) into lane vectors.
@inline(__always)
private func gatherTiles(_ plane: UnsafePointer<Float>, _ o: UnsafePointer<Int>, rows: Int, cols: Int, rowStride: Int,
                         into x: UnsafeMutablePointer<WinogradLanes>) {
    // why 8 pointers first: the stores into x could alias the origin table, so reading o[l] in the loop
    // would reload all 8 origins after every store.
    let p0 = plane + o[0], p1 = plane + o[1], p2 = plane + o[2], p3 = plane + o[3]
    let p4 = plane + o[4], p5 = plane + o[5], p6 = plane + o[6], p7 = plane + o[7]
    for r in 0..<rows { for c in 0..<cols {
        let d = r * rowStride + c
        x[r * cols + c] = WinogradLanes(p0[d], p1[d], p2[d], p3[d], p4[d], p5[d], p6[d], p7[d])
    } }
}

/// Stores the first `lanes` lanes of each of `cells` vectors to dst[cell·cellStride ..].
@inline(__always)
private func storeLanes(_ y: UnsafePointer<WinogradLanes>, cells: Int, lanes: Int, _ dst: UnsafeMutablePointer<Float>, cellStride: Int) {
    if lanes == 8 {
        for cell in 0..<cells { UnsafeMutableRawPointer(dst + cell * cellStride).storeBytes(of: y[cell], as: WinogradLanes.self) }
    } else {
        for cell in 0..<cells { for l in 0..<lanes { dst[cell * cellStride + l] = y[cell][l] } }
    }
}

/// row[0..<count] += lane l of y[0..<count] (count 4 or 6: a SIMD4 and a SIMD2), i.e. one row of one tile.
/// why not a scalar loop: this scatter of the input gradient was 9 % of a step (one bounds-checked scalar
/// add per value).
@inline(__always)
private func addLane(_ y: UnsafePointer<WinogradLanes>, _ l: Int, count: Int, to row: UnsafeMutablePointer<Float>) {
    let s = UnsafeRawPointer(y).assumingMemoryBound(to: Float.self) + l   // y[k][l] is s[8·k]
    let head = UnsafeMutableRawPointer(row)
    head.storeBytes(of: head.loadUnaligned(as: SIMD4<Float>.self) + SIMD4(s[0], s[8], s[16], s[24]), as: SIMD4<Float>.self)
    if count == 6 {
        let tail = head + 16
        tail.storeBytes(of: tail.loadUnaligned(as: SIMD2<Float>.self) + SIMD2(s[32], s[40]), as: SIMD2<Float>.self)
    }
}

/// row[0..<count] = lane l of y[0..<count] + bias (count 2 or 4), one full output row of one tile.
@inline(__always)
private func storeLane(_ y: UnsafePointer<WinogradLanes>, _ l: Int, count: Int, plus bias: Float, to row: UnsafeMutablePointer<Float>) {
    let s = UnsafeRawPointer(y).assumingMemoryBound(to: Float.self) + l
    if count == 4 {
        UnsafeMutableRawPointer(row).storeBytes(of: SIMD4(s[0], s[8], s[16], s[24]) + bias, as: SIMD4<Float>.self)
    } else {
        UnsafeMutableRawPointer(row).storeBytes(of: SIMD2(s[0], s[8]) + bias, as: SIMD2<Float>.self)
    }
}

/// Loads 8 consecutive floats (or the first `lanes`, zero after) of each of `cells` rows src[cell·cellStride ..].
@inline(__always)
private func loadLanes(_ src: UnsafePointer<Float>, cells: Int, lanes: Int, cellStride: Int, into x: UnsafeMutablePointer<WinogradLanes>) {
    if lanes == 8 {
        for cell in 0..<cells { x[cell] = UnsafeRawPointer(src + cell * cellStride).loadUnaligned(as: WinogradLanes.self) }
    } else {
        for cell in 0..<cells {
            var v = WinogradLanes()
            for l in 0..<lanes { v[l] = src[cell * cellStride + l] }
            x[cell] = v
        }
    }
}

/// Per-thread room for one lane group's tile, its transform and the transform's intermediate (36 lane
/// vectors each, enough for α = 6), carved from the algorithm's workspace: no allocation per pass.
struct TileScratch {
    static let floatsPerThread = 3 * 36 * 8
    let base: UnsafeMutablePointer<Float>
    init(_ base: UnsafeMutablePointer<Float>) { self.base = base }

    @inline(__always)
    func lanes(_ thread: Int) -> (x: UnsafeMutablePointer<WinogradLanes>, y: UnsafeMutablePointer<WinogradLanes>, scratch: UnsafeMutablePointer<WinogradLanes>) {
        let p = UnsafeMutableRawPointer(base + thread * Self.floatsPerThread).assumingMemoryBound(to: WinogradLanes.self)
        return (p, p + 36, p + 72)
    }
}

/// u[ξ, pair] = (G·g·Gᵀ)[ξ] for the filters g = weight[pair] (9 floats each), 8 filters per step.
@inline(__always)   // why: specialised per tile size at each call; LLVM otherwise merges the two into one slow copy
func winogradFilters<T: WinogradTransform>(_: T.Type, _ u: UnsafeMutablePointer<Float>, _ weight: UnsafePointer<Float>, pairs: Int, tileScratch: TileScratch) {
    let a = T.inputTile, groups = (pairs + 7) / 8
    parallelRanges(groups) { thread, range in
        let (x, y, scratch) = tileScratch.lanes(thread)
        for group in range {
            let p0 = group * 8, lanes = min(8, pairs - p0)
            var filters = weight + 9 * p0
            if lanes < 8 {   // the last group: its filters, zero-padded to 8, in y (free until `separable` writes it)
                let copy = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)
                copy.initialize(repeating: 0, count: 72)
                copy.update(from: filters, count: 9 * lanes)
                filters = UnsafePointer(copy)
            }
            for k in 0..<9 {   // 8 consecutive 3×3 filters, 9 floats apart
                x[k] = WinogradLanes(filters[k], filters[9 + k], filters[18 + k], filters[27 + k],
                                     filters[36 + k], filters[45 + k], filters[54 + k], filters[63 + k])
            }
            separable(x, rows: 3, cols: 3, y, colsOut: a, rowsOut: a, scratch: scratch, T.filter)
            storeLanes(y, cells: a * a, lanes: lanes, u + p0, cellStride: pairs)
        }
    }
}

/// weightGrad[pair] += Gᵀ·dU·G, the adjoint of `winogradFilters`.
@inline(__always)   // why: specialised per tile size at each call; LLVM otherwise merges the two into one slow copy
func winogradFilterGradient<T: WinogradTransform>(_: T.Type, _ weightGrad: UnsafeMutablePointer<Float>, _ du: UnsafePointer<Float>, pairs: Int, tileScratch: TileScratch) {
    let a = T.inputTile, groups = (pairs + 7) / 8
    parallelRanges(groups) { thread, range in
        let (x, y, scratch) = tileScratch.lanes(thread)
        for group in range {
            let p0 = group * 8, lanes = min(8, pairs - p0)
            loadLanes(du + p0, cells: a * a, lanes: lanes, cellStride: pairs, into: x)
            separable(x, rows: a, cols: a, y, colsOut: 3, rowsOut: 3, scratch: scratch, T.filterAdjoint)
            for l in 0..<lanes {
                let w = weightGrad + 9 * (p0 + l)
                for k in 0..<9 { w[k] += y[k][l] }
            }
        }
    }
}

/// dst[ξ, c, t] = (T·d·Tᵀ)[ξ] for every tile t of every channel of `source`, where d is the tile's
/// `edge`×`edge` window of the channel's zero-padded plane (the image placed at `offset`) and T the
/// 1-D `transform` to α values. The input transform (Bᵀ·d·B, α×α windows at offset 1) and the adjoint
/// output transform (A·dY·Aᵀ, m×m windows at offset 0) are both this.
@inline(__always)   // why: specialised per tile size at each call; LLVM otherwise merges the two into one slow copy
func winogradTransformPlanes<T: WinogradTransform>(_: T.Type, _ dst: UnsafeMutablePointer<Float>, _ source: UnsafePointer<Float>,
                                                   padded: UnsafeMutablePointer<Float>, grid g: TileGrid, channels: Int,
                                                   tileScratch: TileScratch, edge: Int, offset: Int,
                                                   _ transform: (UnsafePointer<WinogradLanes>, Int, UnsafeMutablePointer<WinogradLanes>, Int) -> Void) {
    let a = T.inputTile, tiles = g.tiles, imageCount = g.batch * g.height * g.width
    parallelRanges(channels) { thread, range in
        let (x, y, scratch) = tileScratch.lanes(thread)
        for c in range {
            let plane = padded + thread * g.planeCount
            g.pad(plane, from: source + c * imageCount, offset: offset)
            for t0 in stride(from: 0, to: tiles, by: 8) {
                gatherTiles(plane, g.origins + t0, rows: edge, cols: edge, rowStride: g.planeWidth, into: x)
                separable(x, rows: edge, cols: edge, y, colsOut: a, rowsOut: a, scratch: scratch, transform)
                storeLanes(y, cells: a * a, lanes: min(8, tiles - t0), dst + c * tiles + t0, cellStride: channels * tiles)
            }
        }
    }
}

/// inputGrad += B·dV·Bᵀ per tile, added onto the (overlapping) α×α input windows.
@inline(__always)   // why: specialised per tile size at each call; LLVM otherwise merges the two into one slow copy
func winogradInputGradient<T: WinogradTransform>(_: T.Type, _ inputGrad: UnsafeMutablePointer<Float>, _ dv: UnsafePointer<Float>,
                                                 padded: UnsafeMutablePointer<Float>, grid g: TileGrid, channels: Int, tileScratch: TileScratch) {
    let a = T.inputTile, tiles = g.tiles, imageCount = g.batch * g.height * g.width
    parallelRanges(channels) { thread, range in
        let (x, y, scratch) = tileScratch.lanes(thread)
        for c in range {
            let plane = padded + thread * g.planeCount
            plane.initialize(repeating: 0, count: g.planeCount)
            for t0 in stride(from: 0, to: tiles, by: 8) {
                let lanes = min(8, tiles - t0)
                loadLanes(dv + c * tiles + t0, cells: a * a, lanes: lanes, cellStride: channels * tiles, into: x)
                separable(x, rows: a, cols: a, y, colsOut: a, rowsOut: a, scratch: scratch, T.inputAdjoint)
                for l in 0..<lanes {
                    let o = g.origins[t0 + l]
                    for r in 0..<a { addLane(y + r * a, l, count: a, to: plane + o + r * g.planeWidth) }
                }
            }
            let dx = inputGrad + c * imageCount
            for n in 0..<g.batch { for yy in 0..<g.height {
                let src = plane + (n * g.planeHeight + yy + 1) * g.planeWidth + 1, dst = dx + (n * g.height + yy) * g.width
                for xx in 0..<g.width { dst[xx] += src[xx] }
            } }
        }
    }
}

/// output[c] = Aᵀ·m·A + bias per tile (only the outputs inside the image are written).
@inline(__always)   // why: specialised per tile size at each call; LLVM otherwise merges the two into one slow copy
func winogradOutput<T: WinogradTransform>(_: T.Type, _ output: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>,
                                          bias: UnsafePointer<Float>, grid g: TileGrid, channels: Int, tileScratch: TileScratch,
                                          moments: UnsafeMutablePointer<Double>?) {
    let a = T.inputTile, step = T.outputTile, tiles = g.tiles, imageCount = g.batch * g.height * g.width
    parallelRanges(channels) { thread, range in
        let (x, y, scratch) = tileScratch.lanes(thread)
        for c in range {
            let out = output + c * imageCount, b = bias[c]
            for t0 in stride(from: 0, to: tiles, by: 8) {
                let lanes = min(8, tiles - t0)
                loadLanes(m + c * tiles + t0, cells: a * a, lanes: lanes, cellStride: channels * tiles, into: x)
                separable(x, rows: a, cols: a, y, colsOut: step, rowsOut: step, scratch: scratch, T.output)
                for l in 0..<lanes {
                    let t = t0 + l, tx = t % g.tilesWide, rest = t / g.tilesWide, ty = rest % g.tilesHigh, n = rest / g.tilesHigh
                    let rows = min(step, g.height - step * ty), cols = min(step, g.width - step * tx)
                    let o = out + (n * g.height + step * ty) * g.width + step * tx
                    if rows == step && cols == step {
                        for r in 0..<step { storeLane(y + r * step, l, count: step, plus: b, to: o + r * g.width) }
                    } else {   // a tile over the image's edge
                        for r in 0..<rows { for col in 0..<cols { o[r * g.width + col] = y[r * step + col][l] + b } }
                    }
                }
            }
            // The channel was just written: its sums read it from cache, not from memory as BatchNorm would.
            if let moments { (moments[c], moments[channels + c]) = sumAndSquares(out, count: imageCount) }
        }
    }
}
