import Foundation
import IO

/// PyTorch's reference values (Tests/Fixtures/kernels.h5, made by torch 2.13 CPU).
public enum Golden {
    public static let path: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/kernels.h5").path
    }()

    public static func open() throws -> HDF5File {
        setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1)
        return try HDF5File.open(path)
    }
}

/// Largest |a − b| / (|b| + floor) over two arrays: relative error with an absolute floor near zero.
public func maxRelativeError(_ a: [Float], _ b: [Float], floor: Float = 1e-3) -> Float {
    precondition(a.count == b.count, "lengths \(a.count) and \(b.count)")
    var worst: Float = 0
    for i in a.indices { worst = max(worst, abs(a[i] - b[i]) / (abs(b[i]) + floor)) }
    return worst
}
