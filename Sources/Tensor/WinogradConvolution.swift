// Winograd F(2×2, 3×3) for 3×3 stride-1 padding-1 convolutions on CNHW activations (Lavin & Gray 2016).
// Each 2×2 output tile comes from a 4×4 input tile: with U = G·g·Gᵀ (filter), V = Bᵀ·d·B (input),
// the tile is Y = Aᵀ·(U ⊙ V)·A. Over all channels and tiles the elementwise stage is 16 independent
// matrix products M[ξ] = U[ξ] (Cout × Cin) · V[ξ] (Cin × tiles), one sgemm each: 16 multiplications per
// 4 outputs per channel pair instead of 36. The backward passes are the exact adjoints of this forward:
//   dM[ξ] = A·dY·Aᵀ per tile;  dV[ξ] = U[ξ]ᵀ·dM[ξ];  dX += B·dV·Bᵀ (tiles overlap: added);
//   dU[ξ] = dM[ξ]·V[ξ]ᵀ;  dW += Gᵀ·dU·G.
// Layouts (ξ = 4·row + column of the 4×4 tile): U [16, Cout, Cin], V [16, Cin, T], M [16, Cout, T] with
// T = N·⌈H/2⌉·⌈W/2⌉ tiles, tile t = (n·tilesHigh + ty)·tilesWide + tx.

/// Conv2d 3×3 / stride 1 / padding 1 by Winograd F(2×2, 3×3) (ConvolutionAlgorithm.swift).
public final class WinogradConvolution: ConvolutionAlgorithm {
    public let shape: ConvShape
    private let workspace: Workspace
    public var name: String { "winograd F(2x2,3x3)" }
    private var tilesHigh: Int { (shape.height + 1) / 2 }
    private var tilesWide: Int { (shape.width + 1) / 2 }

    public init(_ shape: ConvShape, workspace: Workspace) {
        precondition(shape.kernel == 3 && shape.stride == 1 && shape.padding == 1, "Winograd F(2×2, 3×3) needs a 3×3 stride-1 padding-1 convolution")
        self.shape = shape; self.workspace = workspace
        workspace.reserve(Self.workspaceCount(shape))
    }

    /// Floats of scratch: U and its gradient, V, M.
    static func workspaceCount(_ s: ConvShape) -> Int {
        let tiles = s.batch * ((s.height + 1) / 2) * ((s.width + 1) / 2)
        return 16 * (2 * s.outChannels * s.inChannels + s.inChannels * tiles + s.outChannels * tiles)
    }

    private func buffers(batch: Int) -> (u: UnsafeMutablePointer<Float>, du: UnsafeMutablePointer<Float>,
                                         v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, tiles: Int) {
        let pairs = shape.outChannels * shape.inChannels, tiles = batch * tilesHigh * tilesWide
        let u = workspace.pointer, du = u + 16 * pairs, v = du + 16 * pairs, m = v + 16 * shape.inChannels * tiles
        return (u, du, v, m, tiles)
    }

