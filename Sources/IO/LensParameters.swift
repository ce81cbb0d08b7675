import Foundation
import Tensor

/// The parameters of one synthetic strong-lensing image (see `LensSimulator` for the physics).
///
/// Lengths and positions are in pixels; positions are relative to the image centre ((W − 1)/2, (H − 1)/2)
/// with x to the right (column) and y down (row). Angles are in radians, measured from +x towards +y
/// (clockwise on screen). Brightnesses are in the stored image's units: 1 is pixel value 255.
public struct LensParameters: Sendable, Equatable {
    /// Einstein radius θ_E of the SIE (the geometric mean of the critical curve's semi-axes).
    public var einsteinRadius: Double
    public var lensX: Double
    public var lensY: Double
    /// Axis ratio q ∈ (0, 1] of the mass (and of the lens light); 1 is the singular isothermal sphere.
    public var lensAxisRatio: Double
    /// Direction of the mass's (and the lens light's) major axis.
    public var lensAngle: Double
    /// External shear (γ1, γ2) about the lens centre, in the pixel axes.
    public var shear1: Double
    public var shear2: Double
    /// Source centre in the source plane (the same axes as the image: a source at the lens centre is exactly behind it).
    public var sourceX: Double
    public var sourceY: Double
    /// Half-light radius of the source's Sérsic profile.
    public var sourceRadius: Double
    /// Sérsic index n of the source (0.5 Gaussian, 1 exponential).
    public var sourceIndex: Double
    public var sourceAxisRatio: Double
    public var sourceAngle: Double
    /// Central surface brightness of the source (lensing conserves surface brightness, so no arc is brighter).
    public var sourcePeak: Double
    /// Central brightness of the lens light (before the PSF); 0 turns it off.
    public var lensLightPeak: Double
    public var lensLightRadius: Double
    /// Sérsic index of the lens light (4 is de Vaucouleurs).
    public var lensLightIndex: Double
    /// Standard deviation of the Gaussian PSF.
    public var psfSigma: Double
    /// Standard deviation of the Gaussian background noise; 0 turns all noise off.
    public var noiseSigma: Double

    public init(einsteinRadius: Double, lensX: Double = 0, lensY: Double = 0, lensAxisRatio: Double = 1, lensAngle: Double = 0,
                shear1: Double = 0, shear2: Double = 0, sourceX: Double = 0, sourceY: Double = 0, sourceRadius: Double = 2,
                sourceIndex: Double = 1, sourceAxisRatio: Double = 1, sourceAngle: Double = 0, sourcePeak: Double = 0.8,
                lensLightPeak: Double = 0, lensLightRadius: Double = 6, lensLightIndex: Double = 4,
                psfSigma: Double = 1, noiseSigma: Double = 0) {
        self.einsteinRadius = einsteinRadius; self.lensX = lensX; self.lensY = lensY
        self.lensAxisRatio = lensAxisRatio; self.lensAngle = lensAngle; self.shear1 = shear1; self.shear2 = shear2
        self.sourceX = sourceX; self.sourceY = sourceY; self.sourceRadius = sourceRadius; self.sourceIndex = sourceIndex
        self.sourceAxisRatio = sourceAxisRatio; self.sourceAngle = sourceAngle; self.sourcePeak = sourcePeak
        self.lensLightPeak = lensLightPeak; self.lensLightRadius = lensLightRadius; self.lensLightIndex = lensLightIndex
        self.psfSigma = psfSigma; self.noiseSigma = noiseSigma
    }

    /// The columns of `/params`, in order (stored as the JSON array attribute `param_names`).
    public static let names = [
        "theta_e", "lens_x", "lens_y", "lens_q", "lens_angle", "gamma1", "gamma2",
        "source_x", "source_y", "source_r_eff", "source_n", "source_q", "source_angle", "source_peak",
        "lens_light_peak", "lens_light_r_eff", "lens_light_n", "psf_sigma", "noise_sigma",
    ]

    /// This image's row of `/params`, in the order of `names`.
    public var row: [Double] {
        [einsteinRadius, lensX, lensY, lensAxisRatio, lensAngle, shear1, shear2,
         sourceX, sourceY, sourceRadius, sourceIndex, sourceAxisRatio, sourceAngle, sourcePeak,
         lensLightPeak, lensLightRadius, lensLightIndex, psfSigma, noiseSigma]
    }

    /// Draws image `index`'s parameters for `size`×`size` images from Philox(seed, stream
    /// `LensParameters.stream(image:)`) — one stream per image, so any image can be redrawn alone.
    ///
    /// Uniform priors, lengths scaled by size/64 (the ranges below are at 64×64): θ_E 8…16; lens
    /// centre ±2 each; q 0.5…1; major axis 0…π; γ1, γ2 ±0.05 each; the source uniformly within
    /// 0.5 θ_E of the lens centre (inside or near the caustic: rings, arcs, quads and doubles), half-light
    /// radius 1.5…4, n 0.5…2, q 0.4…1, angle 0…π, peak 0.3…0.8; lens light peak 0.5…1, half-light
    /// radius 4…10, n 2…4, with the mass's q and angle; PSF σ 0.8…1.6; noise σ 0.004…0.016.
    public static func draw(image index: Int, size: Int, seed: UInt64) -> LensParameters {
        var generator = Philox(seed: seed, stream: stream(image: index))
        var words: [UInt32] = []
        for _ in 0..<5 { let b = generator.nextBlock(); words += [b[0], b[1], b[2], b[3]] }
        var next = 0
        func uniform(_ low: Double, _ high: Double) -> Double {
            defer { next += 1 }
            return low + (high - low) * Double(words[next]) * 0x1p-32
        }
        let scale = Double(size) / 64
        let thetaE = uniform(8, 16) * scale
        let lensX = uniform(-2, 2) * scale, lensY = uniform(-2, 2) * scale
        let q = uniform(0.5, 1), angle = uniform(0, .pi)
        let shear1 = uniform(-0.05, 0.05), shear2 = uniform(-0.05, 0.05)
        // why √u: uniform over the disc's area, not crowded at its centre.
        let offset = 0.5 * thetaE * uniform(0, 1).squareRoot(), direction = uniform(0, 2 * .pi)
        return LensParameters(
            einsteinRadius: thetaE, lensX: lensX, lensY: lensY, lensAxisRatio: q, lensAngle: angle,
            shear1: shear1, shear2: shear2,
            sourceX: lensX + offset * cos(direction), sourceY: lensY + offset * sin(direction),
            sourceRadius: uniform(1.5, 4) * scale, sourceIndex: uniform(0.5, 2), sourceAxisRatio: uniform(0.4, 1),
            sourceAngle: uniform(0, .pi), sourcePeak: uniform(0.3, 0.8),
            lensLightPeak: uniform(0.5, 1), lensLightRadius: uniform(4, 10) * scale, lensLightIndex: uniform(2, 4),
            psfSigma: uniform(0.8, 1.6) * scale, noiseSigma: uniform(0.004, 0.016))
    }

    /// Philox stream of image `index`'s parameters; its noise uses `noiseStream(image:)`.
    public static func stream(image index: Int) -> UInt64 { 7 << 56 | UInt64(index) << 1 }
    public static func noiseStream(image index: Int) -> UInt64 { 7 << 56 | UInt64(index) << 1 | 1 }
}
