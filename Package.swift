// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "disttrain",
    platforms: [.macOS(.v13)],
    products: [.executable(name: "disttrain", targets: ["DistTrain"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries, reached through pkg-config where they have it (see scripts/setup.sh for the apt packages).
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // why no pkgConfig: not every Debian 12 libgif-dev ships a .pc file; header and library are on the default paths.
        .systemLibrary(name: "CGIF", providers: [.apt(["libgif-dev"])]),

        .target(name: "Tensor", dependencies: ["COpenBLAS"]),
        .target(name: "Models", dependencies: ["Tensor"]),
        .target(name: "IO", dependencies: ["CHDF5", "CPNG", "CZlib", "CGIF", "Tensor"]),
        // FID, KID and classifier-score statistics on feature vectors (the feature network is elsewhere).
        .target(name: "Evaluation", dependencies: ["Tensor", "COpenBLAS"]),
        .executableTarget(name: "DistTrain", dependencies: [
            "Tensor", "Models", "IO", "Evaluation", "CMPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Golden file access and test data shared by the kernel and model tests; XML and GIF read-back.
        .target(name: "TestSupport", dependencies: ["IO", "CGIF"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "IO", "TestSupport"], path: "Tests/TensorTests"),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Tensor", "IO", "TestSupport"], path: "Tests/ModelsTests"),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Tensor"], path: "Tests/EvaluationTests"),
        .testTarget(name: "IOTests", dependencies: ["IO", "CMPI", "CZlib", "Tensor", "TestSupport"], path: "Tests/IOTests"),
        // Runs the built `disttrain` binary as users do.
        .testTarget(name: "DistTrainTests", dependencies: ["IO", "TestSupport"], path: "Tests/DistTrainTests"),
    ]
)
