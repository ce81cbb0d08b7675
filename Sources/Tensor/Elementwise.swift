import Dispatch

/// dst[i] += src[i].
@inline(__always)
public func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { dst[i] += src[i] }
}

/// Σ x[i], accumulated in Double so the result does not depend on how long the run is.
@inline(__always)
public func sumOf(_ x: UnsafePointer<Float>, count: Int) -> Float {
    // why: eight independent partial sums let the loop vectorise while keeping Double accuracy.
    var partial = SIMD8<Double>()
    var i = 0
    while i + 8 <= count {
        partial += SIMD8<Double>(Double(x[i]), Double(x[i + 1]), Double(x[i + 2]), Double(x[i + 3]),
                                 Double(x[i + 4]), Double(x[i + 5]), Double(x[i + 6]), Double(x[i + 7]))
        i += 8
    }
    var total = partial.sum()
    while i < count { total += Double(x[i]); i += 1 }
    return Float(total)
}

/// sums[c] += Σ x[c, 0..<count] for each of `channels` channels (a bias gradient from a CNHW output gradient).
public func addChannelSums(_ sums: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, channels: Int, count: Int) {
    parallelFor(channels) { c in sums[c] += sumOf(x + c * count, count: count) }
}

/// Threads used by the non-BLAS kernels (im2col, col2im, BatchNorm); set with `BLAS.threads` by the CLI.
nonisolated(unsafe) public var kernelThreads = 1

/// Runs body(0..<count) split over `kernelThreads` threads. Each index must touch disjoint memory, so
/// results do not depend on the thread count.
@inline(__always)
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    let threads = min(kernelThreads, count)
    if threads <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let task = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let start = count * t / threads, end = count * (t + 1) / threads
            for i in start..<end { task.value(i) }
        }
    }
}

/// The most threads `parallelRanges` splits into (and per-thread scratch must be sized for).
public let maxKernelThreads = 64

/// Runs body(thread, range) once per thread over contiguous ranges covering 0..<count (thread < maxKernelThreads),
/// for kernels that set up per-thread scratch once rather than per index. Same disjointness rule as `parallelFor`.
@inline(__always)
public func parallelRanges(_ count: Int, _ body: (Int, Range<Int>) -> Void) {
    let threads = min(kernelThreads, count, maxKernelThreads)
    if threads <= 1 {
        if count > 0 { body(0, 0..<count) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let task = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            task.value(t, (count * t / threads)..<(count * (t + 1) / threads))
        }
    }
}

/// why: the kernels' closures capture raw pointers to disjoint ranges, which Swift cannot prove safe.
private struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Eight consecutive floats as one vector (no alignment needed).
@inline(__always)
public func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
public func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { load8(UnsafePointer(p)) }

@inline(__always)
public func store8(_ value: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: value, as: SIMD8<Float>.self)
}

/// √(Σ x²) over `count` floats, in Float vector partial sums over 4,096-value runs gathered in Double.
public func l2Norm(_ x: UnsafePointer<Float>, count: Int) -> Double {
    var total = 0.0
    var i = 0
    while i < count {
        let end = min(count, i + 4096)
        var acc = SIMD8<Float>()
        while i + 8 <= end { let v = load8(x + i); acc += v * v; i += 8 }
        var partial = Double(acc.sum())
        while i < end { partial += Double(x[i] * x[i]); i += 1 }
        total += partial
    }
    return total.squareRoot()
}
