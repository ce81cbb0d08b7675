import Foundation
import IO

/// The embedded default: Fashion-MNIST padded to 32×32 under data/, built from Debian's
/// dataset-fashion-mnist package on first use (by rank 0, while the others wait).
enum DefaultDataset {
    static let path = "data/fashion-mnist-32.h5"
    static let packageDirectory = "/usr/share/datasets/fashion-mnist"

    static func ensure(communicator: Communicator) throws -> String {
        if FileManager.default.fileExists(atPath: path) { return path }
        var failure = ""
        if communicator.isRoot {
            if FileManager.default.fileExists(atPath: packageDirectory + "/train-images-idx3-ubyte.gz") {
                print("disttrain: building \(path) from \(packageDirectory) (first use)")
                do { try prepareDefaultFashionMNIST(out: path) } catch { failure = "\(error)" }
            } else {
                failure = "no dataset: \(path) is missing and so is \(packageDirectory) — install it with `apt-get install dataset-fashion-mnist`, or pass --data FILE.h5 (see `disttrain prepare --help`)"
            }
        }
        // why: every rank must learn of rank 0's failure, or they would wait in the next collective.
        let message = String(decoding: communicator.broadcast(Array(failure.utf8)), as: UTF8.self)
        guard message.isEmpty else { throw RunFailure(message) }
        return path
    }
}
