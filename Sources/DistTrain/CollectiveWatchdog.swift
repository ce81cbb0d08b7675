import Foundation

/// Ends the job when a blocking collective does not complete in time, naming the operation and the
/// step, instead of letting every rank wait forever for one that hung (a stuck file system, a dead
/// node the launcher did not notice). A background thread checks once a second.
final class CollectiveWatchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var operation: String?
    private var step = 0
    private var started = 0.0
    private let timeout: Double
    private let rank: Int

    /// `timeout` seconds per collective; 0 turns the watchdog off.
    init(timeout: Double, rank: Int, onExpiry: @escaping @Sendable (String) -> Void) {
        self.timeout = timeout; self.rank = rank
        guard timeout > 0 else { return }
        let thread = Thread { [weak self] in
            while let self {
                Thread.sleep(forTimeInterval: min(1, self.timeout / 4))
                if let message = self.expired() { onExpiry(message) }
            }
        }
        thread.start()
    }

    /// Brackets a blocking collective.
    func guarding<T>(_ operation: String, step: Int, _ body: () throws -> T) rethrows -> T {
        guard timeout > 0 else { return try body() }
        lock.lock(); self.operation = operation; self.step = step; started = Date().timeIntervalSince1970; lock.unlock()
        defer { lock.lock(); self.operation = nil; lock.unlock() }
        return try body()
    }

    private func expired() -> String? {
        lock.lock(); defer { lock.unlock() }
        guard let operation, Date().timeIntervalSince1970 - started > timeout else { return nil }
        return "rank \(rank): \(operation) at step \(step) did not complete within \(Int(timeout)) s: another rank has stopped or hung; ending the job (raise --collective-timeout if steps or checkpoints are this slow)"
    }
}
