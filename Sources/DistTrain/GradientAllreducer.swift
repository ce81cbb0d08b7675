import CMPI
import Foundation
import Models
import Tensor

/// Sums the flat gradient buffer over ranks in buckets that start while backward is still running
/// (as PyTorch DDP): backward reports, layer by layer, the offset from which every gradient is final;
/// each bucket whose slice lies entirely above it is handed to a communication thread, which starts its
/// MPI_Iallreduce and keeps every outstanding one moving, and `finish` waits for the rest. Buckets are
/// runs of whole parameters, about `bucketBytes` each, laid out from the end of the buffer because that
/// is where backward starts. Every parameter is in exactly one bucket.
///
/// Why a thread: Open MPI moves a nonblocking collective only inside MPI calls. Polling between layers
/// from backward was enough over shared memory, but over TCP a bucket then waited in socket buffers
/// until the next call, tens of milliseconds later; the thread polls every `pollMicroseconds` instead.
/// It runs on its own duplicate of the world, so its collectives never pair with the main thread's
/// (loss, sync-BN). Without MPI_THREAD_MULTIPLE there is no thread and every bucket goes after backward.
final class GradientAllreducer: @unchecked Sendable {
    let communicator: Communicator
    let gradients: FloatBuffer
    /// Slices of the gradient buffer, in the order they are launched (from the end of the buffer).
    let buckets: [Range<Int>]
    /// Launch buckets during backward (true) or all of them after it (false, for comparison).
    let overlap: Bool
    /// Seconds `finish` spent waiting: the communication backward did not hide.
    private(set) var exposedSeconds = 0.0
    private static let pollMicroseconds: UInt32 = 200
    /// A pause at the start of `finish`, for tests: lets the thread complete every bucket first.
    var delayBeforeWaitMicroseconds: UInt32 = 0

    // Main thread only.
    /// Set by `begin`, cleared by `finish`: reports outside that window (accumulation micro-steps) are ignored.
    private var armed = false
    /// Buckets whose gradients backward has reported final this step.
    private var reported = 0
    private let usesThread: Bool

    // Shared, under `condition`; `begin` resets them while the communication thread is idle.
    private let condition = NSCondition()
    /// Buckets the communication thread may launch this step.
    private var ready = 0
    /// Every bucket of this step has been summed.
    private var completed = false
    /// Buckets launched this step (advanced by the communication thread, or by `finish` without one).
    private var launched = 0

    // Communication thread only (or the main thread inside `finish` when there is no thread).
    private var requests: [MPI_Request?] = []

    init(communicator world: Communicator, table: ParameterTable, gradients: FloatBuffer, bucketBytes: Int, overlap: Bool) {
        self.gradients = gradients; self.overlap = overlap
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
        usesThread = world.size > 1 && world.allowsConcurrentCalls
        communicator = usesThread ? world.duplicate() : world
        if usesThread {
            let thread = Thread { [self] in communicate() }
            thread.name = "gradient allreduce"
            thread.start()
        }
    }

    /// One line for the log: how the gradients travel.
    var summary: String {
        let largest = buckets.map(\.count).max() ?? 0
        let how = !usesThread ? "after backward (MPI has no MPI_THREAD_MULTIPLE, so no communication thread)"
            : overlap ? "started during backward on a communication thread" : "after backward (--no-overlap)"
        return String(format: "gradient allreduce in %d bucket(s), the largest %.2f MiB, %@", buckets.count,
                      Double(largest * MemoryLayout<Float>.size) / 1_048_576, how)
    }

    /// Call before backward starts (and after the previous step's `finish`, which leaves the
    /// communication thread idle).
    func begin() {
        armed = true
        reported = 0
        condition.lock(); ready = 0; launched = 0; completed = false; condition.unlock()
    }

    /// Backward's report: every gradient at index ≥ `offset` is final.
    func gradientsReady(from offset: Int) {
        guard armed, overlap, usesThread else { return }
        var count = reported
        while count < buckets.count && buckets[count].lowerBound >= offset { count += 1 }
        guard count > reported else { return }
        reported = count
        condition.lock(); ready = count; condition.signal(); condition.unlock()
    }

    /// Launches what is left and waits for every bucket: afterwards `gradients` holds the sum over ranks.
    func finish() {
        armed = false
        guard communicator.size > 1 else { exposedSeconds = 0; return }
        if delayBeforeWaitMicroseconds > 0 { usleep(delayBeforeWaitMicroseconds) }
        let start = DispatchTime.now().uptimeNanoseconds
        if usesThread {
            // Backward may have reported every bucket already, and the thread may even have finished
            // them: `completed` stays set until the next `begin`, and `ready` only grows, so nothing is
            // sent twice.
            condition.lock()
            ready = buckets.count
            condition.signal()
            while !completed { condition.wait() }
            condition.unlock()
        } else {
            while launched < buckets.count { launchNext() }
            communicator.waitAll(&requests)
            requests.removeAll(keepingCapacity: true)
        }
        exposedSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// The communication thread: launch buckets as they become ready, poll the outstanding ones,
    /// report when the step's last has completed, sleep while there is nothing to do. `launched` is
    /// read and advanced here outside the lock: `begin` writes it only while this thread waits.
    private func communicate() {
        while true {
            condition.lock()
            while ready == launched && requests.isEmpty { condition.wait() }
            let target = ready
            condition.unlock()
            while launched < target { launchNext() }
            guard communicator.test(&requests) else { usleep(Self.pollMicroseconds); continue }
            requests.removeAll(keepingCapacity: true)
            if launched == buckets.count {
                condition.lock(); completed = true; condition.signal(); condition.unlock()
            }
        }
    }

    private func launchNext() {
        let range = buckets[launched]
        requests.append(communicator.startAllreduceSum(gradients.pointer + range.lowerBound, count: range.count))
        launched += 1
    }
}
