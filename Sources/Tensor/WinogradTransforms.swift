// The tile transforms of Winograd F(m×m, 3×3) (Lavin & Gray 2016), m = 2 or 4, α = m + 2.
// A 2-D transform T·X·Tᵀ is separable: the same 1-D transform on every column, then on every row
// (`separable`). Each value is a `WinogradLanes` vector holding one number of 8 different tiles (or
// filters), so every operation is one SIMD operation over 8 independent tiles and the transforms need
// no shuffles. Each 1-D function reads its inputs at src[i·srcStride] and writes dst[j·dstStride].
// The adjoints (transposed matrices) are what the backward passes need.

/// One value of 8 independent tiles (or filters).
public typealias WinogradLanes = SIMD8<Float>

/// The transform matrices of one Winograd tile size, as 1-D functions and their adjoints.
protocol WinogradTransform {
    /// Output tile edge m.
    static var outputTile: Int { get }
    /// Input tile edge α = m + 2.
    static var inputTile: Int { get }
    /// α values → α: Bᵀ·d.
    static func input(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int)
    /// α → α: B·q (adjoint of `input`).
    static func inputAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int)
    /// 3 → α: G·g.
    static func filter(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int)
    /// α → 3: Gᵀ·q.
    static func filterAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int)
    /// α → m: Aᵀ·q.
    static func output(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int)
    /// m → α: A·g.
    static func outputAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int)
}

/// y (rowsOut × colsOut) = T·x·Tᵀ for x (rows × cols) and the 1-D transform `f` (rows → rowsOut, cols → colsOut);
/// `scratch` holds rowsOut × cols values.
@inline(__always)
func separable(_ x: UnsafePointer<WinogradLanes>, rows: Int, cols: Int, _ y: UnsafeMutablePointer<WinogradLanes>,
               colsOut: Int, rowsOut: Int, scratch: UnsafeMutablePointer<WinogradLanes>,
               _ f: (UnsafePointer<WinogradLanes>, Int, UnsafeMutablePointer<WinogradLanes>, Int) -> Void) {
    for c in 0..<cols { f(x + c, cols, scratch + c, cols) }
    for r in 0..<rowsOut { f(scratch + r * cols, 1, y + r * colsOut, 1) }
}

/// F(2×2, 3×3): Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
/// Aᵀ = [1 1 1 0; 0 1 −1 −1]. Exact in binary arithmetic up to the halves: the most accurate choice.
enum WinogradF2: WinogradTransform {
    static var outputTile: Int { 2 }
    static var inputTile: Int { 4 }

    @inline(__always)
    static func input(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let x0 = s[0], x1 = s[ss], x2 = s[2 * ss], x3 = s[3 * ss]
        d[0] = x0 - x2; d[ds] = x1 + x2; d[2 * ds] = x2 - x1; d[3 * ds] = x1 - x3
    }
    @inline(__always)
    static func inputAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let q0 = s[0], q1 = s[ss], q2 = s[2 * ss], q3 = s[3 * ss]
        d[0] = q0; d[ds] = q1 - q2 + q3; d[2 * ds] = q1 + q2 - q0; d[3 * ds] = -q3
    }
    @inline(__always)
    static func filter(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let g0 = s[0], g1 = s[ss], g2 = s[2 * ss]
        d[0] = g0; d[ds] = 0.5 * (g0 + g1 + g2); d[2 * ds] = 0.5 * (g0 - g1 + g2); d[3 * ds] = g2
    }
    @inline(__always)
    static func filterAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let q0 = s[0], q1 = s[ss], q2 = s[2 * ss], q3 = s[3 * ss]
        d[0] = q0 + 0.5 * (q1 + q2); d[ds] = 0.5 * (q1 - q2); d[2 * ds] = 0.5 * (q1 + q2) + q3
    }
    @inline(__always)
    static func output(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let m0 = s[0], m1 = s[ss], m2 = s[2 * ss], m3 = s[3 * ss]
        d[0] = m0 + m1 + m2; d[ds] = m1 - m2 - m3
    }
    @inline(__always)
    static func outputAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let g0 = s[0], g1 = s[ss]
        d[0] = g0; d[ds] = g0 + g1; d[2 * ds] = g0 - g1; d[3 * ds] = -g1
    }
}

