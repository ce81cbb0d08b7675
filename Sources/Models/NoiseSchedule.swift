import Foundation

/// The forward-process variances β_t and their products ᾱ_t, in Double, indexed by the timestep t the
/// model is trained on: t runs over `timestepRange`, T = `timesteps` values starting at `firstTimestep`.
/// - linear, cosine, needle-linear (SPEC §2, ZOO §3): t = 0..<T, ᾱ_t = Π_{s≤t}(1 − β_s), and ᾱ before
///   step 0 is 1.
/// - course (ZOO §2): T+1 betas, t = 1...T, ᾱ_t = Π_{s=0..t}(1 − β_s) (the product starts at s = 0),
///   and index 0 is the clean image: ᾱ_0 := 1.
/// Either way `alphaBar(before:)` of the first timestep is 1, so samplers need not know which.
/// - continuous-cosine (ZOO §5, the keras.io DDIM of seed 001): no table of betas but a continuous time
///   t ∈ [0, 1] with `signalAndNoise(at:)`; its tables are empty, `timesteps` is unused, training draws
///   t ~ U(0, 1) and only the DDIM sampler applies (DiffusionLoss and DiffusionSampler ask `isContinuous`).
public struct NoiseSchedule: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case linear, cosine, course
        case needleLinear = "needle-linear"
        case continuousCosine = "continuous-cosine"

        /// t ~ U(0, 1) and (signal, noise)(t) instead of T timesteps.
        public var isContinuous: Bool { self == .continuousCosine }
    }
    /// The kinds that are tables of T betas (every one but continuous-cosine).
    public static let discreteKinds = Kind.allCases.filter { !$0.isContinuous }
    public let kind: Kind
    /// β and ᾱ by timestep: entries 0...lastTimestep (the course's index 0 is not a training timestep).
    public let betas: [Double]
    public let alphaBars: [Double]
    /// T: how many timesteps training draws from and DDPM sampling visits.
    public let timesteps: Int
    /// The lowest timestep: 0, or 1 for the course, whose index 0 is the clean image.
    public let firstTimestep: Int
    public var lastTimestep: Int { firstTimestep + timesteps - 1 }
    public var timestepRange: ClosedRange<Int> { firstTimestep...lastTimestep }
    /// Models that take a continuous time are given t / this: t/T for every schedule here (the course's
    /// t = T reaches 1; the others' stop at (T−1)/T).
    public var continuousTimeDivisor: Int { timesteps }

    /// linear: β = linspace(1e-4, 0.02, T) (DDPM); cosine: improved DDPM's, s = 0.008, β clipped at 0.999;
    /// course: β_s = 1e-4 + (0.02 − 1e-4)·s/T for s = 0...T; needle-linear: the linear one rescaled by
    /// 1000/T, linspace(1e-4·1000/T, 0.02·1000/T, T).
    public init(_ kind: Kind, timesteps: Int = 1000) {
        precondition(timesteps >= 2, "a noise schedule needs at least 2 timesteps, got \(timesteps)")
        self.kind = kind
        self.timesteps = timesteps
        var betas: [Double]
        switch kind {
        case .linear:
            betas = Self.torchLinspace(from: 1e-4, to: 0.02, count: timesteps)
        case .cosine:
            func f(_ t: Double) -> Double { let c = cos((t + 0.008) / 1.008 * Double.pi / 2); return c * c }
            betas = (0..<timesteps).map { i in
                min(1 - f(Double(i + 1) / Double(timesteps)) / f(Double(i) / Double(timesteps)), 0.999)
            }
        case .course:
            let start = 1e-4, end = 0.02
            betas = (0...timesteps).map { s in start + (end - start) * Double(s) / Double(timesteps) }
        case .needleLinear:
            let scale = 1000 / Double(timesteps)
            betas = Self.numpyLinspace(from: scale * 1e-4, to: scale * 0.02, count: timesteps)
        case .continuousCosine:
            betas = []
        }
        var product = 1.0
        var alphaBars = betas.map { product *= 1 - $0; return product }
        firstTimestep = kind == .course ? 1 : 0
        // why: the course's ᾱ_0 is the clean image (its training and sampling never use t = 0).
        if kind == .course { alphaBars[0] = 1 }
        if kind.isContinuous { alphaBars = [] }
        self.betas = betas
        self.alphaBars = alphaBars
    }

    public var isContinuous: Bool { kind.isContinuous }

    /// The end angles of continuous-cosine: signal rate 0.95 at t = 0 (max_signal_rate), 0.02 at t = 1 (min_signal_rate).
    public static let continuousCosineAngles = (start: acos(0.95), end: acos(0.02))

    /// continuous-cosine at t ∈ [0, 1]: angle = acos(0.95) + t·(acos(0.02) − acos(0.95)), signal = cos(angle),
    /// noise = sin(angle), so x_t = signal·x0 + noise·ε with signal² + noise² = 1; the network is given ν = noise².
    public func signalAndNoise(at t: Double) -> (signal: Double, noise: Double) {
        precondition(isContinuous, "signalAndNoise(at:) is continuous-cosine's; \(kind.rawValue) has timesteps")
        let (start, end) = Self.continuousCosineAngles
        let angle = start + t * (end - start)
        return (cos(angle), sin(angle))
    }

    /// ᾱ of the step before t: ᾱ_{t−1}, and 1 before the first timestep (the clean image).
    public func alphaBar(before t: Int) -> Double { t > 0 ? alphaBars[t - 1] : 1 }

    /// The variance of q(x_{t−1} | x_t, x_0): β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t); 0 at the first timestep.
    public func posteriorVariance(_ t: Int) -> Double {
        t == firstTimestep ? 0 : betas[t] * (1 - alphaBar(before: t)) / (1 - alphaBars[t])
    }

    /// The timesteps DDIM visits with S steps (at most T; more visit every timestep once), high to low:
    /// k·T/S for k = first..<first+S. From 0 the DDIM paper's spacing, (S−1)·T/S, …, T/S, 0; from 1 the
    /// course's, T, T − T/S, …, T/S (for S dividing T), whose last step lands on the clean ᾱ_0 = 1.
    /// continuous-cosine: S−1, …, 0 (step k starts at time (k+1)/S and lands at k/S; any S).
    public func ddimTimesteps(steps: Int) -> [Int] {
        if isContinuous { return Array((0..<max(steps, 1)).reversed()) }
        let s = min(max(steps, 1), timesteps)
        return (firstTimestep..<(firstTimestep + s)).map { $0 * timesteps / s }.reversed()
    }

    /// torch.linspace: the first half counted up from the start, the second half down from the end.
    static func torchLinspace(from start: Double, to end: Double, count: Int) -> [Double] {
        let step = (end - start) / Double(count - 1)
        return (0..<count).map { i in i < count / 2 ? start + step * Double(i) : end - step * Double(count - 1 - i) }
    }

    /// numpy.linspace (the needle seed's array_api): start + i·step, the last value set to the end.
    static func numpyLinspace(from start: Double, to end: Double, count: Int) -> [Double] {
        let step = (end - start) / Double(count - 1)
        var values = (0..<count).map { start + Double($0) * step }
        values[count - 1] = end
        return values
    }
}
