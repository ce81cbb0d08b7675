import Foundation

/// The forward-process variances β_t and their products ᾱ_t = Π_{s≤t}(1 − β_s), t = 0..<T, in Double.
public struct NoiseSchedule: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case linear, cosine }
    public let kind: Kind
    public let betas: [Double]
    public let alphaBars: [Double]
    public var timesteps: Int { betas.count }

    /// linear: β = linspace(1e-4, 0.02, T) (DDPM); cosine: improved DDPM's, s = 0.008, β clipped at 0.999.
    public init(_ kind: Kind, timesteps: Int = 1000) {
        self.kind = kind
        var betas = [Double](repeating: 0, count: timesteps)
        switch kind {
        case .linear:
            let start = 1e-4, end = 0.02, step = (end - start) / Double(timesteps - 1)
            // why: torch.linspace fills the first half from the start and the second half from the end.
            for i in 0..<timesteps {
                betas[i] = i < timesteps / 2 ? start + step * Double(i) : end - step * Double(timesteps - 1 - i)
            }
        case .cosine:
            func f(_ t: Double) -> Double { let c = cos((t + 0.008) / 1.008 * Double.pi / 2); return c * c }
            for i in 0..<timesteps {
                betas[i] = min(1 - f(Double(i + 1) / Double(timesteps)) / f(Double(i) / Double(timesteps)), 0.999)
            }
        }
        var product = 1.0
        alphaBars = betas.map { product *= 1 - $0; return product }
        self.betas = betas
    }
}
