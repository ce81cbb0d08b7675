import Foundation

/// Runs `write` on a temporary name beside `path` (".<name>.partial"), then renames it to `path`: a
/// reader sees the old file or the complete new one, never a partial one. On any failure the temporary
/// file is removed and `path` left as it was.
public func replaceAtomically(_ path: String, _ write: (_ temporary: String) throws -> Void) throws {
    let directory = (path as NSString).deletingLastPathComponent
    let temporary = (directory.isEmpty ? "" : directory + "/") + "." + (path as NSString).lastPathComponent + ".partial"
    do {
        try write(temporary)
    } catch {
        unlink(temporary)
        throw error
    }
    guard rename(temporary, path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw IOError(path: path, "cannot rename \(temporary) to it: \(reason)")
    }
}
