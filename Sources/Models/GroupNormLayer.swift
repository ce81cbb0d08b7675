import Tensor

/// GroupNorm(G, C) over CNHW activations with the activation that follows it fused in (ContextUnet's
/// ReLU; `.identity` for a plain GroupNorm): `name.weight`, `name.bias` [C], initialised to 1 and 0, when
/// `affine`. No running statistics: train and eval mode are the same computation.
public struct GroupNormLayer: @unchecked Sendable {
    public let channels, groups: Int
    public let activation: Activation
    public let affine: Bool
    let epsilon: Float
    let weight, bias: Int
    /// Mean and 1/√(var + ε) per (image, group) of the last forward pass, for its backward pass:
    /// room for the batch capacity.
    let saved: FloatBuffer
    let statisticsCapacity: Int

    public init(_ b: ModelBuilder, _ name: String, groups: Int, channels: Int, activation: Activation = .identity,
                affine: Bool = true, epsilon: Float = 1e-5) {
        precondition(channels % groups == 0, "GroupNorm \(name): \(channels) channels do not split into \(groups) groups")
        self.channels = channels; self.groups = groups; self.activation = activation; self.affine = affine
        self.epsilon = epsilon
        weight = affine ? b.parameters.add("\(name).weight", shape: [channels], initialization: .constant(1)) : -1
        bias = affine ? b.parameters.add("\(name).bias", shape: [channels], initialization: .constant(0)) : -1
        statisticsCapacity = b.batchCapacity * groups
        saved = FloatBuffer(count: 2 * statisticsCapacity)
    }

    private func shape(batch: Int, plane: Int) -> GroupNormShape {
        precondition(batch * groups <= statisticsCapacity, "GroupNorm: batch \(batch) over the capacity")
        return GroupNormShape(batch: batch, channels: channels, groups: groups, plane: plane, epsilon: epsilon)
    }
    private func gamma(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float>? { affine ? p + weight : nil }
    private func beta(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float>? { affine ? p + bias : nil }

    /// `plane` = H·W of this call's activations.
    func forward(_ m: ModelPointers, output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, batch: Int, plane: Int) {
        groupNormForward(output: output, input: input, weight: gamma(m.parameters), bias: beta(m.parameters),
                         savedMean: saved.pointer, savedInvStd: saved.pointer + statisticsCapacity,
                         shape: shape(batch: batch, plane: plane), activation: activation)
    }

    /// Adds into `inputGrad` and the parameter gradients; needs the forward pass's input.
    func backward(_ m: ModelPointers, inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                  input: UnsafePointer<Float>, batch: Int, plane: Int) {
        groupNormBackward(inputGrad: inputGrad, weightGrad: gamma(m.gradients), biasGrad: beta(m.gradients), outputGrad: outputGrad,
                          input: input, weight: gamma(m.parameters), bias: beta(m.parameters),
                          savedMean: saved.pointer, savedInvStd: saved.pointer + statisticsCapacity,
                          shape: shape(batch: batch, plane: plane), activation: activation)
        if affine { m.gradientsReady?(weight) }
    }
}
