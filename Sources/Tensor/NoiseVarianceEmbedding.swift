import Foundation

/// Width of the DDIM U-Net's sinusoidal embedding of the noise variance: 16 sines, then 16 cosines.
public let noiseVarianceEmbeddingDimension = 32

/// embedding[n, k] = sin(ω_k·ν_n) for k < 16 and cos(ω_{k−16}·ν_n) above, ω_k = 2π·f_k with the 16
/// frequencies f_k = exp(linspace(ln 1, ln 1000, 16))_k (keras.io's DDIM: 1 to 1000, log-spaced), ν_n the
/// noise variance of sample n (or whatever continuous value the conditioning holds). No parameters.
/// why Double, then Float: ω_k is worked out in Double and rounded once, and ω_k·ν is a Float product,
/// in the order Tests/Fixtures/generate/zoo_modules.py computes them, so both agree to the last bits of
/// the angle; at the top frequency an angle of 2π·1000 has a Float ulp of 5e-4, so a frequency off by
/// one ulp would move the embedding by that much.
public func noiseVarianceEmbedding(output: UnsafeMutablePointer<Float>, noiseVariance: UnsafePointer<Float>, batch: Int) {
    let half = noiseVarianceEmbeddingDimension / 2
    let logHigh = log(1000.0), step = logHigh / Double(half - 1)
    for n in 0..<batch {
        let nu = noiseVariance[n], row = output + n * noiseVarianceEmbeddingDimension
        for k in 0..<half {
            // PyTorch's linspace: from the start in the first half, back from the end in the second.
            let exponent = k < half / 2 ? step * Double(k) : logHigh - step * Double(half - 1 - k)
            let angularSpeed = Float(2 * Double.pi * exp(exponent))
            let angle = Double(angularSpeed * nu)
            row[k] = Float(sin(angle))
            row[half + k] = Float(cos(angle))
        }
    }
}
