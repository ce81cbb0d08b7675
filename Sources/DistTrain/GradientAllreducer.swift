import CMPI
import Foundation
import Models
import Tensor

/// Sums the flat gradient buffer over ranks in buckets that start while backward is still running
/// (as PyTorch DDP): backward reports, layer by layer, the offset from which every gradient is final;
/// each bucket whose slice lies entirely above it is handed to MPI_Iallreduce at once, and `finish`
/// waits for the rest. Buckets are runs of whole parameters, about `bucketBytes` each, laid out from the
/// end of the buffer because that is where backward starts. Every parameter is in exactly one bucket.
final class GradientAllreducer {
    let communicator: Communicator
    let gradients: FloatBuffer
    /// Slices of the gradient buffer, in the order they are launched (from the end of the buffer).
    let buckets: [Range<Int>]
    /// Launch buckets during backward (true) or all of them after it (false, for comparison).
    let overlap: Bool
    private var launched = 0
    /// Set by `begin`, cleared by `finish`: reports outside that window (accumulation micro-steps) are ignored.
    private var armed = false
    private var requests: [MPI_Request?] = []
    /// Seconds `finish` spent waiting: the communication backward did not hide.
    private(set) var exposedSeconds = 0.0

    init(communicator: Communicator, table: ParameterTable, gradients: FloatBuffer, bucketBytes: Int, overlap: Bool) {
        self.communicator = communicator; self.gradients = gradients; self.overlap = overlap
        // At most `bucketBytes` each (a larger single tensor gets a bucket of its own).
        var buckets: [Range<Int>] = []
        var end = table.totalCount
        for entry in table.entries.reversed() {
            let bytesWithEntry = (end - entry.offset) * MemoryLayout<Float>.size
            if bytesWithEntry > bucketBytes && entry.offset + entry.count < end {
                buckets.append(entry.offset + entry.count..<end); end = entry.offset + entry.count
            }
        }
        if end > 0 { buckets.append(0..<end) }
        self.buckets = buckets
        requests.reserveCapacity(buckets.count)
    }

    /// Call before backward starts.
    func begin() {
        armed = true
        launched = 0
        requests.removeAll(keepingCapacity: true)
    }

    /// Backward's report: every gradient at index ≥ `offset` is final.
    func gradientsReady(from offset: Int) {
        guard armed, overlap, communicator.size > 1 else { return }
        while launched < buckets.count && buckets[launched].lowerBound >= offset { launchNext() }
        communicator.progress(&requests)
    }

    /// Launches what is left and waits for every bucket: afterwards `gradients` holds the sum over ranks.
    func finish() {
        armed = false
        guard communicator.size > 1 else { exposedSeconds = 0; return }
        let start = DispatchTime.now().uptimeNanoseconds
        while launched < buckets.count { launchNext() }
        communicator.waitAll(&requests)
        exposedSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    private func launchNext() {
        let range = buckets[launched]
        requests.append(communicator.startAllreduceSum(gradients.pointer + range.lowerBound, count: range.count))
        launched += 1
    }
}
