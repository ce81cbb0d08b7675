import Tensor

/// A trained `CNNClassifier` used as a feature extractor (for FID/KID) and class predictor (for a class
/// histogram): eval mode (BatchNorm with its running statistics), any number of images, processed in
/// batches of the classifier's capacity. Load one with `FeatureNetworkFile.read` (DistTrain), which
/// fills the weights. Not reentrant: one `evaluate` at a time (it reuses the network's activations).
public final class FeatureNetwork {
    public let classifier: CNNClassifier
    private let logits: FloatBuffer

    public init(classifier: CNNClassifier) {
        self.classifier = classifier
        classifier.training = false
        logits = FloatBuffer(count: classifier.batchCapacity * classifier.configuration.classes)
    }

    public var configuration: ClassifierConfiguration { classifier.configuration }
    /// [C, H, W] of the images `evaluate` takes.
    public var inputShape: [Int] { configuration.inputShape }
    public var classes: Int { configuration.classes }
    /// Name of the layer the features come from, and their length.
    public var featureLayer: String { configuration.featureLayer }
    public var featureDimension: Int { configuration.featureDimension }

    /// For `count` images [count, C, H, W] (NCHW float, in [−1, 1] as the datasets are read): writes
    /// their features [count, featureDimension] and class probabilities (softmax) [count, classes], both
    /// row-major, one row per image.
    public func evaluate(images: UnsafePointer<Float>, count: Int, features: UnsafeMutablePointer<Float>,
                         probabilities: UnsafeMutablePointer<Float>) {
        classifier.training = false
        let sample = classifier.sampleCount, d = featureDimension, k = classes
        var done = 0
        while done < count {
            let batch = min(classifier.batchCapacity, count - done)
            classifier.forward(input: images + done * sample, logits: logits.pointer, batch: batch)
            (features + done * d).update(from: classifier.features, count: batch * d)
            softmaxForward(probabilities: probabilities + done * k, logits: logits.pointer, batch: batch, classes: k)
            done += batch
        }
    }
}
