import Models

extension Denoiser {
    /// `forward` with integer timesteps of a T = 1000 schedule (continuous time t/T) and no labels,
    /// as the trainer and the samplers condition the models.
    func forward(input: UnsafePointer<Float>, timesteps: [Int32], output: UnsafeMutablePointer<Float>, batch: Int) {
        let conditioning = Conditioning(capacity: batch)
        for n in 0..<batch { conditioning.timesteps[n] = timesteps[n] }
        conditioning.deriveContinuousTime(totalTimesteps: 1000, batch: batch)
        forward(input: input, conditioning: conditioning, output: output, batch: batch)
    }

    /// The parameter gradients of the last forward alone: zeroed, then backward.
    func freshBackward(outputGrad: UnsafePointer<Float>) {
        zeroGradients()
        backward(outputGrad: outputGrad)
    }
}
