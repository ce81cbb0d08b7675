import Foundation
import Tensor

/// Synthetic galaxy–galaxy strong-lensing images (the DeepLense setting), one gray channel.
///
/// Each pixel centre θ (pixels, relative to the lens centre c) is ray-shot to the source plane,
/// β = θ − α_SIE(θ − c) − Γ(θ − c), with
/// - a singular isothermal ellipsoid (Kormann et al. 1994, in Keeton's form): in the frame of the
///   mass's major axis (x', y'), ψ = √(q²x'² + y'²), e = √(1 − q²),
///   α_x' = θ_E √q / e · atan(e x'/ψ), α_y' = θ_E √q / e · atanh(e y'/ψ);
///   its convergence is κ = θ_E √q / (2ψ), so θ_E is the geometric mean of the critical curve's
///   semi-axes, and q → 1 is the singular isothermal sphere α = θ_E θ/|θ|;
/// - external shear Γ = [[γ1, γ2], [γ2, −γ1]] (the potential ½γ1(x² − y²) + γ2 x y).
/// The image is the source's surface brightness at β (lensing conserves it) plus the lens light, both
/// elliptical Sérsic profiles I(R) = I₀ exp(−b_n ((R² + s²)^(1/2n) − s^(1/n)) / R_e^(1/n)) with
/// R² = q x'² + y'²/q, b_n from Ciotti & Bertin (1999) and a core softened by s = ½ pixel (the profile's
/// cusp would otherwise make the centre pixel's value a matter of where the centre falls); I₀ is the peak.
/// Then a Gaussian PSF (separable, truncated at 3σ, zero outside the image), a sky level of
/// `skyLevel`, and noise of variance σ² + I/`countsPerUnit` (Gaussian background plus Poisson-like
/// shot noise of the source and lens), and the value v is stored as round(255·v) clamped to 0…255.
public enum LensSimulator {
    /// Brightness added to every pixel, so that the background noise is not clipped at 0.
    public static let skyLevel = 0.05
    /// Shot-noise scale: a pixel of brightness I gets noise variance I / countsPerUnit on top of σ².
    public static let countsPerUnit = 2000.0
    /// Core softening of the Sérsic profiles, in pixels.
    public static let coreSoftening = 0.5

    /// The SIE's deflection at (x, y) in its own frame (major axis along x), pixels; q ∈ (0, 1].
    /// Finite everywhere: 0 at the centre, where the direction is undefined (|α| stays bounded).
    @inline(__always)
    public static func sieDeflection(x: Double, y: Double, einsteinRadius: Double, axisRatio q: Double) -> (x: Double, y: Double) {
        let psi = (q * q * x * x + y * y).squareRoot()
        guard psi > 0 else { return (0, 0) }
        let e = (1 - q * q).squareRoot()
        let b = einsteinRadius * q.squareRoot()
        // why: at q = 1 the closed form is 0/0; below e = 1e-4 the SIS form b·(x, y)/ψ differs from it by
        // O(e²) < 1e-8 relative, and it is exactly θ_E θ/|θ| at q = 1.
        if e < 1e-4 { return (b * x / psi, b * y / psi) }
        return (b / e * atan(e * x / psi), b / e * atanh(e * y / psi))
    }

    /// b_n of the Sérsic profile (half the light within R_e), Ciotti & Bertin's expansion; good for n > 0.36.
    public static func sersicB(_ n: Double) -> Double {
        2 * n - 1.0 / 3 + 4 / (405 * n) + 46 / (25515 * n * n) + 131 / (1_148_175 * n * n * n)
    }

