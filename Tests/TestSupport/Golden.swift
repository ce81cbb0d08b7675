import Foundation
import IO

/// PyTorch's reference values, made by torch 2.13 CPU with the generators in Tests/Fixtures/generate:
/// kernels.h5 (the kernels and the tiny U-Net, kernels.py) and zoo-kernels.h5 (the layer kinds of the
/// model zoo, zoo_kernels.py).
public enum Golden {
    /// The path of the fixture `name` in Tests/Fixtures.
    public static func path(of name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name).path
    }

    /// Tests/Fixtures/kernels.h5.
    public static let path: String = path(of: "kernels.h5")

    /// Opens the fixture `name` (kernels.h5 unless told).
    public static func open(_ name: String = "kernels.h5") throws -> HDF5File {
        setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1)
        return try HDF5File.open(path(of: name))
    }
}

/// Largest |a − b| / (|b| + floor) over two arrays: relative error with an absolute floor near zero.
public func maxRelativeError(_ a: [Float], _ b: [Float], floor: Float = 1e-3) -> Float {
    precondition(a.count == b.count, "lengths \(a.count) and \(b.count)")
    var worst: Float = 0
    for i in a.indices { worst = max(worst, abs(a[i] - b[i]) / (abs(b[i]) + floor)) }
    return worst
}
