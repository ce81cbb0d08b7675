import Foundation

/// Runs the `disttrain` executable ($DISTTRAIN_BINARY, else the one built beside the tests) as users
/// do, alone or under `mpirun -np N`, with a time limit so that a hang fails the test instead of CI.
struct BinaryRunner {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        let timedOut: Bool
    }

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["DISTTRAIN_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("disttrain").path,
                          root.appendingPathComponent(".build/debug/disttrain").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    static let mpiEnvironment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                 "OMPI_MCA_rmaps_base_oversubscribe": "1", "HDF5_USE_FILE_LOCKING": "FALSE",
                                 "OPENBLAS_NUM_THREADS": "1"]

    static func run(_ arguments: [String], in directory: String? = nil, timeout: Double = 300,
                    environment extra: [String: String] = [:]) throws -> Result {
        try execute(binary, arguments, directory: directory, timeout: timeout, extra: extra)
    }

    static func mpirun(_ ranks: Int, _ arguments: [String], in directory: String? = nil, timeout: Double = 300) throws -> Result {
        try execute("/usr/bin/mpirun", ["-np", String(ranks), binary] + arguments, directory: directory, timeout: timeout)
    }

    private static func execute(_ executable: String, _ arguments: [String], directory: String?, timeout: Double,
                                extra: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in mpiEnvironment.merging(extra, uniquingKeysWith: { $1 }) { environment[k] = v }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out; process.standardError = err
        // One reader thread per pipe, each reading until end of file: a readabilityHandler could still
        // be appending a chunk it had read after this function returned (an error line went missing).
        let outData = LockedData(), errData = LockedData()
        let readers = DispatchGroup()
        for (pipe, data) in [(out, outData), (err, errData)] {
            readers.enter()
            Thread.detachNewThread {
                while case let chunk = pipe.fileHandleForReading.availableData, !chunk.isEmpty { data.append(chunk) }
                readers.leave()
            }
        }
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        try process.run()
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
        }
        // A stray grandchild may hold a pipe open after a timeout; do not wait for it forever.
        _ = readers.wait(timeout: .now() + 15)
        return Result(status: process.terminationStatus, stdout: outData.string, stderr: errData.string, timedOut: timedOut)
    }

    /// Process ids of running `disttrain` processes whose command line contains `fragment`.
    static func pids(matching fragment: String) throws -> [Int32] {
        var found: [Int32] = []
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let command = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            if command.hasPrefix(binary) && command.contains(fragment) { found.append(pid) }
        }
        return found.sorted()
    }

    /// A fresh empty directory for one test.
    static func temporaryDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "disttrain-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

private final class LockedData: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    func append(_ more: Data) { lock.lock(); data.append(more); lock.unlock() }
    var string: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
