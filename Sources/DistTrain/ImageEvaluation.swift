import Evaluation
import Foundation
import IO
import Models
import Tensor

/// What `evaluate` and the training run's evaluations measure of a set of images: the Fréchet
/// distance and the kernel distance of their features to the reference set's (`ReferenceFeatures`),
/// and the class histogram of the feature network's predictions.
struct EvaluationResult: Equatable {
    let count: Int
    let fid: Double
    let kid: Double, kidStandardDeviation: Double
    let classes: ClassDistribution

    /// One line for a person.
    var summary: String {
        let smallest = classes.histogram.min() ?? 0
        return String(format: "FID %.3f  KID %.5f ± %.5f  class entropy %.3f of %.3f nats (smallest class %.1f %%)  classifier score %.3f  (%d images)",
                      fid, kid, kidStandardDeviation, classes.entropy, log(Double(classes.classes)), 100 * smallest,
                      classes.score, count)
    }

    /// One JSON object (keys sorted): what scripts read.
    var json: String {
        let histogram = classes.histogram.map { String(format: "%.5f", $0) }.joined(separator: ",")
        return "{" + [
            "\"class_entropy\":\(classes.entropy)", "\"class_histogram\":[\(histogram)]", "\"classifier_score\":\(classes.score)",
            "\"count\":\(count)", "\"fid\":\(fid)", "\"kid\":\(kid)", "\"kid_std\":\(kidStandardDeviation)",
        ].joined(separator: ",") + "}"
    }
}

/// A feature network and the reference statistics it compares images with.
final class ImageEvaluator {
    let network: FeatureNetworkFile
    let reference: ReferenceFeatures
    /// KID: subsets drawn (with their size capped by the smaller set).
    let kidSubsets: Int, kidSubsetSize: Int

    init(network: FeatureNetworkFile, reference: ReferenceFeatures, kidSubsets: Int = 100, kidSubsetSize: Int = 1000) {
        self.network = network; self.reference = reference; self.kidSubsets = kidSubsets; self.kidSubsetSize = kidSubsetSize
    }

    /// Loads the feature network at `path` and its reference statistics of `referencePath` (default:
    /// the data it was trained on; `referenceCount` first images), from the cache beside it or computed
    /// and cached.
    convenience init(featuresPath: String, referencePath: String?, referenceCount: Int, kidSubsets: Int = 100, kidSubsetSize: Int = 1000,
                     log: (String) -> Void) throws {
        let network = try FeatureNetworkFile.read(featuresPath)
        let reference = try ReferenceFeatures.load(network: network, networkPath: featuresPath,
                                                   dataPath: referencePath ?? network.metadata.data.path, count: referenceCount, log: log)
        self.init(network: network, reference: reference, kidSubsets: kidSubsets, kidSubsetSize: kidSubsetSize)
    }

    /// The metrics of `count` images [count, C, H, W] in [−1, 1] (at least 2: a covariance needs them).
    func evaluate(images: UnsafePointer<Float>, count: Int, sampleShape: [Int], seed: UInt64 = 0) throws -> EvaluationResult {
        let net = network.network
        guard sampleShape == net.inputShape else {
            throw RunFailure("the images are [\(sampleShape.map(String.init).joined(separator: ", "))] but the feature network takes [\(net.inputShape.map(String.init).joined(separator: ", "))]: use a feature network trained on images of this shape")
        }
        guard count >= 2 else { throw RunFailure("evaluation needs at least 2 images (a covariance of features), got \(count)") }
        let (features, probabilities) = extract(net, images: images, count: count)
        let statistics = try FeatureStatistics(features: features)
        let fid = try frechetDistance(statistics, reference.statistics)
        let kid = try kernelInceptionDistance(features, reference.features, subsets: kidSubsets, subsetSize: kidSubsetSize, seed: seed)
        let classes = try ClassDistribution(probabilities: probabilities, count: count, classes: net.classes)
        return EvaluationResult(count: count, fid: fid, kid: kid.mean, kidStandardDeviation: kid.standardDeviation, classes: classes)
    }
}

/// Features and class probabilities of `count` images, one row each.
func extract(_ net: FeatureNetwork, images: UnsafePointer<Float>, count: Int) -> (FeatureMatrix, [Float]) {
    var features = [Float](repeating: 0, count: count * net.featureDimension)
    var probabilities = [Float](repeating: 0, count: count * net.classes)
    features.withUnsafeMutableBufferPointer { f in
        probabilities.withUnsafeMutableBufferPointer { p in
            net.evaluate(images: images, count: count, features: f.baseAddress!, probabilities: p.baseAddress!)
        }
    }
    // The network's output has this shape by construction, so this cannot throw.
    return (try! FeatureMatrix(features, count: count, dimension: net.featureDimension), probabilities)
}
