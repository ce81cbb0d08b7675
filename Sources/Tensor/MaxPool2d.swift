/// MaxPool2d(2) over `planes` independent height×width planes (C·N planes of a CNHW tensor).
/// `argmax` records 0...3, the window position of the first maximum in row-major order (PyTorch's tie rule).
public func maxPool2x2Forward(output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>,
                              input: UnsafePointer<Float>, planes: Int, height: Int, width: Int) {
    let oh = height / 2, ow = width / 2
    parallelFor(planes) { p in
        let x = input + p * height * width, y = output + p * oh * ow, idx = argmax + p * oh * ow
        for oy in 0..<oh {
            let r0 = x + 2 * oy * width, r1 = r0 + width
            for ox in 0..<ow {
                let c = 2 * ox
                var best = r0[c]; var at: UInt8 = 0
                // Strictly greater keeps the first of equal values; a NaN wins, as in PyTorch.
                if r0[c + 1] > best || r0[c + 1].isNaN { best = r0[c + 1]; at = 1 }
                if r1[c] > best || r1[c].isNaN { best = r1[c]; at = 2 }
                if r1[c + 1] > best || r1[c + 1].isNaN { best = r1[c + 1]; at = 3 }
                y[oy * ow + ox] = best; idx[oy * ow + ox] = at
            }
        }
    }
}

/// Routes each output gradient to its window's recorded maximum, adding into `inputGrad`.
public func maxPool2x2Backward(inputGrad: UnsafeMutablePointer<Float>, outputGrad: UnsafePointer<Float>,
                               argmax: UnsafePointer<UInt8>, planes: Int, height: Int, width: Int) {
    let oh = height / 2, ow = width / 2
    parallelFor(planes) { p in
        let dx = inputGrad + p * height * width, dy = outputGrad + p * oh * ow, idx = argmax + p * oh * ow
        for oy in 0..<oh {
            for ox in 0..<ow {
                let at = Int(idx[oy * ow + ox])
                dx[(2 * oy + at / 2) * width + 2 * ox + at % 2] += dy[oy * ow + ox]
            }
        }
    }
}