    /// `count` images of `size`×`size` drawn with `seed`: /images [N, 1, size, size] uint8 and the
    /// `params` table [N, P] float32 (columns `LensParameters.names`, also in the `param_names` attribute).
    /// `threads` split the images into contiguous ranges; every image has its own random streams, so the
    /// result does not depend on the thread count.
    public static func generate(count: Int, size: Int, seed: UInt64, threads: Int = 1) throws -> DatasetContents {
        guard count >= 1 else { throw IOError("lenses: the image count must be at least 1, not \(count)") }
        guard size >= 8 else { throw IOError("lenses: the image size must be at least 8, not \(size)") }
        guard threads >= 1 else { throw IOError("lenses: the thread count must be at least 1, not \(threads)") }
        let plane = size * size
        guard count <= (1 << 34) / plane else {
            throw IOError("lenses: \(count) images of \(size)×\(size) would need more than 16 GiB")
        }
        var pixels = [UInt8](repeating: 0, count: count * plane)
        var params = [Float](repeating: 0, count: count * LensParameters.names.count)
        pixels.withUnsafeMutableBufferPointer { out in
            params.withUnsafeMutableBufferPointer { table in
                let output = LensOutput(pixels: out.baseAddress!, params: table.baseAddress!)
                let parts = min(threads, count)
                if parts == 1 {
                    render(0..<count, size: size, seed: seed, into: output)
                } else {
                    DispatchQueue.concurrentPerform(iterations: parts) { t in
                        render((count * t / parts)..<(count * (t + 1) / parts), size: size, seed: seed, into: output)
                    }
                }
            }
        }
        var data = DatasetContents(shape: [count, 1, size, size], pixels: .uint8(pixels), labels: nil,
                                   source: "synthetic strong lenses (SIE + external shear, Sérsic source and lens light, Gaussian PSF, noise): \(count) images of \(size)×\(size), seed \(seed)")
        data.sampleTables["params"] = params
        data.attributes["param_names"] = "[" + LensParameters.names.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        return data
    }

    /// Images `range` (their parameters, then their pixels) into `output`.
    private static func render(_ range: Range<Int>, size: Int, seed: UInt64, into output: LensOutput) {
        let renderer = LensRenderer(size: size)
        let plane = size * size, columns = LensParameters.names.count
        for i in range {
            let p = LensParameters.draw(image: i, size: size, seed: seed)
            for (k, value) in p.row.enumerated() { output.params[i * columns + k] = Float(value) }
            var noise = Philox(seed: seed, stream: LensParameters.noiseStream(image: i))
            renderer.render(p, noise: &noise, into: output.pixels + i * plane)
        }
    }
}

/// why: the threads of `generate` write disjoint images and rows of these buffers, which Swift cannot prove.
private struct LensOutput: @unchecked Sendable {
    let pixels: UnsafeMutablePointer<UInt8>
    let params: UnsafeMutablePointer<Float>
}

/// Renders `LensParameters` into `size`×`size` images; holds its scratch buffers, so reuse one per thread.
public final class LensRenderer {
    public let size: Int
    /// The noiseless image after the PSF (no sky), row-major; valid after `intensity(of:)` or `render`.
    public let image: UnsafeMutablePointer<Float>
    private let scratch: UnsafeMutablePointer<Float>
    private let normals: UnsafeMutablePointer<Float>

    public init(size: Int) {
        precondition(size >= 1, "LensRenderer: size \(size)")
        self.size = size
        image = .allocate(capacity: size * size); scratch = .allocate(capacity: size * size)
        normals = .allocate(capacity: size * size)
    }

    deinit { image.deallocate(); scratch.deallocate(); normals.deallocate() }

    /// The noiseless image of `p` (lens light + lensed source, convolved with the PSF, no sky) in `image`.
    @discardableResult
    public func intensity(of p: LensParameters) -> UnsafeMutablePointer<Float> {
        rayShoot(p)
        convolveGaussian(sigma: p.psfSigma)
        return image
    }

    /// The stored image of `p`: intensity, sky, noise drawn from `noise` (none when p.noiseSigma is 0),
    /// round(255·v) clamped to 0…255, row-major into `out`.
    public func render(_ p: LensParameters, noise: inout Philox, into out: UnsafeMutablePointer<UInt8>) {
        intensity(of: p)
        let n = size * size
        let withNoise = p.noiseSigma > 0
        if withNoise { noise.fillNormal(normals, count: n) }
        let variance = p.noiseSigma * p.noiseSigma, sky = LensSimulator.skyLevel
        for i in 0..<n {
            let clean = Double(image[i])
            var v = sky + clean
            if withNoise { v += (variance + max(clean, 0) / LensSimulator.countsPerUnit).squareRoot() * Double(normals[i]) }
            out[i] = UInt8(min(255, max(0, (255 * v).rounded())))
        }
    }

    /// An elliptical Sérsic profile, precomputed for per-pixel evaluation (in Float: the result becomes a
    /// grey level, and expf/logf are several times cheaper than their Double twins).
    private struct Sersic {
        let peak, centreX, centreY, cosA, sinA, q, invQ, exponent, offset, scale, softening2, cutoff2: Float

