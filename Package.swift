// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: AttendTensor <- AttendNN, AttendTokenizers <- AttendLM <- AttendModels <- AttendCLI;
// AttendDatasets, AttendPlots and AttendEmbeddings sit beside them; AttendKnowledge (retrieval, SQLite) sits on AttendLM, AttendKnowledgePostgres (pgvector, SwiftNIO) on AttendKnowledge. Each floor is its own product, so a program that
// needs only tensors and word2vec builds neither the models nor the command line (nor, later, the server's HTTP stack,
// the database clients or MPI, which join as their own targets and products).
let package = Package(
    name: "Attend",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Attend", targets: ["AttendTensor", "AttendNN", "AttendDatasets", "AttendLM", "AttendModels", "AttendEmbeddings", "AttendTokenizers", "AttendPlots"]),
        .library(name: "AttendTensor", targets: ["AttendTensor"]),
        .library(name: "AttendNN", targets: ["AttendNN", "AttendTensor"]),
        .library(name: "AttendEmbeddings", targets: ["AttendEmbeddings", "AttendNN", "AttendTensor"]),
        .library(name: "AttendTokenizers", targets: ["AttendTokenizers"]),
        .library(name: "AttendLM", targets: ["AttendLM", "AttendTokenizers", "AttendTensor"]),
        .library(name: "AttendModels", targets: ["AttendModels", "AttendLM", "AttendNN", "AttendTokenizers", "AttendDatasets", "AttendVision", "AttendTensor"]),
        .library(name: "AttendKnowledge", targets: ["AttendKnowledge", "AttendLM", "AttendNN", "AttendTokenizers", "AttendTensor"]),
        .library(name: "AttendSafety", targets: ["AttendSafety", "AttendLM", "AttendTokenizers", "AttendTensor"]),
        .library(name: "AttendServer", targets: ["AttendServer", "AttendSafety", "AttendPlots", "AttendLM", "AttendTokenizers", "AttendTensor"]),
        .library(name: "AttendVision", targets: ["AttendVision", "AttendTensor"]),
        .library(name: "AttendDistributed", targets: ["AttendDistributed", "AttendNN", "AttendTensor"]),
        .library(name: "AttendKnowledgePostgres", targets: ["AttendKnowledgePostgres", "AttendKnowledge", "AttendLM", "AttendNN", "AttendTokenizers", "AttendTensor"]),
        .executable(name: "attend", targets: ["AttendCLI"]),
        // The fuzz targets of every file parser, for the libFuzzer driver in Fuzz/ (not part of "Attend").
        .library(name: "AttendFuzzing", targets: ["AttendFuzzing"]),
    ],
    // The heavy dependency trees and the system MPI are traits of the command line, all on by default. `swift build
    // --disable-default-traits` builds an attend without them (no `attend serve`, no postgres:// indexes, no mpirun)
    // in much less time: SwiftNIO, Hummingbird and two copies of BoringSSL are most of a fresh build. The README's
    // main job builds that way.
    traits: [
        .trait(name: "Server", description: "attend serve: the OpenAI-compatible HTTP server (Hummingbird, SwiftNIO)."),
        .trait(name: "PostgreSQL", description: "postgres:// indexes: PostgreSQL + pgvector through postgres-nio (SwiftNIO, BoringSSL)."),
        .trait(name: "MPI", description: "Data-parallel training under mpirun (Open MPI's libmpi, libopenmpi-dev)."),
        .default(enabledTraits: ["Server", "PostgreSQL", "MPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // Hand-written C kernels (GEMM micro-kernel, vector exp). They pick AVX2+FMA at run time through
        // per-function target attributes, so the default `swift build -c release` is fast without flags.
        .target(name: "CAttendKernels"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"]), .brew(["jpeg-turbo"])]),
        // Open MPI; its handles are macros, so Sources/CMPI/shim.h returns them from static inline functions.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"]), .brew(["open-mpi"])]),
        // libpng and libjpeg report errors by longjmp; these C wrappers keep the setjmp on the C side.
        .target(name: "CAttendImageCodecs", dependencies: ["CPNG", "CJPEG"]),
        .target(name: "AttendTensor", dependencies: ["CAttendKernels", "CZlib"]),
        // Images in and out (PNG, JPEG), resizing and image data sets: the only target that links the image codecs.
        .target(name: "AttendVision", dependencies: ["AttendTensor", "CAttendImageCodecs"]),
        .target(name: "AttendNN", dependencies: ["AttendTensor", "CAttendKernels"]),
        .target(name: "AttendDatasets", dependencies: ["AttendTensor"]),
        .target(name: "AttendTokenizers", dependencies: ["AttendTensor"]),
        // PNG output (loss curves) through zlib.
        .target(name: "AttendPlots", dependencies: ["AttendTensor", "CZlib"]),
        // The language-model interface, the KV cache, the generation engine and chat templates: what every decoder
        // family implements and every caller (CLI, server, trainers) drives.
        .target(name: "AttendLM", dependencies: ["AttendTensor", "AttendTokenizers", "CAttendKernels"]),
        // AttendVision (libpng, libjpeg) joins here for the models that take pictures (CLIP, the multimodal LM).
        .target(name: "AttendModels", dependencies: ["AttendNN", "AttendTensor", "AttendDatasets", "AttendTokenizers", "AttendLM", "AttendVision", "CAttendKernels"]),
        // word2vec, DeepWalk and node2vec: hand-written Hogwild trainers, not the autodiff engine.
        .target(name: "AttendEmbeddings", dependencies: ["AttendTensor", "AttendNN", "CAttendKernels"]),
        // Retrieval: the document store (SQLite in one file), exact and HNSW vector search, BM25, ingestion and
        // grounded answering. Only this target links SQLite.
        .target(name: "AttendKnowledge", dependencies: ["AttendTensor", "AttendNN", "AttendTokenizers", "AttendLM", "CAttendKernels", "CSQLite"]),
        // The same store on PostgreSQL + pgvector, through postgres-nio: the only target that links SwiftNIO's
        // database client.
        .target(name: "AttendKnowledgePostgres", dependencies: [
            "AttendKnowledge", "AttendTensor",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Data-parallel training on MPI: the only target that links libmpi.
        .target(name: "AttendDistributed", dependencies: ["AttendNN", "AttendTensor", "CMPI"]),
        // The safety stage: personal data and secrets, policy categories scored by embeddings, streamed hold-back.
        .target(name: "AttendSafety", dependencies: ["AttendLM", "AttendTokenizers", "AttendTensor"]),
        // The OpenAI-compatible HTTP server (Hummingbird): the only target that links the HTTP stack.
        .target(name: "AttendServer", dependencies: [
            "AttendLM", "AttendTensor", "AttendTokenizers", "AttendSafety", "AttendPlots",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // One entry per file parser for fuzzing (Fuzz/, scripts/fuzz.sh) and for replaying the inputs fuzzing found.
        .target(name: "AttendFuzzing", dependencies: [
            "AttendTensor", "AttendTokenizers", "AttendEmbeddings", "AttendDatasets", "AttendVision", "AttendNN", "AttendLM", "AttendModels", "AttendServer",
        ]),
        .executableTarget(
            name: "AttendCLI",
            dependencies: [
                "AttendTensor", "AttendNN", "AttendDatasets", "AttendLM", "AttendModels", "AttendEmbeddings", "AttendTokenizers", "AttendPlots", "AttendKnowledge", "AttendSafety", "AttendVision", "CAttendKernels",
                .target(name: "AttendKnowledgePostgres", condition: .when(traits: ["PostgreSQL"])),
                .target(name: "AttendServer", condition: .when(traits: ["Server"])),
                .target(name: "AttendDistributed", condition: .when(traits: ["MPI"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Helpers the test targets share (XCTest, so only test targets depend on it).
        .target(name: "AttendTestSupport", dependencies: ["AttendTensor"], path: "Tests/AttendTestSupport"),
        .testTarget(name: "AttendSafetyTests", dependencies: ["AttendSafety", "AttendModels", "AttendLM", "AttendTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendVisionTests", dependencies: ["AttendVision", "AttendModels", "AttendNN", "AttendTensor", "AttendTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendTensorTests", dependencies: ["AttendTensor", "CAttendKernels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendNNTests", dependencies: ["AttendNN", "AttendTensor", "AttendModels", "AttendTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendDatasetsTests", dependencies: ["AttendDatasets", "AttendTensor"]),
        .testTarget(name: "AttendPlotsTests", dependencies: ["AttendPlots"]),
        .testTarget(name: "AttendTokenizersTests", dependencies: ["AttendTokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendModelsTests", dependencies: ["AttendModels", "AttendLM", "AttendTokenizers", "AttendNN", "AttendTensor"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendKnowledgeTests", dependencies: ["AttendKnowledge", "AttendKnowledgePostgres", "AttendModels", "AttendLM", "AttendTensor", "CAttendKernels",
                                                              .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                                                              .product(name: "Logging", package: "swift-log")],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendEmbeddingsTests", dependencies: ["AttendEmbeddings", "AttendTensor"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AttendFuzzingTests", dependencies: ["AttendFuzzing"], exclude: ["Regressions"]),
    ],
    swiftLanguageModes: [.v5]
)
