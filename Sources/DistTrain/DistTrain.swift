import ArgumentParser
import Foundation
import Tensor

@main
struct DistTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disttrain",
        abstract: "Data-parallel DDPM training of U-Net denoisers on CPU clusters (MPI, OpenBLAS, HDF5).",
        subcommands: [TrainCommand.self, SampleCommand.self, PredictCommand.self, InspectCommand.self, ModelsCommand.self, BenchCommand.self, GradientsCommand.self, PrepareCommand.self, ClassifierCommand.self, EvaluateCommand.self, ReportCommand.self],
        defaultSubcommand: TrainCommand.self)

    /// As ArgumentParser's, except that under a launcher only rank 0 prints a command-line error:
    /// every rank parses the same arguments, and N copies of one message interleave into noise.
    static func main() {
        BLAS.selectCore()   // before any matrix product (BLASCore.swift)
        BLAS.threads = 1    // OpenBLAS single-threaded; commands with --threads split products themselves (BLAS.swift)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let environment = ProcessInfo.processInfo.environment
            let rank = environment["OMPI_COMM_WORLD_RANK"] ?? environment["PMIX_RANK"] ?? environment["SLURM_PROCID"]
            if let rank, rank != "0" { Foundation.exit(exitCode(for: error).rawValue) }
            exit(withError: error)
        }
    }
}
