import Foundation

/// Appends one record per logged step to `metrics.jsonl` and `metrics.csv` in a directory
/// (rank 0 only). Columns are fixed by the first record; the CSV header is written once per file.
public final class MetricsLog {
    private let json: FileHandle, csv: FileHandle
    private let columns: [String]

    public init(directory: String, columns: [String]) throws {
        self.columns = columns
        let jsonPath = directory + "/metrics.jsonl", csvPath = directory + "/metrics.csv"
        let fm = FileManager.default
        let csvIsNew = !fm.fileExists(atPath: csvPath)
        for path in [jsonPath, csvPath] where !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil) else { throw IOError("cannot create \(path)") }
        }
        guard let j = FileHandle(forWritingAtPath: jsonPath), let c = FileHandle(forWritingAtPath: csvPath) else {
            throw IOError("cannot open \(jsonPath) for appending")
        }
        json = j; csv = c
        json.seekToEndOfFile(); csv.seekToEndOfFile()
        if csvIsNew { csv.write(Data((columns.joined(separator: ",") + "\n").utf8)) }
    }

    /// `values` in the order of `columns`; integers print without a fraction.
    public func append(_ values: [Double]) {
        precondition(values.count == columns.count)
        let texts = values.map { $0.rounded() == $0 && abs($0) < 1e15 ? String(Int64($0)) : String($0) }
        let object = zip(columns, texts).map { "\"\($0)\":\($1.contains("nan") || $1.contains("inf") ? "null" : $1)" }
        json.write(Data(("{" + object.joined(separator: ",") + "}\n").utf8))
        csv.write(Data((texts.joined(separator: ",") + "\n").utf8))
    }
}
