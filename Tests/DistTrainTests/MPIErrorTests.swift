import Foundation
import Testing

/// A failed MPI call names itself, the rank and the step, and ends every rank: a real MPI error (an
/// invalid count handed to the real MPI_Allreduce by the hidden `--mpi-fault-at`), real `mpirun`.
@Suite struct MPIErrorTests {
    @Test func failedAllreduceNamesCallRankAndStepAndEndsEveryRank() throws {
        let dir = try BinaryRunner.temporaryDirectory("mpi-error")
        let prepared = try BinaryRunner.run(["prepare", "--source", "two-moons", "--count", "512", "--seed", "1", "--out", "moons.h5"], in: dir)
        try #require(prepared.status == 0, "\(prepared.stderr)")
        let r = try BinaryRunner.mpirun(2, ["train", "--model", "mlp", "--data", "moons.h5", "--batch-size", "32", "--steps", "20",
                                            "--sample-count", "0", "--out", "run", "--mpi-fault-at", "3"], in: dir, timeout: 120)
        let shown = "status \(r.status)\n--- stderr:\n\(r.stderr)\n--- stdout:\n\(r.stdout)"
        #expect(!r.timedOut, "a rank hung after the MPI error\n\(shown)")
        #expect(r.status != 0, "\(shown)")
        // Our message, not Open MPI's fatal handler's: the communicators return errors.
        #expect(r.stderr.contains("disttrain: rank 1: MPI_Allreduce failed at step 3: MPI_ERR_COUNT"), "\(shown)")
        #expect(!r.stderr.contains("MPI_ERRORS_ARE_FATAL"), "\(shown)")
        #expect(!r.stdout.contains("step 3/20"), "step 3 completed despite the error\n\(shown)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/ckpt-00000020.h5"))
    }
}
