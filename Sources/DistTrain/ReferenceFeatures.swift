import Evaluation
import Foundation
import IO
import Models
import Tensor

/// The real images an evaluation compares with, as the feature network sees them: the statistics FID
/// needs, the features KID needs, and the class histogram of the real data (what a good model's should
/// look like). Computed once per (feature network, dataset, count) and cached beside the network as
///   <network>.reference-<data fingerprint>-<count>.h5:
///     /mean [d], /covariance [d, d] (float64), /features [count, d], /probabilities [count, classes]
///     attributes: network (fingerprint of its weights), data_path, data_fingerprint, count.
/// A cache made by other weights (the network retrained) is recomputed and replaced.
struct ReferenceFeatures {
    let statistics: FeatureStatistics
    let features: FeatureMatrix
    let classes: ClassDistribution
    /// Where it was cached.
    let cachePath: String

    static func load(network file: FeatureNetworkFile, networkPath: String, dataPath: String, count requested: Int,
                     log: (String) -> Void) throws -> ReferenceFeatures {
        let info = try DatasetInfo.inspect(dataPath)
        let net = file.network
        guard info.sampleShape == net.inputShape else {
            throw RunFailure("reference data \(dataPath) holds [\(info.sampleShape.map(String.init).joined(separator: ", "))] images but the feature network \(networkPath) takes [\(net.inputShape.map(String.init).joined(separator: ", "))]")
        }
        let count = min(requested, info.count)
        guard count >= 2 else { throw RunFailure("reference data \(dataPath) has \(info.count) images; FID needs at least 2") }
        let identity = try DatasetIdentity(info)
        if identity.fingerprint != file.metadata.data.fingerprint {
            // why say so: the numbers are then distances in features learnt on other images (fine for
            // comparing runs with each other, not with numbers measured on another network).
            log("warning: the feature network \(networkPath) was trained on \(file.metadata.data.path), not on the reference \(dataPath): the metrics measure distance in its features")
        }
        let weights = fingerprint(net.classifier.parameters)
        let base = networkPath.hasSuffix(".h5") ? String(networkPath.dropLast(3)) : networkPath
        let path = "\(base).reference-\(identity.fingerprint)-\(count).h5"
        if let cached = try? read(path, network: weights, dimension: net.featureDimension, classes: net.classes) {
            return cached
        }
        log("computing the reference features of \(count) images of \(dataPath) (cached in \(path))")
        let shard = try ImageShard(info, rows: [0..<count], rank: 0, seed: 0)
        let (features, probabilities) = extract(net, images: shard.samples.pointer, count: count)
        let statistics = try FeatureStatistics(features: features)
        try write(path, statistics: statistics, features: features, probabilities: probabilities, classes: net.classes,
                  network: weights, identity: identity)
        return ReferenceFeatures(statistics: statistics, features: features,
                                 classes: try ClassDistribution(probabilities: probabilities, count: count, classes: net.classes),
                                 cachePath: path)
    }

    private static func read(_ path: String, network: String, dimension d: Int, classes k: Int) throws -> ReferenceFeatures? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file = try HDF5File.open(path)
        guard file.attribute("network") == network, let count = Int(file.attribute("count") ?? "") else { return nil }
        let mean = try file.read("mean", as: Double.self), covariance = try file.read("covariance", as: Double.self)
        let features = try file.read("features", as: Float.self), probabilities = try file.read("probabilities", as: Float.self)
        guard mean.shape == [d], covariance.shape == [d, d], features.shape == [count, d], probabilities.shape == [count, k] else { return nil }
        return ReferenceFeatures(statistics: try FeatureStatistics(mean: mean.values, covariance: covariance.values, count: count),
                                 features: try FeatureMatrix(features.values, count: count, dimension: d),
                                 classes: try ClassDistribution(probabilities: probabilities.values, count: count, classes: k),
                                 cachePath: path)
    }

    /// Under a temporary name, then renamed: a reader never sees half a cache.
    private static func write(_ path: String, statistics s: FeatureStatistics, features: FeatureMatrix, probabilities: [Float],
                              classes: Int, network: String, identity: DatasetIdentity) throws {
        let temporary = path + ".partial-\(getpid())"
        do {
            let file = try HDF5File.create(temporary)
            try file.write("mean", s.mean, shape: [s.dimension])
            try file.write("covariance", s.covariance, shape: [s.dimension, s.dimension])
            try file.write("features", features.values, shape: [features.count, features.dimension])
            try file.write("probabilities", probabilities, shape: [features.count, classes])
            for (name, value) in [("network", network), ("data_path", identity.path), ("data_fingerprint", identity.fingerprint),
                                  ("count", String(features.count))] {
                try file.setAttribute(name, value)
            }
            try file.close()
            guard rename(temporary, path) == 0 else { throw IOError("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))") }
        } catch {
            unlink(temporary)
            throw RunFailure("cannot cache the reference features in \(path): \(error)")
        }
    }

    /// FNV-1a 64 of the weights' bytes: which network made a cache.
    private static func fingerprint(_ weights: FloatBuffer) -> String {
        var hash = FNV1a64()
        hash.add(UnsafeRawBufferPointer(start: weights.pointer, count: weights.count * MemoryLayout<Float>.size))
        return hash.hex
    }
}
