import Tensor

/// What a denoiser is told besides the noisy input, one value of each kind per sample. Every model
/// receives all of them and reads what it uses:
/// - `timesteps`: the integer step t, in the schedule's range (0..<T, or the course's 1...T; the U-Nets'
///   sinusoidal embedding takes the raw t);
/// - `continuous`: a real-valued time, t/T for the discrete schedules (the MLP's extra feature), or the
///   noise variance of a continuous-time schedule;
/// - `labels`: a class per sample, or `noLabel` (unconditional, or dropped for classifier-free guidance).
/// Sized once for a batch capacity; filling it allocates nothing.
public final class Conditioning {
    public static let noLabel: Int32 = -1
    public let capacity: Int
    public let timesteps: UnsafeMutablePointer<Int32>
    public let continuous: UnsafeMutablePointer<Float>
    public let labels: UnsafeMutablePointer<Int32>

    public init(capacity: Int) {
        self.capacity = capacity
        timesteps = .allocate(capacity: max(capacity, 1)); timesteps.initialize(repeating: 0, count: max(capacity, 1))
        continuous = .allocate(capacity: max(capacity, 1)); continuous.initialize(repeating: 0, count: max(capacity, 1))
        labels = .allocate(capacity: max(capacity, 1)); labels.initialize(repeating: Self.noLabel, count: max(capacity, 1))
    }

    deinit { timesteps.deallocate(); continuous.deallocate(); labels.deallocate() }

    /// After `timesteps` is filled: continuous[n] = t/T for the first `batch` samples.
    public func deriveContinuousTime(totalTimesteps: Int, batch: Int) {
        for n in 0..<batch { continuous[n] = Float(timesteps[n]) / Float(totalTimesteps) }
    }

    /// Every one of the first `batch` samples at step t of T.
    public func setTimestep(_ t: Int, totalTimesteps: Int, batch: Int) {
        for n in 0..<batch { timesteps[n] = Int32(t) }
        deriveContinuousTime(totalTimesteps: totalTimesteps, batch: batch)
    }

    /// After `timesteps` is filled: the continuous time `schedule` gives its models (t/T).
    public func deriveContinuousTime(for schedule: NoiseSchedule, batch: Int) {
        deriveContinuousTime(totalTimesteps: schedule.continuousTimeDivisor, batch: batch)
    }

    /// The integer step given with a continuous time t ∈ [0, 1] (for models that read `timesteps`):
    /// ⌊1000·t⌋, at most 999 — t on the scale of a 1000-step schedule.
    @inline(__always) public static func integerStep(forContinuousTime t: Double) -> Int32 { Int32(min(999, max(0, (1000 * t).rounded(.down)))) }

    /// Sample n at time t of a continuous schedule whose noise rate there is `noise`: continuous = ν = noise²
    /// (the noise variance the keras.io DDIM embeds), timesteps = `integerStep(forContinuousTime: t)`.
    @inline(__always) public func setContinuousTime(_ t: Double, noise: Double, sample n: Int) {
        continuous[n] = Float(noise * noise)
        timesteps[n] = Self.integerStep(forContinuousTime: t)
    }

    /// Every one of the first `batch` samples at step t of `schedule`.
    public func setTimestep(_ t: Int, of schedule: NoiseSchedule, batch: Int) {
        setTimestep(t, totalTimesteps: schedule.continuousTimeDivisor, batch: batch)
    }
}
