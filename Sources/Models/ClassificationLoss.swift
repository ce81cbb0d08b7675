import Tensor

/// Softmax cross-entropy of a `CNNClassifier` on one rank's labelled batch, and its backward pass: the
/// objective `disttrain classifier` trains with. Every buffer is allocated here, once.
public final class ClassificationLoss: TrainingObjective {
    public let model: CNNClassifier
    public let batch: Int
    /// The batch's classes in 0..<classes, set by whoever loads the batch.
    public let labels: UnsafeMutablePointer<Int32>
    public let logits, logitsGrad: FloatBuffer
    /// Correct predictions (arg-max logit = label) in the last `forwardBackward`.
    public private(set) var correct = 0

    public init(model: CNNClassifier, batch: Int) {
        precondition(batch <= model.batchCapacity, "batch \(batch) above the model's capacity \(model.batchCapacity)")
        self.model = model; self.batch = batch
        labels = .allocate(capacity: max(batch, 1)); labels.initialize(repeating: 0, count: max(batch, 1))
        logits = FloatBuffer(count: batch * model.configuration.classes)
        logitsGrad = FloatBuffer(count: batch * model.configuration.classes)
    }

    deinit { labels.deallocate() }

    public var trainable: TrainableModel { model }
    public var inputCount: Int { batch * model.sampleCount }
    /// Nothing to draw: augmentation, if any, is the loader's.
    public func drawRandomness() {}

    public func forwardBackward(images: UnsafePointer<Float>) -> Float {
        let classes = model.configuration.classes
        model.training = true
        model.forward(input: images, logits: logits.pointer, batch: batch)
        let loss = softmaxCrossEntropyLoss(logitsGrad: logitsGrad.pointer, logits: logits.pointer, labels: labels,
                                           batch: batch, classes: classes)
        correct = (0..<batch).count { predictedClass(logits.pointer + $0 * classes, classes: classes) == labels[$0] }
        model.backward(logitsGrad: logitsGrad.pointer)
        return loss
    }
}

/// The index of the largest of `classes` logits (the first of equal ones).
public func predictedClass(_ logits: UnsafePointer<Float>, classes: Int) -> Int32 {
    var best = 0
    for k in 1..<classes where logits[k] > logits[best] { best = k }
    return Int32(best)
}
