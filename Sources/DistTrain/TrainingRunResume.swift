import Foundation
import IO

/// What `train --resume` was asked: whether to resume at all, and which settings the command line
/// names explicitly. Without --data the run continues on the checkpoint's data; with --data on those
/// data, which must be the ones the checkpoint was trained on unless `allowOtherData`.
struct ResumeRequest {
    var enabled = false
    var requireCheckpoint = false
    var explicitData = false
    var explicitModel = false
    /// Size options given (--features, --channels, …): a checkpoint with other ones is refused.
    var explicitModelOptions = false
    var allowOtherData = false
}

/// How a resumed run's data relate to the checkpoint's.
enum DataContinuity {
    case same
    /// A version-1 checkpoint, which did not record its data.
    case unrecorded
    /// Other data, allowed by --allow-other-data: the data order restarts. The text says what differs.
    case other(String)
}

extension TrainingRun {
    /// The checkpoints in `directory` a resumed run may continue from, newest first, with sound
    /// metadata. A damaged or unreadable one is reported and skipped; a sound one of something else
    /// (`Checkpoint.Mismatch`) stops the run, since continuing or starting over would both be wrong.
    /// Every rank reads the same files, so every rank gets the same list.
    static func checkpointsToResume(in directory: String, resume: ResumeRequest, communicator: Communicator) throws -> [CheckpointReader] {
        let existing = Checkpoint.all(in: directory)
        guard resume.enabled else {
            // why: a fresh run here would write over another run's checkpoints.
            if let newest = existing.first {
                throw RunFailure("\(directory) already holds checkpoints (newest \(newest)): pass --resume to continue that run, or choose another --out")
            }
            return []
        }
        if communicator.isRoot { Checkpoint.removeLeftovers(in: directory) }
        var candidates: [CheckpointReader] = []
        for path in existing {
            do {
                candidates.append(try CheckpointReader(path))
            } catch let mismatch as Checkpoint.Mismatch {
                throw RunFailure("cannot --resume: \(mismatch)")
            } catch let damaged as Checkpoint.Damaged {
                if communicator.isRoot { resumeNote("skipping damaged \(damaged)") }
            } catch {
                if communicator.isRoot { resumeNote("skipping unreadable \(path): \(error)") }
            }
        }
        if candidates.isEmpty {
            if resume.requireCheckpoint { throw RunFailure("--require-checkpoint: no usable checkpoint in \(directory)") }
            if communicator.isRoot { resumeNote("--resume: no checkpoint in \(directory); starting fresh") }
        }
        return candidates
    }

    /// The configuration of a run resumed from `newest`: the checkpoint's, except the length of the run,
    /// the failure limits, and the data and model when the command line names them. On another number
    /// of ranks, the same global batch split anew (see README, "Resuming").
    static func resumedConfiguration(from newest: CheckpointReader, requested: TrainingConfiguration, resume: ResumeRequest,
                                     communicator: Communicator) throws -> TrainingConfiguration {
        let saved = newest.metadata.configuration
        var c = saved
        if requested.steps != 0 { c.steps = requested.steps }
        c.collectiveTimeout = requested.collectiveTimeout
        c.maxNonfiniteSteps = requested.maxNonfiniteSteps
        c.outputDirectory = requested.outputDirectory   // the directory resumed (and locked), even if it was moved
        if resume.explicitData { c.data = requested.data }
        if resume.explicitModel { c.model = requested.model }
        if resume.explicitModelOptions { c.modelOptions = saved.modelOptions.overridden(by: requested.modelOptions) }
        if saved.worldSize != communicator.size {
            let perStep = saved.globalBatch / saved.accumulation
            guard perStep % communicator.size == 0 else {
                throw RunFailure("\(newest.path): its global batch of \(saved.globalBatch) (\(saved.batchSize) per rank × \(saved.accumulation) accumulation × \(saved.worldSize) ranks) cannot be split over \(communicator.size) ranks; resume with a number of ranks that divides \(perStep)")
            }
            c.batchSize = perStep / communicator.size
            c.worldSize = communicator.size
            if communicator.isRoot {
                resumeNote("\(newest.path) was written by \(saved.worldSize) rank(s); continuing on \(communicator.size) with batch \(c.batchSize) per rank (same global batch \(c.globalBatch)); the data order and noise continue from new per-rank streams")
            }
        }
        return c
    }

    /// Whether the run may continue from `checkpoint` on the data `given`: refused (naming both and what
    /// differs) when they are not the data it was trained on, unless --allow-other-data.
    static func dataContinuity(of checkpoint: CheckpointReader, given: DatasetIdentity, resume: ResumeRequest) throws -> DataContinuity {
        guard let recorded = checkpoint.metadata.data else { return .unrecorded }
        let differences = recorded.differences(from: given)
        if differences.isEmpty { return .same }
        let what = differences.joined(separator: ", ")
        guard resume.allowOtherData else {
            let source = resume.explicitData ? "--data is" : "its data file now holds"
            throw RunFailure("cannot --resume: \(checkpoint.path) was trained on \(recorded), but \(source) \(given): \(what) differ. Resume with the checkpoint's data, or pass --allow-other-data to continue on these (every rank then starts a fresh epoch 0 of its new shard)")
        }
        return .other("\(checkpoint.path) was trained on \(recorded); continuing on \(given) (\(what) differ)")
    }
}

private func resumeNote(_ text: String) { print("disttrain: " + text) }
