import Foundation

/// A run's `metrics.jsonl` read back as one series per key: every numeric field of every record, by
/// step. Records need not carry the same keys (evaluation metrics such as `fid` appear only at some
/// steps). When a step was logged twice (a run resumed from a checkpoint older than its last logged
/// step repeats those steps), the later value wins, so the series follow the run that continued.
public struct MetricsHistory: Sendable {
    /// Every key but `step`, sorted.
    public let keys: [String]
    /// (step, value) per key, in step order, one value per step; null and non-numeric values are absent.
    public let series: [String: [(x: Double, y: Double)]]
    /// Records read (lines that parsed and have a numeric `step`).
    public let records: Int
    /// Distinct steps among them.
    public let steps: Int
    /// Lines that are not such a record (an interrupted write leaves a partial last line).
    public let unreadableLines: Int

    /// Reads `path`; an error (naming it) when it cannot be read or holds no record.
    public static func read(_ path: String) throws -> MetricsHistory {
        guard let data = FileManager.default.contents(atPath: path) else { throw IOError(path: path, "cannot read the metrics") }
        var byKey: [String: [Double: Double]] = [:]
        var records = 0, unreadable = 0, steps = Set<Double>()
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let step = number(object["step"]) else { unreadable += 1; continue }
            records += 1
            steps.insert(step)
            for (key, value) in object where key != "step" {
                if let v = number(value) { byKey[key, default: [:]][step] = v }
            }
        }
        guard records > 0 else {
            throw IOError(path: path, unreadable == 0 ? "no metric records (no step has finished yet?)" : "none of its \(unreadable) lines is a metrics record")
        }
        let series = byKey.mapValues { $0.sorted { $0.key < $1.key }.map { (x: $0.key, y: $0.value) } }
        return MetricsHistory(keys: series.keys.sorted(), series: series, records: records, steps: steps.count, unreadableLines: unreadable)
    }

    /// The last step recorded under any key.
    public var lastStep: Double? { series.values.compactMap { $0.last?.x }.max() }

    private static func number(_ value: Any?) -> Double? {
        // why no Bool check: on Linux an NSNumber of 0 or 1 also casts to Bool; the log writes no booleans
        guard let n = value as? NSNumber else { return nil }
        let v = n.doubleValue
        return v.isFinite ? v : nil
    }
}
