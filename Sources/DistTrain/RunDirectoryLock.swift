import Foundation

/// A run's claim on its output directory, for the run's lifetime: a write lock on `<out>/.disttrain.lock`,
/// held by rank 0 (the directory is rank 0's), with the holder's host, pid, start time and SLURM job
/// written into the file so that a refused run can name it.
///
/// Why an OFD byte-range lock (`F_OFD_SETLK`): the kernel drops it when the holder dies, however it
/// dies, so a killed job never blocks its own requeue and a stale lock file blocks nothing. Byte-range
/// locks also work across hosts on NFS (through lockd / NFSv4 locks; a crashed client's locks go when
/// its lease expires), where flock() is only emulated with them on Linux and stays host-local on some
/// other file systems. OFD rather than classic POSIX `F_SETLK`: a POSIX lock is dropped when the
/// process closes *any* descriptor of the file, an OFD lock only with its own descriptor. The lock is
/// non-blocking: a second run is refused at once instead of queueing behind the first.
final class RunDirectoryLock {
    static let fileName = ".disttrain.lock"
    let path: String
    /// Open for the whole run: closing it (or the process ending) releases the lock.
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) { self.path = path; self.descriptor = descriptor }

    // MARK: - For every rank (rank 0 decides, the others learn the outcome, all fail together)

    /// Before anything under `directory` is read or removed: rank 0 locks the lock file if the directory
    /// already has one (a directory without one has no run of ours to protect yet; creating the file
    /// here would leave a new file behind should the run then fail on bad input). Nothing is written.
    /// Returns the lock on rank 0 when it took one, nil elsewhere; throws on every rank when another
    /// run holds it. (Until `lockForWriting`, a few seconds, the file still names its previous holder.)
    static func lockExisting(in directory: String, communicator: Communicator) throws -> RunDirectoryLock? {
        try agree(communicator) { try attempt(directory, create: false) }
    }

    /// Once the run is about to write (the directory exists): rank 0 takes the lock unless `early`
    /// already holds it (creating the file), and writes who holds it. Returns the lock on rank 0.
    /// Refused here only when two runs started on a directory that did not exist yet; the loser may
    /// have created the bare directories, which the winner creates anyway.
    static func lockForWriting(in directory: String, holding early: RunDirectoryLock?, communicator: Communicator) throws -> RunDirectoryLock? {
        try agree(communicator) {
            guard let lock = try early ?? attempt(directory, create: true) else { return nil }
            try lock.writeHolder(Holder.current())
            return lock
        }
    }

    /// Runs `body` on rank 0 and hands its failure to every rank: rank 0 reports it, the others fail
    /// quietly (and are ended by rank 0's abort), so the user sees one message and no rank waits.
    private static func agree(_ communicator: Communicator, _ body: () throws -> RunDirectoryLock?) throws -> RunDirectoryLock? {
        var lock: RunDirectoryLock?, failure: Error?
        if communicator.isRoot {
            do { lock = try body() } catch { failure = error }
        }
        let message = communicator.broadcast(Array((failure.map { "\($0)" } ?? "").utf8))
        if let failure { throw failure }
        guard message.isEmpty else { throw QuietFailure() }
        return lock
    }

    // MARK: - The lock itself

    /// Locks `<directory>/.disttrain.lock`: nil when it does not exist and `create` is false; throws,
    /// naming the holder, when another open file description holds it.
    private static func attempt(_ directory: String, create: Bool) throws -> RunDirectoryLock? {
        let path = directory + "/" + fileName
        // why CLOEXEC: a child process that inherited the descriptor would keep the lock past our death.
        let descriptor = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
        guard descriptor >= 0 else {
            // No directory, or --out names a file: nothing to protect (makeDirectories reports the latter).
            if (errno == ENOENT || errno == ENOTDIR) && !create { return nil }
            throw RunFailure("cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = 0
        request.l_len = 0   // the whole file
        if fcntl(descriptor, openFileDescriptionSetLock, &request) == 0 {
            return RunDirectoryLock(path: path, descriptor: descriptor)
        }
        let reason = errno
        defer { close(descriptor) }
        guard reason == EAGAIN || reason == EACCES else {
            throw RunFailure("cannot lock \(path): \(String(cString: strerror(reason))) (the file system must support fcntl record locks)")
        }
        let holder = Holder(parsing: readAll(descriptor))
        throw RunFailure(Self.refusal(directory: directory, holder: holder))
    }

    /// The message a second run gets.
    static func refusal(directory: String, holder: Holder?) -> String {
        let who = holder.map { "(\($0))" } ?? "(its details are not written yet)"
        return "\(directory) is in use by another run \(who); wait for it to end or choose another --out"
    }

    /// Replaces the file's contents with `holder`; the lock stays as it was.
    private func writeHolder(_ holder: Holder) throws {
        let bytes = Array(holder.fileText.utf8)
        let written = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        guard written == bytes.count, ftruncate(descriptor, off_t(bytes.count)) == 0 else {
            throw RunFailure("cannot write the lock file \(path): \(String(cString: strerror(errno)))")
        }
        fsync(descriptor)   // so that a run on another host reads it (NFS)
    }

    private static func readAll(_ descriptor: Int32) -> String {
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        return String(decoding: bytes.prefix(max(count, 0)), as: UTF8.self)
    }

    /// Glibc declares F_OFD_SETLK only under _GNU_SOURCE, which Swift's Glibc module does not set;
    /// 37 is its value in Linux's ABI (asm-generic/fcntl.h).
    #if os(Linux)
    private static let openFileDescriptionSetLock: Int32 = 37
    #else
    private static let openFileDescriptionSetLock: Int32 = F_SETLK
    #endif

    // MARK: - Who holds it

    /// The holder's identity as written into the lock file, one `key=value` a line.
    struct Holder: CustomStringConvertible {
        var fields: [(key: String, value: String)]

        static func current() -> Holder {
            var host = [CChar](repeating: 0, count: 256)
            gethostname(&host, host.count - 1)
            var fields = [("host", String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)), ("pid", String(getpid())),
                          ("started", ISO8601DateFormatter().string(from: Date()))]
            let environment = ProcessInfo.processInfo.environment
            for key in ["SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"] {
                if let value = environment[key], !value.isEmpty { fields.append((key, value)) }
            }
            return Holder(fields: fields.map { (key: $0.0, value: $0.1) })
        }

        init(fields: [(key: String, value: String)]) { self.fields = fields }

        /// Nil for an empty file (the holder has not written it yet).
        init?(parsing text: String) {
            let pairs = text.split(separator: "\n").compactMap { line -> (key: String, value: String)? in
                let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { return nil }
                return (key: String(parts[0]), value: String(parts[1]))
            }
            guard !pairs.isEmpty else { return nil }
            fields = pairs
        }

        var fileText: String { fields.map { "\($0.key)=\($0.value)\n" }.joined() }

        subscript(key: String) -> String? { fields.first { $0.key == key }?.value }

        /// "host node12, pid 4711, SLURM job 123456, since 2026-12-01T10:00:00Z"
        var description: String {
            var parts: [String] = []
            if let host = self["host"] { parts.append("host \(host)") }
            if let pid = self["pid"] { parts.append("pid \(pid)") }
            if let job = self["SLURM_JOB_ID"] {
                if let array = self["SLURM_ARRAY_JOB_ID"], let task = self["SLURM_ARRAY_TASK_ID"] {
                    parts.append("SLURM job \(job) (array \(array)_\(task))")
                } else {
                    parts.append("SLURM job \(job)")
                }
            }
            if let started = self["started"] { parts.append("since \(started)") }
            return parts.joined(separator: ", ")
        }
    }
}
