import ArgumentParser

@main
struct DistTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disttrain",
        abstract: "Data-parallel DDPM training of U-Net denoisers on CPU clusters (MPI, OpenBLAS, HDF5).",
        subcommands: [ModelsCommand.self, BenchCommand.self])
}
