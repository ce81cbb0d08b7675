/// AvgPool2d(k): window k × k, stride k, no padding, floor (PyTorch's defaults), over `planes`
/// independent height×width planes (CNHW activations: planes = C·N). The output is
/// ⌊H/k⌋ × ⌊W/k⌋ per plane; rows and columns past the last whole window are not read.
public func avgPool2dForward(output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                             planes: Int, height: Int, width: Int, kernel k: Int) {
    let oh = height / k, ow = width / k, scale = 1 / Float(k * k)
    parallelFor(planes) { p in
        let x = input + p * height * width, y = output + p * oh * ow
        for oy in 0..<oh {
            for ox in 0..<ow {
                var sum: Float = 0
                for a in 0..<k { for b in 0..<k { sum += x[(oy * k + a) * width + ox * k + b] } }
                y[oy * ow + ox] = sum * scale
            }
        }
    }
}

/// Adds the adjoint: every input of a window gets outputGrad / k² (inputs outside every window get nothing).
public func avgPool2dBackward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                              planes: Int, height: Int, width: Int, kernel k: Int) {
    let oh = height / k, ow = width / k, scale = 1 / Float(k * k)
    parallelFor(planes) { p in
        let dx = inputGrad + p * height * width, dy = outputGrad + p * oh * ow
        for oy in 0..<oh {
            for ox in 0..<ow {
                let g = dy[oy * ow + ox] * scale
                for a in 0..<k { for b in 0..<k { dx[(oy * k + a) * width + ox * k + b] += g } }
            }
        }
    }
}
