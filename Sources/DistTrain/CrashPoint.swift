import Foundation

/// For the kill-and-resume tests: `--crash-at PHASE:STEP` makes rank 0 kill itself with SIGKILL at a
/// chosen moment, as a node failure or the scheduler's hard kill would. Phases: `step` (between
/// backward and the gradient allreduce of that step), `sampling` (while drawing the samples of that
/// step), `checkpoint` (half-way through writing that step's checkpoint file).
enum CrashPoint {
    nonisolated(unsafe) static var phase: String?
    nonisolated(unsafe) static var step = 0
    nonisolated(unsafe) static var armed = false

    static func configure(_ spec: String?, isRoot: Bool) {
        guard let spec, isRoot else { return }
        let parts = spec.split(separator: ":")
        guard parts.count == 2, let s = Int(parts[1]) else { return }
        phase = String(parts[0]); step = s; armed = true
    }

    static func check(_ phase: String, step: Int) {
        guard armed, phase == self.phase, step == self.step else { return }
        FileHandle.standardError.write(Data("disttrain: crash-at \(phase):\(step): killing rank 0\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
