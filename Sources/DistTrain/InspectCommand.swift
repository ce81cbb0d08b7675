import ArgumentParser
import Foundation
import IO
import Models

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
        if f.attribute("format") == FeatureNetworkFile.format {
            // Loaded as the evaluator loads it, so that a file this prints is one the evaluator can use.
            let loaded: FeatureNetworkFile
            do { loaded = try FeatureNetworkFile.read(file, batchCapacity: 1) } catch { throw RunFailure("\(error)") }
            let c = loaded.network.configuration, m = loaded.metadata
            print("feature network \(file)")
            print("  \(ClassifierConfiguration.architectureName) (stages \(ClassifierConfiguration.stagesText(c.stages)), hidden \(c.hidden)), \(loaded.network.classifier.parameterTable.totalCount) parameters, input [\(Checkpoint.shapeText(c.inputShape))], \(c.classes) classes")
            print("  features: \(c.featureLayer), \(c.featureDimension) dimensions")
            print(String(format: "  held-out accuracy %.4f, loss %.4f on %d images (%@)", m.heldoutAccuracy, m.heldoutLoss, m.heldoutCount, m.heldout))
            print("  trained on \(m.data)")
            print("  training \(m.training)")
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
