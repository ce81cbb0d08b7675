#if canImport(Glibc)
import Glibc
#endif

// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels from the CPU model at load time, and
// 0.3.21 does not know every CPU: on these machines (an AVX-512 Xeon in a VM) it falls back to its
// Prescott (SSE3) kernels and runs sgemm at 31 GFLOP/s instead of 153. `BLAS.selectCore()` checks
// what the CPU can do and, when OpenBLAS chose a weaker kernel set and the user did not choose one
// with OPENBLAS_CORETYPE, re-runs OpenBLAS' own selection with the right core forced. The entry
// points are looked up at run time: an OpenBLAS without DYNAMIC_ARCH has them not and is left alone.

extension BLAS {
    /// The kernel set OpenBLAS uses ("Prescott", "Haswell", "SkylakeX", …).
    public static var coreName: String {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "openblas_get_corename") else { return "unknown" }
        let function = unsafeBitCast(symbol, to: (@convention(c) () -> UnsafePointer<CChar>?).self)
        return function().map { String(cString: $0) } ?? "unknown"
    }

    /// The best kernel set this CPU supports, by its feature flags (nil when unsure).
    static func bestCore(flags: Set<Substring>) -> String? {
        if ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// Kernel sets that are weaker than `core` (OpenBLAS' names, lowercased).
    static func isWeaker(_ current: String, than core: String) -> Bool {
        let order = ["skylakex": 3, "cooperlake": 3, "sapphirerapids": 3, "haswell": 2, "zen": 2]
        return (order[current.lowercased()] ?? 0) < (order[core.lowercased()] ?? 0)
    }

    /// What `selectCore` changed, for the start-up log (nil when nothing).
    nonisolated(unsafe) public private(set) static var coreSelectionNote: String?

    /// Forces OpenBLAS onto the best kernel set of this CPU if it picked a weaker one; returns a line
    /// for the start-up log when it changed something. Call before the first matrix product.
    @discardableResult
    public static func selectCore() -> String? {
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let quit = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_quit"),
              let initialize = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_init"),
              let flags = cpuFlags(), let best = bestCore(flags: flags) else { return nil }
        let detected = coreName
        guard isWeaker(detected, than: best) else { return nil }
        setenv("OPENBLAS_CORETYPE", best, 1)
        unsafeBitCast(quit, to: (@convention(c) () -> Void).self)()
        unsafeBitCast(initialize, to: (@convention(c) () -> Void).self)()
        unsetenv("OPENBLAS_CORETYPE")
        coreSelectionNote = "OpenBLAS chose its \(detected) kernels; this CPU has \(best == "SkylakeX" ? "AVX-512" : "AVX2 + FMA"), so it now uses \(coreName)"
        return coreSelectionNote
    }

    /// The CPU's feature flags from /proc/cpuinfo (Linux), nil elsewhere.
    static func cpuFlags() -> Set<Substring>? {
        guard let file = fopen("/proc/cpuinfo", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil, capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let text = String(cString: line!)
            if text.hasPrefix("flags") { return Set(text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })) }
        }
        return nil
    }
}
