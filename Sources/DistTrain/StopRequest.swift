import Foundation

/// SIGUSR1, SIGTERM and SIGINT (what SLURM sends before a time limit or preemption, and Ctrl-C) ask the
/// run to stop: the handler only records the signal; at the next step boundary every rank learns of it
/// through the step's allreduce, rank 0 writes a checkpoint and all ranks exit with `exitStatus`.
/// Further signals while that happens change nothing, so a checkpoint is never cut short by one.
enum StopRequest {
    /// Exit status meaning "checkpointed on request; resubmit with --resume" (EX_TEMPFAIL).
    static let exitStatus: Int32 = 75

    /// The first stop signal received, 0 while none. Written only by the handler.
    nonisolated(unsafe) static var signalNumber: Int32 = 0

    static func install() {
        // why: a launcher may start us with these signals blocked (the mask is inherited); unblock them
        // or a scheduler's warning would stay pending until the job is killed.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for signal in [SIGUSR1, SIGTERM, SIGINT] { sigaddset(&unblock, signal) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        for signal in [SIGUSR1, SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { received in
                if StopRequest.signalNumber == 0 { StopRequest.signalNumber = received }
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)
        }
    }

    static var requested: Bool { signalNumber != 0 }

    static var signalName: String {
        switch signalNumber {
        case SIGUSR1: "SIGUSR1"
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        default: "signal \(signalNumber)"
        }
    }
}
