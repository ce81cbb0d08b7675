import CMPI
import Foundation

/// The MPI world this process belongs to: rank, size and the collectives the trainer uses.
/// `world` is one per process (MPI is initialised on first use and finalised by `finalizeIfStarted()`);
/// `duplicate()` gives the same ranks on a separate communicator for a second thread.
/// Run without mpirun it is a world of one (a singleton MPI_Init), the same code path.
final class Communicator: @unchecked Sendable {
    let rank: Int
    let size: Int
    var isRoot: Bool { rank == 0 }
    /// The MPI communicator the collectives run on: the world, or a duplicate of it.
    private let handle: MPI_Comm?
    /// True when MPI lets two threads call it at once (MPI_THREAD_MULTIPLE), which the gradient
    /// allreducer's communication thread needs.
    let allowsConcurrentCalls: Bool

    /// why: MPI allows one MPI_Init per process; every caller shares this instance.
    nonisolated(unsafe) private static var shared: Communicator?

    static var world: Communicator {
        if let shared { return shared }
        let c = Communicator()
        shared = c
        return c
    }

    private init() {
        cmpi_keep_freed_memory_in_heap()
        // why: for an in-place nonblocking allreduce Open MPI's libnbc picks its binomial tree at any
        // size, so rank 0 alone sums every gradient bucket while the others wait; the ring splits the
        // sums evenly (CNNDenoiserLarge, 2 ranks: weak scaling 92 → 95 %). A user's setting wins.
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0)
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, Int32(MPI_THREAD_MULTIPLE), &provided)
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(cmpi_comm_world(), &r)
        MPI_Comm_size(cmpi_comm_world(), &s)
        rank = Int(r); size = Int(s)
        handle = cmpi_comm_world()
        allowsConcurrentCalls = provided >= Int32(MPI_THREAD_MULTIPLE)
    }

    private init(duplicating other: Communicator) {
        var copy: MPI_Comm? = nil
        MPI_Comm_dup(other.handle, &copy)
        handle = copy; rank = other.rank; size = other.size; allowsConcurrentCalls = other.allowsConcurrentCalls
    }

    /// The same ranks on a separate communicator (collective: every rank calls it), so that a second
    /// thread's collectives cannot be matched with this one's.
    func duplicate() -> Communicator { Communicator(duplicating: self) }

    /// True when the world was started by a launcher (mpirun, srun) rather than as a singleton.
    static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    static func finalizeIfStarted() {
        if shared != nil { MPI_Finalize() }
    }

    /// Ends every rank of the job at once with `code` (used when one rank fails and the others may be
    /// blocked in a collective).
    func abort(code: Int32) -> Never {
        MPI_Abort(cmpi_comm_world(), code)
        exit(code)
    }

    func barrier() { MPI_Barrier(handle) }

    /// In-place sum over ranks.
    func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        MPI_Allreduce(cmpi_in_place(), p, Int32(count), cmpi_float(), cmpi_op_sum(), handle)
    }

    func allreduceSum(_ p: UnsafeMutablePointer<Double>, count: Int) {
        guard size > 1 else { return }
        MPI_Allreduce(cmpi_in_place(), p, Int32(count), cmpi_double(), cmpi_op_sum(), handle)
    }

    /// The sum of `value` over ranks (no allocation: it runs every step).
    func allreduceSum(_ value: Double) -> Double {
        var v = value
        allreduceSum(&v, count: 1)
        return v
    }

    func allreduceMax(_ value: Double) -> Double {
        guard size > 1 else { return value }
        var v = value
        MPI_Allreduce(cmpi_in_place(), &v, 1, cmpi_double(), cmpi_op_max(), handle)
        return v
    }

    /// Starts an in-place sum of `count` floats; complete it with `wait` (or poll with `test`).
    func startAllreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) -> MPI_Request? {
        var request: MPI_Request? = cmpi_request_null()
        MPI_Iallreduce(cmpi_in_place(), p, Int32(count), cmpi_float(), cmpi_op_sum(), handle, &request)
        return request
    }

    /// Lets outstanding nonblocking operations progress (Open MPI moves them only inside MPI calls);
    /// true when all of them have completed.
    func test(_ requests: inout [MPI_Request?]) -> Bool {
        guard !requests.isEmpty else { return true }
        var done: Int32 = 0
        MPI_Testall(Int32(requests.count), &requests, &done, cmpi_statuses_ignore())
        return done != 0
    }

    func waitAll(_ requests: inout [MPI_Request?]) {
        guard !requests.isEmpty else { return }
        MPI_Waitall(Int32(requests.count), &requests, cmpi_statuses_ignore())
    }

    /// Rank `root`'s bytes, on every rank.
    func broadcast(_ bytes: [UInt8], root: Int = 0) -> [UInt8] {
        guard size > 1 else { return bytes }
        var count = Int64(bytes.count)
        MPI_Bcast(&count, 1, cmpi_int64(), Int32(root), handle)
        var data = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        data.withUnsafeMutableBytes { _ = MPI_Bcast($0.baseAddress, Int32(count), cmpi_byte(), Int32(root), handle) }
        return data
    }

    /// Each rank's `values` (the same count everywhere), concatenated in rank order on rank 0 (empty elsewhere).
    func gather(_ values: [Int64]) -> [Int64] {
        var result = [Int64](repeating: 0, count: rank == 0 ? values.count * size : 0)
        values.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer { receive in
                _ = MPI_Gather(send.baseAddress, Int32(values.count), cmpi_int64(),
                               receive.baseAddress, Int32(values.count), cmpi_int64(), 0, handle)
            }
        }
        return result
    }

    /// Rank r's `count` floats land at out + r·count on rank 0.
    func gather(_ p: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>?) {
        guard size > 1 else { out?.update(from: p, count: count); return }
        MPI_Gather(p, Int32(count), cmpi_float(), out, Int32(count), cmpi_float(), 0, handle)
    }
}
