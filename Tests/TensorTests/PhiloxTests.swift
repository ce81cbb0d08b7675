import Foundation
import Testing
import TestSupport
import Tensor

@Suite struct PhiloxTests {
    @Test func blocksMatchRandom123KnownAnswers() {
        // Random123's kat_vectors for philox4x32_10: counter words (c0, c1, c2, c3) = (counter lo, counter hi,
        // stream lo, stream hi) and key words (k0, k1) = (seed lo, seed hi).
        var zero = Philox(seed: 0, stream: 0, counter: 0)
        #expect(zero.nextBlock() == SIMD4<UInt32>(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8))
        var ones = Philox(seed: .max, stream: .max, counter: .max)
        #expect(ones.nextBlock() == SIMD4<UInt32>(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD))
        var pi = Philox(seed: 0x299F_31D0_A409_3822, stream: 0x0370_7344_1319_8A2E, counter: 0x85A3_08D3_243F_6A88)
        #expect(pi.nextBlock() == SIMD4<UInt32>(0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1))
        #expect(pi.counter == 0x85A3_08D3_243F_6A89)
    }

    @Test func sameSeedStreamAndCounterGiveIdenticalStreams() {
        var a = Philox(seed: 42, stream: 3, counter: 5), b = Philox(seed: 42, stream: 3, counter: 5)
        var x = [Float](repeating: 0, count: 1001), y = [Float](repeating: 1, count: 1001)
        a.fillNormal(&x, count: x.count); b.fillNormal(&y, count: y.count)
        #expect(x.map(\.bitPattern) == y.map(\.bitPattern))
        #expect(a == b)
    }

    @Test func differentStreamOrSeedGivesDifferentNumbers() {
        var base = Philox(seed: 42, stream: 3), otherStream = Philox(seed: 42, stream: 4), otherSeed = Philox(seed: 43, stream: 3)
        let a = (0..<64).map { _ in base.nextBlock() }
        let b = (0..<64).map { _ in otherStream.nextBlock() }
        let c = (0..<64).map { _ in otherSeed.nextBlock() }
        // Not merely not identical: no block agrees in any word.
        #expect(zip(a, b).allSatisfy { !any($0 .== $1) })
        #expect(zip(a, c).allSatisfy { !any($0 .== $1) })
        // Streams far apart (the per-rank training streams sit at 2^32 + rank) are independent too.
        var high = Philox(seed: 42, stream: 3 + (1 << 32))
        #expect((0..<64).map { _ in high.nextBlock() } != a)
    }

    @Test func restoringSeedStreamAndCounterResumesExactly() throws {
        var g = Philox(seed: 7, stream: 9)
        var scratch = [Float](repeating: 0, count: 37)
        g.fillUniform(&scratch, count: 37, low: 0, high: 1)
        var t = [Int32](repeating: 0, count: 5)
        g.fillIntegers(&t, count: 5, below: 1000)
        #expect(g.counter == 10 + 2)      // whole 4-word blocks: ⌈37/4⌉ + ⌈5/4⌉
        var restored = Philox(seed: g.seed, stream: g.stream, counter: g.counter)
        let decoded = try JSONDecoder().decode(Philox.self, from: JSONEncoder().encode(g))
        var viaCodable = decoded
        var expected = [Float](repeating: 0, count: 257), fromRestored = expected, fromCodable = expected
        g.fillNormal(&expected, count: 257)
        restored.fillNormal(&fromRestored, count: 257)
        viaCodable.fillNormal(&fromCodable, count: 257)
        #expect(fromRestored.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(fromCodable.map(\.bitPattern) == expected.map(\.bitPattern))
        // Block k of a stream is a pure function of (seed, stream, k).
        var fresh = Philox(seed: 7, stream: 9)
        for _ in 0..<5 { _ = fresh.nextBlock() }
        var jumped = Philox(seed: 7, stream: 9, counter: 5)
        #expect(fresh.nextBlock() == jumped.nextBlock())
    }

    @Test func fillNormalHasMeanZeroAndVarianceOne() {
        var g = Philox(seed: 123, stream: 1)
        let n = 100_000
        var x = [Float](repeating: .nan, count: n + 1)   // odd count: the last pair is half used
        g.fillNormal(&x, count: n + 1)
        #expect(x.allSatisfy { $0.isFinite })
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(x.count - 1)
        let withinOne = Double(x.filter { abs($0) < 1 }.count) / Double(x.count)
        let fourthMoment = x.reduce(0.0) { $0 + pow(Double($1) - mean, 4) } / Double(x.count)
        // Standard errors at n = 1e5: mean 0.0032, variance 0.0045, P(|z|<1) 0.0015, kurtosis ~0.03.
        #expect(abs(mean) < 0.015, "mean \(mean)")
        #expect(abs(variance - 1) < 0.02, "variance \(variance)")
        #expect(abs(withinOne - 0.682_689) < 0.007, "P(|z| < 1) = \(withinOne)")
        #expect(abs(fourthMoment - 3) < 0.15, "E z⁴ = \(fourthMoment)")
    }

    @Test func fillIntegersStaysInRangeAndIsRoughlyUniform() {
        var g = Philox(seed: 5, stream: 2)
        let n = 100_000, bound = 10
        var t = [Int32](repeating: -1, count: n)
        g.fillIntegers(&t, count: n, below: bound)
        #expect(t.allSatisfy { $0 >= 0 && $0 < Int32(bound) })
        var counts = [Int](repeating: 0, count: bound)
        for v in t { counts[Int(v)] += 1 }
        // χ² with 9 degrees of freedom: the 99.9% point is 27.9.
        let expected = Double(n) / Double(bound)
        let chi2 = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        #expect(chi2 < 27.9, "counts \(counts), χ² \(chi2)")
        // The largest bound used in training (T = 1000) reaches both ends.
        var big = [Int32](repeating: -1, count: 20_000)
        g.fillIntegers(&big, count: big.count, below: 1000)
        #expect(big.min() == 0 && big.max() == 999)
    }

    @Test func fillUniformStaysWithinBounds() {
        var g = Philox(seed: 9, stream: 0)
        let n = 100_000
        var x = [Float](repeating: .nan, count: n)
        g.fillUniform(&x, count: n, low: -2, high: 3)
        #expect(x.allSatisfy { $0 >= -2 && $0 < 3 })
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(n)
        #expect(abs(mean - 0.5) < 0.03, "mean \(mean)")      // standard error 5/√12/√n = 0.0046
        #expect(x.min()! < -1.99 && x.max()! > 2.99)
        // A count that is not a multiple of 4 leaves the rest of the buffer alone.
        var y = [Float](repeating: 42, count: 8)
        g.fillUniform(&y, count: 5, low: 0, high: 1)
        #expect(Array(y[5...]) == [42, 42, 42] && y[0..<5].allSatisfy { $0 >= 0 && $0 < 1 })
    }
}
