import Foundation
import IO
import Models
import Tensor

/// The file `disttrain classifier` writes and the evaluator reads: a trained `CNNClassifier` with what
/// it was trained on and how well it does. Layout (readable with h5py):
///   /parameters/<name>     every parameter by state_dict name (`stage1.conv1.weight` [32, 1, 3, 3], …, `fc2.bias`)
///   /buffers/<name>        BatchNorm running statistics (averaged over the ranks), e.g. `stage1.bn1.running_mean`
///   /training/loss [S]     the mean training loss of every step (float64)
///   attributes (strings): format, format_version, architecture, stages ("32/64,64/128,128"), hidden,
///   input_shape ("1,32,32": C,H,W), classes, feature_layer ("fc1": the hidden layer after its ReLU),
///   feature_dimension, heldout_accuracy, heldout_loss, heldout_count, heldout (how the held-out set was
///   chosen), heldout_path, the training data as checkpoints record it (data_path, data_count,
///   data_sample_shape, data_dtype, data_fingerprint), training (JSON: steps, batch, ranks, …), created.
/// Arrays carry Fletcher-32 checksums. Written under a temporary name, fsynced and renamed: a failure
/// leaves no partial file.
struct FeatureNetworkFile {
    static let format = "disttrain-feature-network"
    static let formatVersion = "1"

    /// What the attributes say besides the architecture.
    struct Metadata {
        var heldoutAccuracy: Double
        var heldoutLoss: Double
        var heldoutCount: Int
        /// How the held-out images were chosen, in words.
        var heldout: String
        var heldoutPath: String
        var data: DatasetIdentity
        /// The run's settings, JSON.
        var training: String
    }

    let network: FeatureNetwork
    let metadata: Metadata

