import Foundation
import Testing
import CMPI

/// The Open MPI bridge in a singleton run (no mpirun): a world of one.
/// why one test: MPI allows a single MPI_Init (and MPI_Finalize) per process.
@Suite struct MPIBridgeTests {
    @Test func singletonInitRankSizeAllreduceAndFinalize() {
        // The machine runs as root; Open MPI refuses that unless told otherwise. HDF5 file locks must not
        // be inherited by the helper process a singleton MPI_Init forks.
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1)
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1)
        setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1)
        var flag: Int32 = -1
        MPI_Initialized(&flag)
        #expect(flag == 0)
        #expect(MPI_Init(nil, nil) == MPI_SUCCESS)
        MPI_Initialized(&flag)
        #expect(flag == 1)

        var rank: Int32 = -1, size: Int32 = -1
        #expect(MPI_Comm_rank(cmpi_comm_world(), &rank) == MPI_SUCCESS)
        #expect(MPI_Comm_size(cmpi_comm_world(), &size) == MPI_SUCCESS)
        #expect(rank == 0)
        #expect(size == 1)

        // In-place sum over a world of one leaves the buffer as it was, bit for bit.
        let original: [Float] = [1.5, -2, 3.25, 0, -0.0, .greatestFiniteMagnitude, 1e-30]
        var buffer = original
        #expect(MPI_Allreduce(cmpi_in_place(), &buffer, Int32(buffer.count), cmpi_float(), cmpi_op_sum(), cmpi_comm_world()) == MPI_SUCCESS)
        #expect(buffer.map(\.bitPattern) == original.map(\.bitPattern))
        // Out of place, the result is the send buffer.
        var received = [Float](repeating: .nan, count: original.count)
        #expect(MPI_Allreduce(original, &received, Int32(original.count), cmpi_float(), cmpi_op_sum(), cmpi_comm_world()) == MPI_SUCCESS)
        #expect(received == original)
        var total = [Double](repeating: 0, count: 1)
        #expect(MPI_Allreduce([2.5], &total, 1, cmpi_double(), cmpi_op_sum(), cmpi_comm_world()) == MPI_SUCCESS)
        #expect(total == [2.5])

        #expect(MPI_Finalize() == MPI_SUCCESS)
        MPI_Finalized(&flag)
        #expect(flag == 1)
    }
}
