import ArgumentParser
import Foundation
import IO

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write RUN_DIR/report.html: configuration, loss and speed plots, every sample grid; one self-contained file.",
        discussion: """
            The page needs nothing beside it (plots are inline SVG, sample grids embedded PNGs), so it can be \
            copied off a cluster and opened offline. `train` refreshes it at every checkpoint.
            """)

    @Argument(help: "A training run's --out directory (metrics.jsonl, ckpt-*.h5, samples/).")
    var runDirectory: String

    func run() throws {
        do {
            print("disttrain: wrote \(try Self.write(runDirectory: runDirectory))")
        } catch {
            throw RunFailure("report: \(error)")
        }
    }

    /// Builds the report of `runDirectory` and writes it atomically to `<runDirectory>/report.html`;
    /// nothing is written when the directory or its metrics are missing.
    static func write(runDirectory: String) throws -> String {
        let (tables, notes) = RunReportSettings.tables(runDirectory: runDirectory)
        let report = try RunReport.collect(runDirectory: runDirectory, tables: tables, notes: notes)
        let path = runDirectory + "/report.html"
        try report.write(to: path)
        return path
    }

    /// The training loop's refresh (rank 0, after a checkpoint or a sample grid): a report that
    /// cannot be written is a warning, never a reason to stop training.
    static func refresh(runDirectory: String, warn: (String) -> Void) {
        do { _ = try write(runDirectory: runDirectory) } catch { warn("warning: report.html not refreshed: \(error)") }
    }
}
