import Tensor

/// One rank's place in the run, as a checkpoint keeps it: its Philox stream for timesteps and noise,
/// and its position (epoch, cursor) in its shard's order. On disk a row of `/ranks/rng` [W, 3] int64
/// (seed, stream, counter, as bit patterns) and a row of `/ranks/data` [W, 2] int64 (epoch, cursor).
struct RankState: Equatable {
    var rng: Philox
    var epoch: Int
    var cursor: Int

    static let rngColumns = 3, dataColumns = 2

    var rngRow: [Int64] { [Int64(bitPattern: rng.seed), Int64(bitPattern: rng.stream), Int64(bitPattern: rng.counter)] }
    var dataRow: [Int64] { [Int64(epoch), Int64(cursor)] }
    /// Both rows, for one gather per checkpoint.
    var packed: [Int64] { rngRow + dataRow }

    init(rng: Philox, epoch: Int, cursor: Int) { self.rng = rng; self.epoch = epoch; self.cursor = cursor }

    init(rngRow r: ArraySlice<Int64>, dataRow d: ArraySlice<Int64>) {
        rng = Philox(seed: UInt64(bitPattern: r[r.startIndex]), stream: UInt64(bitPattern: r[r.startIndex + 1]),
                     counter: UInt64(bitPattern: r[r.startIndex + 2]))
        epoch = Int(d[d.startIndex]); cursor = Int(d[d.startIndex + 1])
    }

    /// Every rank's state from the rank-ordered concatenation of their `packed` rows.
    static func unpack(_ values: [Int64]) -> [RankState] {
        let width = rngColumns + dataColumns
        return stride(from: 0, to: values.count, by: width).map {
            RankState(rngRow: values[$0..<($0 + rngColumns)], dataRow: values[($0 + rngColumns)..<($0 + width)])
        }
    }
}
