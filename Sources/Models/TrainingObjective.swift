/// A loss on one loaded micro-batch with its backward pass: what `OptimizerStep` repeats. The step owns
/// the batch of inputs and everything around the objective (zeroing, the sum over ranks, the average,
/// the skip of non-finite steps, clipping, Adam, EMA); the objective turns inputs into a loss and
/// gradients. Implementations: `DiffusionLoss` (DDPM noise prediction) and `ClassificationLoss`.
public protocol TrainingObjective: AnyObject {
    /// The network as its callers know it (a `Denoiser`, a `CNNClassifier`).
    associatedtype Model
    var model: Model { get }
    /// The same network as the step sees it.
    var trainable: TrainableModel { get }
    /// Samples per micro-batch.
    var batch: Int { get }
    /// Floats of one loaded micro-batch [batch, sample…].
    var inputCount: Int { get }
    /// The micro-batch's class labels [batch], filled by whoever loads the batch.
    var labels: UnsafeMutablePointer<Int32> { get }
    /// Draws the objective's own random inputs for the next micro-batch (diffusion: t and ε).
    func drawRandomness()
    /// Forward, loss and backward on `images` [batch, sample…]: adds into the model's gradients (the
    /// gradient rule, Layer.swift) and returns the mean loss over the micro-batch.
    func forwardBackward(images: UnsafePointer<Float>) -> Float
}