    public func forward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, batch: Int) {
        let s = shape, (u, _, v, m, tiles) = buffers(batch: batch)
        transformFilters(u, weight)
        transformInput(v, input, batch: batch)
        for xi in 0..<16 {
            BLAS.gemm(m: s.outChannels, n: tiles, k: s.inChannels, a: u + xi * s.outChannels * s.inChannels, lda: s.inChannels,
                      b: v + xi * s.inChannels * tiles, ldb: tiles, beta: 0, c: m + xi * s.outChannels * tiles, ldc: tiles)
        }
        inverseTransformOutput(output, m, bias: bias, batch: batch)
    }

    public func backward(inputGrad: UnsafeMutablePointer<Float>?, weightGrad: UnsafeMutablePointer<Float>,
                         biasGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                         input: UnsafePointer<Float>, weight: UnsafePointer<Float>, batch: Int) {
        let s = shape, (u, du, v, m, tiles) = buffers(batch: batch), p = batch * s.height * s.width
        for co in 0..<s.outChannels { biasGrad[co] += sumOf(outputGrad + co * p, count: p) }
        transformFilters(u, weight)
        transformInput(v, input, batch: batch)
        adjointOutputTransform(m, outputGrad, batch: batch)          // m now holds dM
        for xi in 0..<16 {
            BLAS.gemm(transposeB: true, m: s.outChannels, n: s.inChannels, k: tiles, a: m + xi * s.outChannels * tiles, lda: tiles,
                      b: v + xi * s.inChannels * tiles, ldb: tiles, beta: 0, c: du + xi * s.outChannels * s.inChannels, ldc: s.inChannels)
        }
        addAdjointFilterTransform(weightGrad, du)
        guard let inputGrad else { return }
        for xi in 0..<16 {   // v now holds dV
            BLAS.gemm(transposeA: true, m: s.inChannels, n: tiles, k: s.outChannels, a: u + xi * s.outChannels * s.inChannels, lda: s.inChannels,
                      b: m + xi * s.outChannels * tiles, ldb: tiles, beta: 0, c: v + xi * s.inChannels * tiles, ldc: tiles)
        }
        addAdjointInputTransform(inputGrad, v, batch: batch)
    }

    // MARK: transforms (G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], Aᵀ = [1 1 1 0; 0 1 −1 −1])

    /// u[ξ, co, ci] = (G·g·Gᵀ)[ξ] for every filter g = weight[co, ci].
    private func transformFilters(_ u: UnsafeMutablePointer<Float>, _ weight: UnsafePointer<Float>) {
        let pairs = shape.outChannels * shape.inChannels
        parallelFor(pairs) { pair in
            let g = weight + 9 * pair
            // A tuple, not an array: no allocation per filter.
            var gg = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
            // G·g: 4×3, row by row.
            withUnsafeMutableBytes(of: &gg) { raw in
                let r = raw.bindMemory(to: Float.self)
                for c in 0..<3 {
                    let g0 = g[c], g1 = g[3 + c], g2 = g[6 + c]
                    r[c] = g0; r[3 + c] = 0.5 * (g0 + g1 + g2); r[6 + c] = 0.5 * (g0 - g1 + g2); r[9 + c] = g2
                }
                for row in 0..<4 {
                    let a = r[3 * row], b = r[3 * row + 1], c = r[3 * row + 2]
                    u[(4 * row + 0) * pairs + pair] = a
                    u[(4 * row + 1) * pairs + pair] = 0.5 * (a + b + c)
                    u[(4 * row + 2) * pairs + pair] = 0.5 * (a - b + c)
                    u[(4 * row + 3) * pairs + pair] = c
                }
            }
        }
    }

    /// weightGrad[co, ci] += Gᵀ·dU·G, the adjoint of `transformFilters`.
    private func addAdjointFilterTransform(_ weightGrad: UnsafeMutablePointer<Float>, _ du: UnsafePointer<Float>) {
        let pairs = shape.outChannels * shape.inChannels
        parallelFor(pairs) { pair in
            // rows: dU·G (4×3), then Gᵀ·(that) (3×3).
            var r = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
            withUnsafeMutableBytes(of: &r) { raw in
                let q = raw.bindMemory(to: Float.self)
                for row in 0..<4 {
                    let d0 = du[(4 * row) * pairs + pair], d1 = du[(4 * row + 1) * pairs + pair]
                    let d2 = du[(4 * row + 2) * pairs + pair], d3 = du[(4 * row + 3) * pairs + pair]
                    q[3 * row] = d0 + 0.5 * (d1 + d2); q[3 * row + 1] = 0.5 * (d1 - d2); q[3 * row + 2] = 0.5 * (d1 + d2) + d3
                }
                let w = weightGrad + 9 * pair
                for c in 0..<3 {
                    let a = q[c], b = q[3 + c], d = q[6 + c], e = q[9 + c]
                    w[c] += a + 0.5 * (b + d); w[3 + c] += 0.5 * (b - d); w[6 + c] += 0.5 * (b + d) + e
                }
            }
        }
    }

    /// v[ξ, ci, t] = (Bᵀ·d·B)[ξ] for the 4×4 input tile d of tile t (zero outside the image).
    private func transformInput(_ v: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, batch: Int) {
        let s = shape, h = s.height, w = s.width, th = tilesHigh, tw = tilesWide, tiles = batch * th * tw
        let channelStride = batch * h * w
        parallelFor(s.inChannels) { ci in
            let x = input + ci * channelStride
            for n in 0..<batch { for ty in 0..<th { for tx in 0..<tw {
                var d = SIMD16<Float>()
                for r in 0..<4 {
                    let y = 2 * ty - 1 + r
                    guard y >= 0 && y < h else { continue }
                    for c in 0..<4 {
                        let xx = 2 * tx - 1 + c
                        if xx >= 0 && xx < w { d[4 * r + c] = x[(n * h + y) * w + xx] }
                    }
                }
                // Bᵀ·d (rows), then ·B (columns).
                var e = SIMD16<Float>()
                for c in 0..<4 {
                    let d0 = d[c], d1 = d[4 + c], d2 = d[8 + c], d3 = d[12 + c]
                    e[c] = d0 - d2; e[4 + c] = d1 + d2; e[8 + c] = d2 - d1; e[12 + c] = d1 - d3
                }
                let t = (n * th + ty) * tw + tx
                for r in 0..<4 {
                    let e0 = e[4 * r], e1 = e[4 * r + 1], e2 = e[4 * r + 2], e3 = e[4 * r + 3]
                    let base = v + ci * tiles + t
                    base[(4 * r) * s.inChannels * tiles] = e0 - e2
                    base[(4 * r + 1) * s.inChannels * tiles] = e1 + e2
                    base[(4 * r + 2) * s.inChannels * tiles] = e2 - e1
                    base[(4 * r + 3) * s.inChannels * tiles] = e1 - e3
                }
            } } }
        }
    }

    /// inputGrad += B·dV·Bᵀ per tile, scattered onto the (overlapping) 4×4 input windows.
    private func addAdjointInputTransform(_ inputGrad: UnsafeMutablePointer<Float>, _ dv: UnsafePointer<Float>, batch: Int) {
        let s = shape, h = s.height, w = s.width, th = tilesHigh, tw = tilesWide, tiles = batch * th * tw
        let channelStride = batch * h * w
        parallelFor(s.inChannels) { ci in
            let dx = inputGrad + ci * channelStride
            for n in 0..<batch { for ty in 0..<th { for tx in 0..<tw {
                let t = (n * th + ty) * tw + tx, base = dv + ci * tiles + t
                var q = SIMD16<Float>()
                for i in 0..<16 { q[i] = base[i * s.inChannels * tiles] }
                // Adjoint of ·B on each row: (q0, q1, q2, q3) → (q0, q1 − q2 + q3, −q0 + q1 + q2, −q3).
                var e = SIMD16<Float>()
                for r in 0..<4 {
                    let q0 = q[4 * r], q1 = q[4 * r + 1], q2 = q[4 * r + 2], q3 = q[4 * r + 3]
                    e[4 * r] = q0; e[4 * r + 1] = q1 - q2 + q3; e[4 * r + 2] = q1 + q2 - q0; e[4 * r + 3] = -q3
                }
                // Adjoint of Bᵀ· on each column.
                var d = SIMD16<Float>()
                for c in 0..<4 {
                    let e0 = e[c], e1 = e[4 + c], e2 = e[8 + c], e3 = e[12 + c]
                    d[c] = e0; d[4 + c] = e1 - e2 + e3; d[8 + c] = e1 + e2 - e0; d[12 + c] = -e3
                }
                for r in 0..<4 {
                    let y = 2 * ty - 1 + r
                    guard y >= 0 && y < h else { continue }
                    for c in 0..<4 {
                        let xx = 2 * tx - 1 + c
                        if xx >= 0 && xx < w { dx[(n * h + y) * w + xx] += d[4 * r + c] }
                    }
                }
            } } }
        }
    }

    /// output[co] = Aᵀ·m·A + bias per tile (only the outputs inside the image are written).
    private func inverseTransformOutput(_ output: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>,
                                        bias: UnsafePointer<Float>, batch: Int) {
        let s = shape, h = s.height, w = s.width, th = tilesHigh, tw = tilesWide, tiles = batch * th * tw
        let channelStride = batch * h * w
        parallelFor(s.outChannels) { co in
            let y = output + co * channelStride
            for n in 0..<batch { for ty in 0..<th { for tx in 0..<tw {
                let t = (n * th + ty) * tw + tx, base = m + co * tiles + t
                var q = SIMD16<Float>()
                for i in 0..<16 { q[i] = base[i * s.outChannels * tiles] }
                // Aᵀ·q (2×4), then ·A (2×2).
                var a = SIMD8<Float>()
                for c in 0..<4 { a[c] = q[c] + q[4 + c] + q[8 + c]; a[4 + c] = q[4 + c] - q[8 + c] - q[12 + c] }
                for r in 0..<2 {
                    let oy = 2 * ty + r
                    guard oy < h else { continue }
                    let a0 = a[4 * r], a1 = a[4 * r + 1], a2 = a[4 * r + 2], a3 = a[4 * r + 3]
                    y[(n * h + oy) * w + 2 * tx] = a0 + a1 + a2 + bias[co]
                    if 2 * tx + 1 < w { y[(n * h + oy) * w + 2 * tx + 1] = a1 - a2 - a3 + bias[co] }
                }
            } } }
        }
    }

    /// m[ξ, co, t] = (A·dY·Aᵀ)[ξ] for the 2×2 output-gradient tile (zero outside the image).
    private func adjointOutputTransform(_ m: UnsafeMutablePointer<Float>, _ outputGrad: UnsafePointer<Float>, batch: Int) {
        let s = shape, h = s.height, w = s.width, th = tilesHigh, tw = tilesWide, tiles = batch * th * tw
        let channelStride = batch * h * w
        parallelFor(s.outChannels) { co in
            let dy = outputGrad + co * channelStride
            for n in 0..<batch { for ty in 0..<th { for tx in 0..<tw {
                var g = SIMD4<Float>()
                for r in 0..<2 {
                    let oy = 2 * ty + r
                    guard oy < h else { continue }
                    for c in 0..<2 where 2 * tx + c < w { g[2 * r + c] = dy[(n * h + oy) * w + 2 * tx + c] }
                }
                // dY·Aᵀ per row: (g0, g1) → (g0, g0 + g1, g0 − g1, −g1); then A· per column likewise.
                var e = SIMD8<Float>()
                for r in 0..<2 {
                    let g0 = g[2 * r], g1 = g[2 * r + 1]
                    e[4 * r] = g0; e[4 * r + 1] = g0 + g1; e[4 * r + 2] = g0 - g1; e[4 * r + 3] = -g1
                }
                let t = (n * th + ty) * tw + tx, base = m + co * tiles + t
                for c in 0..<4 {
                    let e0 = e[c], e1 = e[4 + c]
                    base[(c) * s.outChannels * tiles] = e0
                    base[(4 + c) * s.outChannels * tiles] = e0 + e1
                    base[(8 + c) * s.outChannels * tiles] = e0 - e1
                    base[(12 + c) * s.outChannels * tiles] = -e1
                }
            } } }
        }
    }
}
