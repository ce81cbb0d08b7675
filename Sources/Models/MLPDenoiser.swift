import Tensor

extension ModelArchitecture {
    public static let mlp = ModelArchitecture(
        name: "mlp", className: "MLPDenoiser", summary: "MLPDenoiser (2-D points; the timestep enters as the feature t/T)",
        referenceSampleShape: [2],
        validate: { shape in shape.count == 1 ? nil : "the mlp model trains on points [N, D]; /images is \(shape)" },
        build: { shape, capacity, _ in MLPDenoiser(dimension: shape.reduce(1, *), batchCapacity: capacity) })
}

/// The seed's proof-of-concept denoiser for points in `dimension` dimensions:
/// net.0 Linear(dim+1 → 128), ReLU, net.2 Linear(128 → 128), ReLU, net.4 Linear(128 → dim),
/// applied to [x, t/T]: the timestep is appended as one more feature (the conditioning's continuous time).
/// why t/T: a raw t up to 999 beside coordinates of order 1 would dominate the first layer at
/// initialisation; the scale is fixed, so training and sampling see the same feature.
public final class MLPDenoiser: Denoiser {
    public let dimension, hidden: Int
    public let parameterTable: ParameterTable
    public let bufferTable = ParameterTable()
    public let parameters, gradients, buffers: FloatBuffer
    public let batchCapacity: Int
    public var training = true
    public var gradientsReady: ((Int) -> Void)?
    public var reduceStatistics: ((UnsafeMutablePointer<Double>, Int) -> Void)?

    private let layer0, layer2, layer4: LinearLayer
    private let input, hidden1, hidden2: FloatBuffer            // [N, dim+1], [N, 128], [N, 128] (after ReLU, in place)
    private let hidden1Grad, hidden2Grad: FloatBuffer           // at the ReLUs' outputs
    private let preActivation1Grad, preActivation2Grad: FloatBuffer
    private let activationGradients: ActivationGradients
    private var lastBatch = 0

    public init(dimension: Int, hidden: Int = 128, batchCapacity: Int) {
        self.dimension = dimension; self.hidden = hidden; self.batchCapacity = batchCapacity
        let b = ModelBuilder(batchCapacity: batchCapacity)
        layer0 = LinearLayer(b, "net.0", inFeatures: dimension + 1, outFeatures: hidden)
        layer2 = LinearLayer(b, "net.2", inFeatures: hidden, outFeatures: hidden)
        layer4 = LinearLayer(b, "net.4", inFeatures: hidden, outFeatures: dimension)
        parameterTable = b.parameters
        parameters = FloatBuffer(count: b.parameters.totalCount); gradients = FloatBuffer(count: b.parameters.totalCount)
        buffers = FloatBuffer(count: 0)
        input = b.activation(batchCapacity * (dimension + 1))
        hidden1 = b.activation(batchCapacity * hidden); hidden2 = b.activation(batchCapacity * hidden)
        hidden1Grad = b.gradient(batchCapacity * hidden); hidden2Grad = b.gradient(batchCapacity * hidden)
        preActivation1Grad = b.gradient(batchCapacity * hidden); preActivation2Grad = b.gradient(batchCapacity * hidden)
        activationGradients = ActivationGradients(b)
    }

    public var sampleShape: [Int] { [dimension] }
    public var multiplyAccumulatesPerSample: Int { (dimension + 1) * hidden + hidden * hidden + hidden * dimension }

    public func forward(input x: UnsafePointer<Float>, conditioning: Conditioning, output: UnsafeMutablePointer<Float>, batch: Int) {
        precondition(batch >= 1 && batch <= batchCapacity, "batch \(batch) outside 1...\(batchCapacity)")
        let m = pointers, width = dimension + 1
        for n in 0..<batch {
            (input.pointer + n * width).update(from: x + n * dimension, count: dimension)
            input[n * width + dimension] = conditioning.continuous[n]
        }
        layer0.forward(m, output: hidden1.pointer, input: input.pointer, batch: batch)
        reluForward(output: hidden1.pointer, input: hidden1.pointer, count: batch * hidden)
        layer2.forward(m, output: hidden2.pointer, input: hidden1.pointer, batch: batch)
        reluForward(output: hidden2.pointer, input: hidden2.pointer, count: batch * hidden)
        layer4.forward(m, output: output, input: hidden2.pointer, batch: batch)
        lastBatch = batch
    }

    public func backward(outputGrad: UnsafePointer<Float>) {
        let m = pointers, batch = lastBatch
        activationGradients.zero(batch: batch)
        layer4.backward(m, inputGrad: hidden2Grad.pointer, outputGrad: outputGrad, input: hidden2.pointer, batch: batch)
        reluBackward(inputGrad: preActivation2Grad.pointer, outputGrad: hidden2Grad.pointer, output: hidden2.pointer, count: batch * hidden)
        layer2.backward(m, inputGrad: hidden1Grad.pointer, outputGrad: preActivation2Grad.pointer, input: hidden1.pointer, batch: batch)
        reluBackward(inputGrad: preActivation1Grad.pointer, outputGrad: hidden1Grad.pointer, output: hidden1.pointer, count: batch * hidden)
        layer0.backward(m, inputGrad: nil, outputGrad: preActivation1Grad.pointer, input: input.pointer, batch: batch)
    }
}
