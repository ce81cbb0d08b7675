import Models

/// The training step's view of the MPI job: gradient buckets summed by the `GradientAllreducer`
/// while backward runs, the step's few scalars summed by a blocking allreduce, each wait bracketed by
/// the watchdog (named, with the step, if it never returns).
final class MPIRankGroup: RankGroup {
    let communicator: Communicator
    let allreducer: GradientAllreducer
    let watchdog: CollectiveWatchdog?
    init(communicator: Communicator, allreducer: GradientAllreducer, watchdog: CollectiveWatchdog?) {
        self.communicator = communicator; self.allreducer = allreducer; self.watchdog = watchdog
    }

    var worldSize: Int { communicator.size }
    func beginGradientSum() { allreducer.begin() }
    func gradientsFinal(from offset: Int) { allreducer.gradientsReady(from: offset) }

    func finishGradientSum() {
        guard let watchdog else { return allreducer.finish() }
        watchdog.guarding("the gradient allreduce", step: communicator.step) { allreducer.finish() }
    }

    func sum(_ values: UnsafeMutablePointer<Double>, count: Int) {
        guard let watchdog else { return communicator.allreduceSum(values, count: count) }
        watchdog.guarding("the loss allreduce", step: communicator.step) { communicator.allreduceSum(values, count: count) }
    }
}
