import Foundation

/// One axis of a plot: the data range it spans (padded), where its ticks go and how they are labelled.
struct PlotAxis {
    enum Scale { case linear, log }

    let scale: Scale
    /// The ends of the axis, in data units (positive for a log axis).
    let lower, upper: Double
    let ticks: [Double]

    /// An axis over `values` (finite; positive for `.log`), padded by 5 % at each end unless `integers`
    /// (steps), whose ends are the data's own and whose ticks are whole numbers.
    init(values: [Double], scale: Scale, integers: Bool = false) {
        self.scale = scale
        var lo = values.min() ?? (scale == .log ? 0.1 : 0), hi = values.max() ?? 1
        switch scale {
        case .linear:
            if lo == hi { (lo, hi) = integers ? (lo - 1, hi + 1) : (lo - max(abs(lo) * 0.1, 1e-12), hi + max(abs(hi) * 0.1, 1e-12)) }
            if !integers { let pad = (hi - lo) * 0.05; lo -= pad; hi += pad }
            ticks = PlotAxis.linearTicks(lo, hi, integers: integers)
        case .log:
            var a = log10(lo), b = log10(hi)
            if a == b { a -= 0.5; b += 0.5 }
            let pad = (b - a) * 0.05
            lo = pow(10, a - pad); hi = pow(10, b + pad)
            ticks = PlotAxis.logTicks(lo, hi)
        }
        lower = lo; upper = hi
    }

    /// Where `value` falls along the axis: 0 at `lower`, 1 at `upper`.
    func fraction(_ value: Double) -> Double {
        switch scale {
        case .linear: return (value - lower) / (upper - lower)
        case .log: return (log10(value) - log10(lower)) / (log10(upper) - log10(lower))
        }
    }

    /// About five ticks at 1, 2 or 5 × 10^k apart.
    static func linearTicks(_ lo: Double, _ hi: Double, integers: Bool = false) -> [Double] {
        let spacing = niceSpacing((hi - lo) / 5, atLeast: integers ? 1 : 0)
        var ticks: [Double] = []
        var k = (lo / spacing).rounded(.up)
        while k * spacing <= hi + spacing * 1e-9 {
            ticks.append(k * spacing == 0 ? 0 : k * spacing)   // why: no "-0"
            k += 1
        }
        return ticks
    }

    /// Powers of ten, or 1, 2, 5 × 10^k, when at least 3 of them fall inside; linear ticks otherwise
    /// (a range of less than about a decade), placed along the log axis.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let first = Int(log10(lo).rounded(.down)), last = Int(log10(hi).rounded(.up))
        for mantissas in [[1.0], [1, 2, 5]] {
            let ticks = (first...last).flatMap { k in mantissas.map { $0 * pow(10, Double(k)) } }.filter { $0 >= lo && $0 <= hi }
            if ticks.count >= 3 { return ticks }
        }
        return linearTicks(lo, hi).filter { $0 > 0 }
    }

    private static func niceSpacing(_ raw: Double, atLeast minimum: Double) -> Double {
        guard raw > 0, raw.isFinite else { return max(minimum, 1) }
        let magnitude = pow(10, log10(raw).rounded(.down)), r = raw / magnitude
        let nice = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * magnitude
        return max(nice, minimum)
    }

    /// A tick's label: exponent notation for very large or small values ("2e-5", "1.5e6"); otherwise
    /// the decimals the value needs, the same for every tick unless they span decades of a log axis.
    func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        if Self.needsExponent(value) {
            let text = String(format: "%.2g", value)   // "2e-05", "1.5e+06"
            guard let e = text.firstIndex(of: "e") else { return text }
            return String(text[..<e]) + "e" + String(Int(text[text.index(after: e)...]) ?? 0)
        }
        // why: across decades (0.01, 0.1, 1) each tick has its own; within one they line up (0.6, 0.8, 1.0)
        let decades = scale == .log && (ticks.last ?? 1) / (ticks.first ?? 1) >= 10
        let decimals = decades ? Self.decimals(value) : ticks.filter { !Self.needsExponent($0) }.map(Self.decimals).max() ?? 0
        return String(format: "%.\(decimals)f", value)
    }

    private static func needsExponent(_ value: Double) -> Bool { value != 0 && (abs(value) >= 1e6 || abs(value) < 1e-3) }

    /// The fewest decimals (at most 6) that show `value` to a millionth of itself.
    private static func decimals(_ value: Double) -> Int {
        for d in 0..<6 {
            let p = pow(10, Double(d))
            if abs((value * p).rounded() / p - value) <= 1e-6 * abs(value) { return d }
        }
        return 6
    }
}
