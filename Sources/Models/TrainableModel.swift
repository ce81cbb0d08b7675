import Tensor

/// What the training step needs of a network, whatever it computes: its flat parameter, gradient and
/// buffer arrays with their tables (Layer.swift, ParameterTable), and the hook through which backward
/// reports final gradients. Implementations: the denoisers (`Denoiser`) and `CNNClassifier`.
public protocol TrainableModel: AnyObject {
    /// Trainable tensors by PyTorch state_dict name; `parameters` and `gradients` follow this table.
    var parameterTable: ParameterTable { get }
    /// Non-trainable state (BatchNorm running statistics); `buffers` follows this table.
    var bufferTable: ParameterTable { get }
    var parameters: FloatBuffer { get }
    var gradients: FloatBuffer { get }
    var buffers: FloatBuffer { get }
    /// Told, during backward, the offset from which every gradient is final (see `ModelPointers`),
    /// so their allreduce can start while earlier layers are still being differentiated.
    var gradientsReady: ((Int) -> Void)? { get set }
}

extension TrainableModel {
    /// PyTorch's default initialisation from `seed`, identical wherever it runs.
    public func initialize(seed: UInt64) {
        var rng = Philox(seed: seed, stream: RandomStream.initialization)
        parameterTable.initialize(parameters.pointer, rng: &rng)
        bufferTable.initialize(buffers.pointer, rng: &rng)
    }

    /// Zeroes the parameter gradients (once per optimizer step).
    public func zeroGradients() { gradients.zero() }
}
