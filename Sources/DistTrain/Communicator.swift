import CMPI
import Foundation

/// The MPI world this process belongs to: rank, size and the collectives the trainer uses.
/// `world` is one per process (MPI is initialised on first use and finalised by `finalizeIfStarted()`);
/// `duplicate()` gives the same ranks on a separate communicator for a second thread.
/// Run without mpirun it is a world of one (a singleton MPI_Init), the same code path.
/// Every MPI call is checked (`check`): errors are returned, not fatal inside Open MPI, and a failed
/// call prints the call, the rank and the step, then ends every rank with MPI_Abort.
final class Communicator: @unchecked Sendable {
    let rank: Int
    let size: Int
    var isRoot: Bool { rank == 0 }
    /// The MPI communicator the collectives run on: the world, or a duplicate of it.
    private let handle: MPI_Comm?
    /// True when MPI lets two threads call it at once (MPI_THREAD_MULTIPLE), which the gradient
    /// allreducer's communication thread needs.
    let allowsConcurrentCalls: Bool
    /// The training step under way, for error messages only (0: before the first step). The training
    /// loop sets it on the world; a duplicate reports its origin's.
    var step = 0
    private let origin: Communicator?
    /// For the tests: at this step, the last rank passes an invalid count to the loss allreduce, a real
    /// MPI error (0: never).
    var invalidAllreduceAtStep = 0

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
        // Before the error handler is set, Open MPI's default (fatal) one still ends the process on most
        // failures; what returns is checked all the same.
        Self.check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_MULTIPLE), &provided), "MPI_Init_thread", rank: nil, step: 0)
        var r: Int32 = 0, s: Int32 = 0
        Self.check(MPI_Comm_rank(cmpi_comm_world(), &r), "MPI_Comm_rank", rank: nil, step: 0)
        Self.check(MPI_Comm_size(cmpi_comm_world(), &s), "MPI_Comm_size", rank: Int(r), step: 0)
        rank = Int(r); size = Int(s)
        handle = cmpi_comm_world()
        origin = nil
        allowsConcurrentCalls = provided >= Int32(MPI_THREAD_MULTIPLE)
        check(MPI_Comm_set_errhandler(handle, cmpi_errors_return()), "MPI_Comm_set_errhandler")
    }

    private init(duplicating other: Communicator) {
        var copy: MPI_Comm? = nil
        other.check(MPI_Comm_dup(other.handle, &copy), "MPI_Comm_dup")
        handle = copy; rank = other.rank; size = other.size; allowsConcurrentCalls = other.allowsConcurrentCalls
        origin = other.origin ?? other
        // A duplicate inherits the handler; set it anyway, so the rule does not rest on that.
        check(MPI_Comm_set_errhandler(handle, cmpi_errors_return()), "MPI_Comm_set_errhandler")
    }

    // MARK: - Checking return codes

    /// Ends the job if `code` is not MPI_SUCCESS. Inlined compare on the hot path; nothing is built
    /// unless a call failed.
    @inline(__always) private func check(_ code: Int32, _ call: StaticString) {
        if code != MPI_SUCCESS { Self.fail(code, call, rank: rank, step: (origin ?? self).step) }
    }

    @inline(__always) private static func check(_ code: Int32, _ call: StaticString, rank: Int?, step: Int) {
        if code != MPI_SUCCESS { fail(code, call, rank: rank, step: step) }
    }

    /// Prints which call failed where, then ends every rank (MPI_Abort), or this process when MPI never
    /// came up or is already finalized.
    @inline(never) private static func fail(_ code: Int32, _ call: StaticString, rank: Int?, step: Int) -> Never {
        let message = failureMessage(call: "\(call)", rank: rank, step: step, reason: errorString(code))
        FileHandle.standardError.write(Data((message + "\n").utf8))
        var initialized: Int32 = 0, finalized: Int32 = 0
        MPI_Initialized(&initialized)
        MPI_Finalized(&finalized)
        if initialized != 0 && finalized == 0 { MPI_Abort(cmpi_comm_world(), 1) }
        exit(1)
    }

    /// `disttrain: rank R: MPI_Allreduce failed at step S: <MPI's text>` (as llm.c's mpiCheck).
    static func failureMessage(call: String, rank: Int?, step: Int, reason: String) -> String {
        let who = rank.map { "rank \($0): " } ?? ""
        let when = step > 0 ? "at step \(step)" : "before the first step"
        return "disttrain: \(who)\(call) failed \(when): \(reason)"
    }

    /// MPI's text for an error code (with the code, should MPI not know it).
    static func errorString(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &text, &length) == MPI_SUCCESS, length > 0 else { return "MPI error code \(code)" }
        return String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
        if let shared { check(MPI_Finalize(), "MPI_Finalize", rank: shared.rank, step: shared.step) }
    }

    /// Ends every rank of the job at once with `code` (used when one rank fails and the others may be
    /// blocked in a collective).
    func abort(code: Int32) -> Never {
        MPI_Abort(cmpi_comm_world(), code)
        exit(code)
    }

    func barrier() { check(MPI_Barrier(handle), "MPI_Barrier") }

    /// In-place sum over ranks.
    func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        check(MPI_Allreduce(cmpi_in_place(), p, Int32(count), cmpi_float(), cmpi_op_sum(), handle), "MPI_Allreduce")
    }

    func allreduceSum(_ p: UnsafeMutablePointer<Double>, count: Int) {
        guard size > 1 else { return }
        let faulty = invalidAllreduceAtStep != 0 && step == invalidAllreduceAtStep && rank == size - 1
        check(MPI_Allreduce(cmpi_in_place(), p, faulty ? -1 : Int32(count), cmpi_double(), cmpi_op_sum(), handle), "MPI_Allreduce")
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
        check(MPI_Allreduce(cmpi_in_place(), &v, 1, cmpi_double(), cmpi_op_max(), handle), "MPI_Allreduce")
        return v
    }

    /// Starts an in-place sum of `count` floats; complete it with `wait` (or poll with `test`).
    func startAllreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) -> MPI_Request? {
        var request: MPI_Request? = cmpi_request_null()
        check(MPI_Iallreduce(cmpi_in_place(), p, Int32(count), cmpi_float(), cmpi_op_sum(), handle, &request), "MPI_Iallreduce")
        return request
    }

    /// Lets outstanding nonblocking operations progress (Open MPI moves them only inside MPI calls);
    /// true when all of them have completed.
    func test(_ requests: inout [MPI_Request?]) -> Bool {
        guard !requests.isEmpty else { return true }
        var done: Int32 = 0
        check(MPI_Testall(Int32(requests.count), &requests, &done, cmpi_statuses_ignore()), "MPI_Testall")
        return done != 0
    }

    func waitAll(_ requests: inout [MPI_Request?]) {
        guard !requests.isEmpty else { return }
        check(MPI_Waitall(Int32(requests.count), &requests, cmpi_statuses_ignore()), "MPI_Waitall")
    }

    /// Rank `root`'s bytes, on every rank.
    func broadcast(_ bytes: [UInt8], root: Int = 0) -> [UInt8] {
        guard size > 1 else { return bytes }
        var count = Int64(bytes.count)
        check(MPI_Bcast(&count, 1, cmpi_int64(), Int32(root), handle), "MPI_Bcast")
        var data = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        data.withUnsafeMutableBytes { check(MPI_Bcast($0.baseAddress, Int32(count), cmpi_byte(), Int32(root), handle), "MPI_Bcast") }
        return data
    }

    /// Each rank's `values` (the same count everywhere), concatenated in rank order on rank 0 (empty elsewhere).
    func gather(_ values: [Int64]) -> [Int64] {
        var result = [Int64](repeating: 0, count: rank == 0 ? values.count * size : 0)
        values.withUnsafeBufferPointer { send in
            result.withUnsafeMutableBufferPointer { receive in
                check(MPI_Gather(send.baseAddress, Int32(values.count), cmpi_int64(),
                                 receive.baseAddress, Int32(values.count), cmpi_int64(), 0, handle), "MPI_Gather")
            }
        }
        return result
    }

    /// Rank r's `count` floats land at out + r·count on rank 0.
    func gather(_ p: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>?) {
        guard size > 1 else { out?.update(from: p, count: count); return }
        check(MPI_Gather(p, Int32(count), cmpi_float(), out, Int32(count), cmpi_float(), 0, handle), "MPI_Gather")
    }
}
