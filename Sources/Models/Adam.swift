import Foundation
import Tensor

/// Adam (Kingma & Ba) over one flat parameter buffer, in PyTorch's exact order of operations:
///   m ← lerp(m, g, 1−β1);  v ← β2·v + (1−β2)·g²;  p ← p − (lr/(1−β1^k)) · m / (√v/√(1−β2^k) + ε)
/// With a `weightDecay` W it is AdamW (Loshchilov & Hutter) in PyTorch's order: first p ← p·(1 − lr·W)
/// (decoupled from the gradient and its moments), then the Adam step above; W = 0 is plain Adam, bit for bit.
/// (Keras' AdamW decays the same way, p ← p − lr·W·p; its ε is added to √v before the bias correction,
/// here after it, as PyTorch does: with ε 1e-7 the two differ only where √v̂ is of order ε.)
public final class Adam {
    public let beta1, beta2, epsilon: Float
    /// Decoupled weight decay W (AdamW), on every parameter; 0: Adam.
    public var weightDecay: Float = 0
    /// First and second moments, the same layout as the parameters.
    public let firstMoment, secondMoment: FloatBuffer
    /// Updates applied so far (k above).
    public var step = 0

    public init(parameterCount: Int, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        firstMoment = FloatBuffer(count: parameterCount); secondMoment = FloatBuffer(count: parameterCount)
    }

    /// Back to the state before the first update.
    public func reset() {
        firstMoment.zero(); secondMoment.zero(); step = 0
    }

    /// One update of `parameters` from `gradientScale` × `gradients` at learning rate `learningRate`.
    /// (The scale folds the 1/world-size average and gradient clipping into this one pass.) Also in the
    /// same pass, because each is one more trip through memory over every parameter otherwise:
    /// `zeroGradients` leaves the gradients zero for the next step; `average` moves an exponential
    /// moving average of the weights towards the updated ones, avg += (1 − decay)·(p − avg).
    public func update(parameters: FloatBuffer, gradients: FloatBuffer, learningRate: Float, gradientScale: Float = 1,
                       zeroGradients: Bool = false, average: (values: FloatBuffer, decay: Float)? = nil) {
        precondition(parameters.count == firstMoment.count && gradients.count == firstMoment.count)
        precondition(average == nil || average!.values.count == parameters.count)
        step += 1
        let bias1 = 1 - Float(pow(Double(beta1), Double(step)))
        let bias2Root = Float((1 - pow(Double(beta2), Double(step))).squareRoot())
        let stepSize = learningRate / bias1
        let keep = 1 - learningRate * weightDecay   // exactly 1 without decay
        let w1 = 1 - beta1, b2 = beta2, w2 = 1 - beta2, eps = epsilon
        let p = parameters.pointer, g = gradients.pointer, m = firstMoment.pointer, v = secondMoment.pointer
        let e = average?.values.pointer, we = 1 - (average?.decay ?? 1)
        let count = parameters.count, chunk = 1 << 16
        // why SIMD by hand: the buffers could alias as far as the compiler knows, so it will not
        // vectorise the plain loop; this pass is memory-bound over 4 × 53 M floats for the large model.
        parallelFor((count + chunk - 1) / chunk) { c in
            var i = c * chunk
            let start = i, end = min(count, i + chunk)
            while i + 8 <= end {
                let gi = load8(g + i) * gradientScale, mOld = load8(m + i), vOld = load8(v + i)
                let mi = mOld + w1 * (gi - mOld)
                let vi = vOld * b2 + w2 * gi * gi
                store8(mi, m + i); store8(vi, v + i)
                let pi = load8(p + i) * keep - stepSize * (mi / (vi.squareRoot() / bias2Root + eps))
                store8(pi, p + i)
                if let e { let ei = load8(e + i); store8(ei + we * (pi - ei), e + i) }
                i += 8
            }
            while i < end {
                let gi = g[i] * gradientScale
                let mi = m[i] + w1 * (gi - m[i])
                let vi = v[i] * b2 + w2 * gi * gi
                m[i] = mi; v[i] = vi
                p[i] = p[i] * keep - stepSize * (mi / (vi.squareRoot() / bias2Root + eps))
                if let e { e[i] += we * (p[i] - e[i]) }
                i += 1
            }
            if zeroGradients { (g + start).update(repeating: 0, count: end - start) }   // this chunk is still in cache
        }
    }
}