    /// Writes `classifier`'s weights and `metadata` to `path` atomically.
    static func write(_ path: String, classifier: CNNClassifier, losses: [Double], metadata m: Metadata) throws {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        let temporary = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).partial-\(getpid())")
        let c = classifier.configuration
        do {
            let file = try HDF5File.create(temporary)
            try Checkpoint.writeTensors(file, group: "parameters", table: classifier.parameterTable, buffer: classifier.parameters)
            try Checkpoint.writeTensors(file, group: "buffers", table: classifier.bufferTable, buffer: classifier.buffers)
            try file.write("training/loss", losses, shape: [losses.count], checksum: true)
            let attributes: [(String, String)] = [
                ("format", format), ("format_version", formatVersion), ("architecture", ClassifierConfiguration.architectureName),
                ("stages", ClassifierConfiguration.stagesText(c.stages)), ("hidden", String(c.hidden)),
                ("input_shape", Checkpoint.shapeText(c.inputShape)), ("classes", String(c.classes)),
                ("feature_layer", c.featureLayer), ("feature_dimension", String(c.featureDimension)),
                ("heldout_accuracy", String(m.heldoutAccuracy)), ("heldout_loss", String(m.heldoutLoss)),
                ("heldout_count", String(m.heldoutCount)), ("heldout", m.heldout), ("heldout_path", m.heldoutPath),
                ("data_path", m.data.path), ("data_count", String(m.data.count)),
                ("data_sample_shape", Checkpoint.shapeText(m.data.sampleShape)), ("data_dtype", m.data.elementType),
                ("data_fingerprint", m.data.fingerprint), ("training", m.training),
                ("created", ISO8601DateFormatter().string(from: Date())),
            ]
            for (name, value) in attributes { try file.setAttribute(name, value) }
            try file.close()
            try Checkpoint.syncToDisk(temporary)
            guard rename(temporary, path) == 0 else { throw IOError("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))") }
            try Checkpoint.syncToDisk(directory)
        } catch {
            unlink(temporary)
            throw RunFailure("\(path) not written: \(error)")
        }
    }

    /// Reads a feature network for batches of up to `batchCapacity` images (its convolutions by
    /// `convolutions`: every algorithm computes the same function, to rounding). Errors name the file
    /// and what is wrong with it.
    static func read(_ path: String, batchCapacity: Int = 64, convolutions: ConvolutionChoice = .auto) throws -> FeatureNetworkFile {
        let file = try HDF5File.open(path)
        guard file.attribute("format") == format else { throw IOError(path: path, "is not a disttrain feature network (format attribute \(file.attribute("format") ?? "missing"); `disttrain classifier` writes them)") }
        guard file.attribute("format_version") == formatVersion else {
            throw IOError(path: path, "has feature network format version \(file.attribute("format_version") ?? "none"); this build reads version \(formatVersion)")
        }
        func required(_ name: String) throws -> String {
            guard let value = file.attribute(name) else { throw IOError(path: path, "no \(name) attribute") }
            return value
        }
        func integer(_ name: String) throws -> Int {
            let text = try required(name)
            guard let value = Int(text), value > 0 else { throw IOError(path: path, "\(name) attribute '\(text)' is not a positive integer") }
            return value
        }
        let architecture = try required("architecture")
        guard architecture == ClassifierConfiguration.architectureName else {
            throw IOError(path: path, "holds architecture '\(architecture)'; this build knows \(ClassifierConfiguration.architectureName)")
        }
        let stagesText = try required("stages"), shapeText = try required("input_shape")
        guard let stages = ClassifierConfiguration.parseStages(stagesText) else { throw IOError(path: path, "stages attribute '\(stagesText)' is not like 32/64,64/128,128") }
        guard let shape = Checkpoint.parseShape(shapeText), shape.count == 3 else { throw IOError(path: path, "input_shape attribute '\(shapeText)' is not C,H,W") }
        let configuration = ClassifierConfiguration(inChannels: shape[0], height: shape[1], width: shape[2], classes: try integer("classes"),
                                                    stages: stages, hidden: try integer("hidden"))
        if let problem = configuration.problem { throw IOError(path: path, problem) }
        let classifier = CNNClassifier(configuration, batchCapacity: max(1, batchCapacity), convolutionAlgorithm: convolutions.algorithm(for:))
        for (group, table, buffer) in [("parameters", classifier.parameterTable, classifier.parameters), ("buffers", classifier.bufferTable, classifier.buffers)] {
            for e in table.entries {
                let name = "\(group)/\(e.name)"
                guard file.contains(name) else { throw IOError(path: path, "no /\(name) (\(ClassifierConfiguration.stagesText(stages)), hidden \(configuration.hidden) needs it)") }
                let (values, stored) = try file.read(name, as: Float.self)
                guard stored == e.shape else { throw IOError(path: path, "/\(name) has shape \(stored); the architecture needs \(e.shape)") }
                values.withUnsafeBufferPointer { (buffer.pointer + e.offset).update(from: $0.baseAddress!, count: e.count) }
            }
        }
        let accuracyText = try required("heldout_accuracy")
        guard let accuracy = Double(accuracyText) else { throw IOError(path: path, "heldout_accuracy attribute '\(accuracyText)' is not a number") }
        let dataShapeText = try required("data_sample_shape")
        guard let dataShape = Checkpoint.parseShape(dataShapeText) else { throw IOError(path: path, "data_sample_shape attribute '\(dataShapeText)' is not a list of positive integers") }
        let metadata = Metadata(
            heldoutAccuracy: accuracy, heldoutLoss: Double(file.attribute("heldout_loss") ?? "") ?? .nan,
            heldoutCount: Int(file.attribute("heldout_count") ?? "") ?? 0, heldout: file.attribute("heldout") ?? "",
            heldoutPath: file.attribute("heldout_path") ?? "",
            data: DatasetIdentity(path: try required("data_path"), count: try integer("data_count"), sampleShape: dataShape,
                                  elementType: try required("data_dtype"), fingerprint: try required("data_fingerprint")),
            training: file.attribute("training") ?? "{}")
        return FeatureNetworkFile(network: FeatureNetwork(classifier: classifier), metadata: metadata)
    }
}
