import TestSupport

/// The coordinates a finite-difference check of one tensor's gradient `slice` (indexed as in the whole
/// gradient) probes: its largest entry (the best signal) and, when it has more, one other at random.
func largestAndOneRandom(_ slice: ArraySlice<Float>, rng: inout SplitMix64) -> [Int] {
    let largest = slice.indices.max { abs(slice[$0]) < abs(slice[$1]) }!
    guard slice.count > 1 else { return [largest] }
    var other = slice.startIndex + Int(rng.next() % UInt64(slice.count))
    while other == largest { other = slice.startIndex + Int(rng.next() % UInt64(slice.count)) }
    return [largest, other]
}