        init(peak: Double, x: Double, y: Double, radius: Double, index n: Double, axisRatio: Double, angle: Double) {
            let s = LensSimulator.coreSoftening
            let scale = LensSimulator.sersicB(n) / pow(radius, 1 / n), offset = pow(s, 1 / n)
            self.peak = Float(peak); centreX = Float(x); centreY = Float(y)
            cosA = Float(cos(angle)); sinA = Float(sin(angle)); q = Float(axisRatio); invQ = Float(1 / axisRatio)
            exponent = Float(1 / (2 * n)); self.offset = Float(offset); self.scale = Float(scale); softening2 = Float(s * s)
            // why: where R² + s² exceeds this the profile is below 1e-6 of its peak (far under one grey level);
            // returning 0 there skips the logarithm and both exponentials for most of a small source's plane.
            cutoff2 = Float(pow(log(1e6) / scale + offset, 2 * n))
        }

        @inline(__always)
        func callAsFunction(_ x: Float, _ y: Float) -> Float {
            let dx = x - centreX, dy = y - centreY
            let u = cosA * dx + sinA * dy, v = -sinA * dx + cosA * dy
            let r2 = q * u * u + invQ * v * v + softening2
            guard r2 < cutoff2 else { return 0 }
            return peak * exp(-scale * (exp(exponent * log(r2)) - offset))
        }
    }

    /// Lens light plus the source's brightness at each pixel's β, sampled at the pixel centres.
    private func rayShoot(_ p: LensParameters) {
        let centre = Double(size - 1) / 2
        let cosL = cos(p.lensAngle), sinL = sin(p.lensAngle)
        let source = Sersic(peak: p.sourcePeak, x: p.sourceX, y: p.sourceY, radius: p.sourceRadius, index: p.sourceIndex,
                            axisRatio: p.sourceAxisRatio, angle: p.sourceAngle)
        let lensLight = Sersic(peak: p.lensLightPeak, x: p.lensX, y: p.lensY, radius: p.lensLightRadius,
                               index: p.lensLightIndex, axisRatio: p.lensAxisRatio, angle: p.lensAngle)
        let hasLensLight = p.lensLightPeak != 0
        for row in 0..<size {
            let y = Double(row) - centre, dy = y - p.lensY
            for column in 0..<size {
                let x = Double(column) - centre, dx = x - p.lensX
                let u = cosL * dx + sinL * dy, v = -sinL * dx + cosL * dy
                let a = LensSimulator.sieDeflection(x: u, y: v, einsteinRadius: p.einsteinRadius, axisRatio: p.lensAxisRatio)
                let alphaX = cosL * a.x - sinL * a.y + p.shear1 * dx + p.shear2 * dy
                let alphaY = sinL * a.x + cosL * a.y + p.shear2 * dx - p.shear1 * dy
                var value = source(Float(x - alphaX), Float(y - alphaY))
                if hasLensLight { value += lensLight(Float(x), Float(y)) }
                image[row * size + column] = value
            }
        }
    }

    /// `image` ← image ∗ Gaussian(σ), separably: rows into `scratch`, then columns back.
    private func convolveGaussian(sigma: Double) {
        guard sigma > 0 else { return }
        let radius = max(1, Int((3 * sigma).rounded(.up)))
        var weights = [Float](repeating: 0, count: 2 * radius + 1)
        var total = 0.0
        for k in -radius...radius { let w = exp(-Double(k * k) / (2 * sigma * sigma)); weights[k + radius] = Float(w); total += w }
        for k in weights.indices { weights[k] = Float(Double(weights[k]) / total) }
        let n = size
        weights.withUnsafeBufferPointer { wb in
            let w = wb.baseAddress! + radius   // w[k] for k in −radius…radius
            for row in 0..<n {
                let line = image + row * n, out = scratch + row * n
                for x in 0..<n {
                    var sum: Float = 0
                    for k in max(-radius, -x)...min(radius, n - 1 - x) { sum += w[k] * line[x + k] }
                    out[x] = sum
                }
            }
            for row in 0..<n {
                for x in 0..<n {
                    var sum: Float = 0
                    for k in max(-radius, -row)...min(radius, n - 1 - row) { sum += w[k] * scratch[(row + k) * n + x] }
                    image[row * n + x] = sum
                }
            }
        }
    }
}
