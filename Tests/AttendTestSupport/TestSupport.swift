// What several test targets share: tensors compared with the worst difference named, and assets a test needs
// (skipped where they are missing, a failure under CI, where scripts/test.sh fetches every one).

import AttendTensor
import Foundation
import XCTest

/// Equal shapes, and values within `tolerance` (absolute), naming `what` and the largest difference.
public func assertClose(_ a: Tensor, _ b: Tensor, tolerance: Float = 1e-4, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shapes", file: file, line: line)
    let x = a.toArray(), y = b.toArray()
    var worst: Float = 0
    for i in 0..<min(x.count, y.count) { worst = max(worst, abs(x[i] - y[i])) }
    XCTAssertLessThanOrEqual(worst, tolerance, "\(what): max abs difference \(worst)", file: file, line: line)
}

/// The path of `relative` under .cache/assets, or a skip naming the fetch command (a failure when CI is set).
public func requireAsset(_ relative: String, fetch: String) throws -> String {
    let path = FileManager.default.currentDirectoryPath + "/.cache/assets/" + relative
    if FileManager.default.fileExists(atPath: path) { return path }
    let message = "\(path) is missing: run scripts/fetch-assets.sh \(fetch)"
    if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail(message); throw AttendError(message) }
    throw XCTSkip(message)
}