/// F(4×4, 3×3) on the points 0, ±1, ±2, ∞:
/// Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1],
/// G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1⁄24 1⁄12 ⅙; 1⁄24 −1⁄12 ⅙; 0 0 1],
/// Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
/// A quarter of the direct convolution's multiplications for 3×3, at a larger rounding error than F(2×2).
enum WinogradF4: WinogradTransform {
    static var outputTile: Int { 4 }
    static var inputTile: Int { 6 }

    @inline(__always)
    static func input(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let x0 = s[0], x1 = s[ss], x2 = s[2 * ss], x3 = s[3 * ss], x4 = s[4 * ss], x5 = s[5 * ss]
        let a = x4 - x2, b = x3 - x1
        d[0] = 4 * x0 - 5 * x2 + x4
        d[ds] = x3 + x4 - 4 * (x1 + x2)
        d[2 * ds] = x4 - x3 + 4 * (x1 - x2)
        d[3 * ds] = a + 2 * b
        d[4 * ds] = a - 2 * b
        d[5 * ds] = 4 * x1 - 5 * x3 + x5
    }
    @inline(__always)
    static func inputAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let q0 = s[0], q1 = s[ss], q2 = s[2 * ss], q3 = s[3 * ss], q4 = s[4 * ss], q5 = s[5 * ss]
        d[0] = 4 * q0
        d[ds] = 4 * (q2 - q1 + q5) + 2 * (q4 - q3)
        d[2 * ds] = -5 * q0 - 4 * (q1 + q2) - q3 - q4
        d[3 * ds] = q1 - q2 + 2 * (q3 - q4) - 5 * q5
        d[4 * ds] = q0 + q1 + q2 + q3 + q4
        d[5 * ds] = q5
    }
    @inline(__always)
    static func filter(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let g0 = s[0], g1 = s[ss], g2 = s[2 * ss]
        let even = g0 + g2
        d[0] = 0.25 * g0
        d[ds] = (-1.0 / 6) * (even + g1)
        d[2 * ds] = (-1.0 / 6) * (even - g1)
        d[3 * ds] = (1.0 / 24) * g0 + (1.0 / 12) * g1 + (1.0 / 6) * g2
        d[4 * ds] = (1.0 / 24) * g0 - (1.0 / 12) * g1 + (1.0 / 6) * g2
        d[5 * ds] = g2
    }
    @inline(__always)
    static func filterAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let q0 = s[0], q1 = s[ss], q2 = s[2 * ss], q3 = s[3 * ss], q4 = s[4 * ss], q5 = s[5 * ss]
        d[0] = 0.25 * q0 - (1.0 / 6) * (q1 + q2) + (1.0 / 24) * (q3 + q4)
        d[ds] = (1.0 / 6) * (q2 - q1) + (1.0 / 12) * (q3 - q4)
        d[2 * ds] = (1.0 / 6) * (q3 + q4 - q1 - q2) + q5
    }
    @inline(__always)
    static func output(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let m0 = s[0], m1 = s[ss], m2 = s[2 * ss], m3 = s[3 * ss], m4 = s[4 * ss], m5 = s[5 * ss]
        let sum12 = m1 + m2, diff12 = m1 - m2, sum34 = m3 + m4, diff34 = m3 - m4
        d[0] = m0 + sum12 + sum34
        d[ds] = diff12 + 2 * diff34
        d[2 * ds] = sum12 + 4 * sum34
        d[3 * ds] = diff12 + 8 * diff34 + m5
    }
    @inline(__always)
    static func outputAdjoint(_ s: UnsafePointer<WinogradLanes>, _ ss: Int, _ d: UnsafeMutablePointer<WinogradLanes>, _ ds: Int) {
        let g0 = s[0], g1 = s[ss], g2 = s[2 * ss], g3 = s[3 * ss]
        let even = g0 + g2, odd = g1 + g3, even4 = g0 + 4 * g2, odd8 = 2 * g1 + 8 * g3
        d[0] = g0
        d[ds] = even + odd
        d[2 * ds] = even - odd
        d[3 * ds] = even4 + odd8
        d[4 * ds] = even4 - odd8
        d[5 * ds] = g3
    }
}
