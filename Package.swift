// swift-tools-version:6.0
import PackageDescription

// Dependencies point one way: AttendTensor <- AttendNN <- AttendModels; AttendDatasets sits beside them.
let package = Package(
    name: "Attend",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Attend", targets: ["AttendTensor", "AttendNN", "AttendDatasets", "AttendModels", "AttendEmbeddings", "AttendTokenizers", "AttendPlots"]),
        .executable(name: "attend", targets: ["AttendCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Hand-written C kernels (GEMM micro-kernel, vector exp). They pick AVX2+FMA at run time through
        // per-function target attributes, so the default `swift build -c release` is fast without flags.
        .target(name: "CAttendKernels"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .target(name: "AttendTensor", dependencies: ["CAttendKernels", "CZlib"]),
        .target(name: "AttendNN", dependencies: ["AttendTensor", "CAttendKernels"]),
        .target(name: "AttendDatasets", dependencies: ["AttendTensor"]),
        .target(name: "AttendTokenizers", dependencies: ["AttendTensor"]),
        // PNG output (loss curves) through zlib.
        .target(name: "AttendPlots", dependencies: ["AttendTensor", "CZlib"]),
        .target(name: "AttendModels", dependencies: ["AttendNN", "AttendTensor", "AttendDatasets", "AttendTokenizers", "CAttendKernels"]),
        // word2vec, DeepWalk and node2vec: hand-written Hogwild trainers, not the autodiff engine.
        .target(name: "AttendEmbeddings", dependencies: ["AttendTensor", "AttendNN", "CAttendKernels"]),
        .executableTarget(
            name: "AttendCLI",
            dependencies: [
                "AttendTensor", "AttendNN", "AttendDatasets", "AttendModels", "AttendEmbeddings", "AttendTokenizers", "AttendPlots", "CAttendKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "AttendTensorTests", dependencies: ["AttendTensor"]),
        .testTarget(name: "AttendNNTests", dependencies: ["AttendNN", "AttendTensor", "AttendModels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendDatasetsTests", dependencies: ["AttendDatasets", "AttendTensor"]),
        .testTarget(name: "AttendPlotsTests", dependencies: ["AttendPlots"]),
        .testTarget(name: "AttendTokenizersTests", dependencies: ["AttendTokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendModelsTests", dependencies: ["AttendModels", "AttendTokenizers", "AttendNN", "AttendTensor"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendEmbeddingsTests", dependencies: ["AttendEmbeddings", "AttendTensor"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
