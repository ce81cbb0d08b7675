import Foundation
import Tensor

/// 2-D toy point sets for the MLP denoiser, [N, 2] float32, reproducible from a seed (Philox).
///
/// Each shape is mapped by a fixed affine transform (the same for every seed and count; aspect ratio
/// kept) so that its noise-free form spans [−1, 1] along its longer axis; then Gaussian noise of standard
/// deviation `noise` (in those output units) is added to each coordinate. Points are not clamped.
/// - two moons (sklearn `make_moons`): N/2 points evenly spaced on the upper unit half circle (label 0)
///   and the rest on the lower one shifted by (1, −0.5) (label 1); x ∈ [−1, 1], y ∈ [−0.5, 0.5]; shuffled.
/// - swiss roll (sklearn `make_swiss_roll`, its x and z): t = 1.5π(1 + 2u), u ~ U(0, 1),
///   (t·cos t, t·sin t); no labels.
/// - Gaussian mixture: 8 components centred on the circle of radius 0.8 at angles 2πk/8, with standard
///   deviation `noise`; exactly N/8 points each (±1), label k; shuffled.
public enum ToySet: String, Sendable, CaseIterable {
    case twoMoons = "two-moons"
    case swissRoll = "swiss-roll"
    case gaussianMixture = "gaussian-mixture"

    // Random streams of the generator (seed = the user's seed).
    static let placementStream: UInt64 = 5 << 56
    static let noiseStream: UInt64 = 5 << 56 | 1
    static let orderStream: UInt64 = 5 << 56 | 2

    public func generate(count: Int, noise: Double, seed: UInt64) throws -> DatasetContents {
        guard count > 0 else { throw IOError("\(rawValue): the point count must be positive, not \(count)") }
        guard noise >= 0, noise.isFinite else { throw IOError("\(rawValue): noise must be ≥ 0, not \(noise)") }
        var points = [Float](repeating: 0, count: 2 * count)
        var labels: [Int64]? = nil
        switch self {
        case .twoMoons:
            let outer = count / 2, inner = count - outer
            var l = [Int64](repeating: 0, count: count)
            func angle(_ i: Int, of n: Int) -> Double { n > 1 ? Double.pi * Double(i) / Double(n - 1) : 0 }
            for i in 0..<count {
                let (x, y): (Double, Double)
                if i < outer {
                    let a = angle(i, of: outer); (x, y) = (cos(a), sin(a))
                } else {
                    let a = angle(i - outer, of: inner); (x, y) = (1 - cos(a), 1 - sin(a) - 0.5); l[i] = 1
                }
                points[2 * i] = Float((x - 0.5) / 1.5); points[2 * i + 1] = Float((y - 0.25) / 1.5)
            }
            labels = l
        case .swissRoll:
            // Bounding box of the noise-free roll: x ∈ [−9.4773, 12.6059], z ∈ [−11.0407, 14.1372].
            let cx = 1.5643185, cz = 1.5482295, half = 12.5889375
            var u = [Float](repeating: 0, count: count)
            var g = Philox(seed: seed, stream: ToySet.placementStream)
            g.fillUniform(&u, count: count, low: 0, high: 1)
            for i in 0..<count {
                let t = 1.5 * Double.pi * (1 + 2 * Double(u[i]))
                points[2 * i] = Float((t * cos(t) - cx) / half); points[2 * i + 1] = Float((t * sin(t) - cz) / half)
            }
        case .gaussianMixture:
            var l = [Int64](repeating: 0, count: count)
            for i in 0..<count {
                let k = i % 8, a = 2 * Double.pi * Double(k) / 8
                points[2 * i] = Float(0.8 * cos(a)); points[2 * i + 1] = Float(0.8 * sin(a)); l[i] = Int64(k)
            }
            labels = l
        }
        if noise > 0 {
            var eps = [Float](repeating: 0, count: 2 * count)
            var g = Philox(seed: seed, stream: ToySet.noiseStream)
            g.fillNormal(&eps, count: eps.count)
            for i in 0..<points.count { points[i] += Float(noise) * eps[i] }
        }
        if let l = labels {
            // why: moons and mixture are generated in label order; shuffle so any prefix is a fair sample.
            let order = seededPermutation(count: count, seed: seed, stream: ToySet.orderStream)
            points = order.flatMap { [points[2 * $0], points[2 * $0 + 1]] }
            labels = order.map { l[$0] }
        }
        let noiseText = self == .gaussianMixture ? "component std \(noise)" : "noise \(noise)"
        return DatasetContents(shape: [count, 2], pixels: .float32(points), labels: labels,
                               source: "toy \(rawValue): \(count) points, \(noiseText), seed \(seed)")
    }
}
