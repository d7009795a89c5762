// libFuzzer's two entry points. The parser is chosen by the environment variable ATTEND_FUZZ_TARGET (one of
// FuzzTargets.names); libFuzzer's own `main` parses the command line (-runs, -max_len, -max_total_time, corpus
// folders) and calls `LLVMFuzzerTestOneInput` for every input.

import AttendFuzzing
import Foundation

/// The parser this process fuzzes, set once in `LLVMFuzzerInitialize` (before any input, on one thread).
private var target = ""

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let name = ProcessInfo.processInfo.environment["ATTEND_FUZZ_TARGET"], FuzzTargets.names.contains(name) else {
        var message = "set ATTEND_FUZZ_TARGET to one of:\n"
        for name in FuzzTargets.names { message += "  \(name): \(FuzzTargets.descriptions[name] ?? "")\n" }
        FileHandle.standardError.write(Data(message.utf8))
        exit(2)
    }
    target = name
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Data(bytes: $0, count: size) } ?? Data()
    FuzzTargets.run(target, bytes)
    return 0
}
