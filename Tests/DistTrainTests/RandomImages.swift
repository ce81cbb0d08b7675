import IO

/// Writes `count` random channels×side×side uint8 images as `/images` (a linear congruential stream from
/// `seed`, the top byte of each state): data for tests that need a model to run, not to learn.
func writeRandomImages(_ path: String, count: Int, channels: Int, side: Int, seed: UInt64) throws {
    var state = seed
    let bytes = (0..<(count * channels * side * side)).map { _ -> UInt8 in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
    let file = try HDF5File.create(path)
    try file.write("images", bytes, shape: [count, channels, side, side])
    try file.close()
}
