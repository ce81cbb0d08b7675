import ArgumentParser

@main
struct DistTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disttrain",
        abstract: "Data-parallel DDPM training of U-Net denoisers on CPU clusters (MPI, OpenBLAS, HDF5).",
        subcommands: [TrainCommand.self, SampleCommand.self, PredictCommand.self, InspectCommand.self, ModelsCommand.self, BenchCommand.self, GradientsCommand.self, PrepareCommand.self],
        defaultSubcommand: TrainCommand.self)
}
