// swift-tools-version:6.0
import PackageDescription

// The libFuzzer driver for Attend's file parsers: one executable whose `LLVMFuzzerTestOneInput` feeds each input to
// the parser named by ATTEND_FUZZ_TARGET (see Sources/AttendFuzzing/FuzzTargets.swift in the main package).
// Built and run by scripts/fuzz.sh:
//   swift build --package-path Fuzz --scratch-path .cache/fuzz-build -c release --sanitize fuzzer --sanitize address
// A package of its own so that the main package never needs the sanitizer flags; unsafe flags are allowed here because
// this package is only ever the root.
let package = Package(
    name: "AttendFuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "Attend", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "AttendFuzz",
            dependencies: [.product(name: "AttendFuzzing", package: "Attend")],
            // libFuzzer provides `main`: the single source is compiled as a library-style module, with no top-level code.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ],
    swiftLanguageModes: [.v5]
)
