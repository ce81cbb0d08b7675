import ArgumentParser
import Foundation
import IO

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Summarise an HDF5 dataset or checkpoint.")

    @Argument(help: "The HDF5 file.")
    var file: String

    func run() throws {
        let f: HDF5File
        do { f = try HDF5File.open(file) } catch { throw RunFailure("\(error)") }
        if f.attribute("format") == Checkpoint.format {
            print("checkpoint \(file)")
            print("  format version \(f.attribute("format_version") ?? "?"), model \(f.attribute("model") ?? "?"), samples [\(f.attribute("sample_shape") ?? "?")]")
            let step = (try? f.read("state/step", as: Int64.self).values.first).flatMap { $0 } ?? -1
            print("  step \(step), created \(f.attribute("created") ?? "?")")
            let names = (try? f.members(of: "model")) ?? []
            print("  \(names.count) tensors under /model; EMA: \(f.contains("ema") ? "yes" : "no")")
            if let path = f.attribute("data_path") {
                print("  trained on \(path): \(f.attribute("data_count") ?? "?") samples of [\(f.attribute("data_sample_shape") ?? "?")], \(f.attribute("data_dtype") ?? "?"), fingerprint \(f.attribute("data_fingerprint") ?? "?")")
            }
            if let json = f.attribute("configuration") { print("  configuration \(json)") }
            return
        }
        print("file \(file)")
        try list(f, group: "/", indent: "  ")
        if let info = try? DatasetInfo.inspect(file) {
            print("  dataset: \(info.count) samples of \(info.sampleShape), \(info.elementType)\(info.hasLabels ? ", with labels" : "")")
        }
    }

    private func list(_ f: HDF5File, group: String, indent: String) throws {
        for name in try f.members(of: group) {
            let path = group == "/" ? name : group + "/" + name
            if let shape = try? f.shape(of: path) {
                print("\(indent)\(path)  \(shape)  \((try? f.elementType(of: path)) ?? "?")")
            } else {
                print("\(indent)\(path)/")
                try list(f, group: path, indent: indent + "  ")
            }
        }
    }
}
