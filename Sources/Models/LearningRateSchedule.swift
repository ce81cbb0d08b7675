import Foundation

/// The learning rate over a run of K optimizer steps, after a linear warm-up of W steps:
///   lr_k = lr_0 · min(1, (k+1)/W) · f(k/K),
///   f(s) = 1 − s (linear, the reference run's), ½(1 + cos πs) (cosine), 1 (constant).
/// The warm-up multiplies (it does not shift the decay), so `linear` is the reference's formula exactly.
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case linear, cosine, constant
    }

    public let kind: Kind
    public let peak: Double
    public let warmupSteps: Int
    public let totalSteps: Int

    public init(kind: Kind, peak: Double, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind; self.peak = peak; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// The rate of optimizer step k (0-based).
    public func rate(at step: Int) -> Float {
        let warm = warmupSteps > 0 ? min(1, Double(step + 1) / Double(warmupSteps)) : 1
        let progress = Double(step) / Double(totalSteps)
        let decay: Double
        switch kind {
        case .linear: decay = 1 - progress
        case .cosine: decay = 0.5 * (1 + cos(Double.pi * progress))
        case .constant: decay = 1
        }
        return Float(peak * warm * decay)
    }
}

/// The EMA decay of the weights after the k-th update (k ≥ 1). Without warm-up the configured rate;
/// with it diffusers' EMAModel ramp (use_ema_warmup, inv_gamma 1, power 2/3), capped by the rate:
///   decay_k = min(rate, 1 − (1 + (k − 1))^(−2/3)), so the first update copies the weights (decay 0),
/// the average forgets its random start within a few hundred steps, and reaches 0.999 after ~31,600
/// and 0.9999 after ~10⁶ updates: what makes an EMA useful in runs of a few thousand steps.
public func emaDecay(rate: Double, warmup: Bool, update k: Int) -> Double {
    guard warmup else { return rate }
    let step = Double(max(0, k - 1))
    guard step > 0 else { return 0 }
    return min(rate, 1 - pow(1 + step, -2.0 / 3.0))
}
