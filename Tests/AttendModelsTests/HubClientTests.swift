@testable import AttendModels
import AttendLM
import Foundation
import XCTest

/// Downloads from a local HTTP server (python3 -m http.server) laid out like the hub's resolve URLs.
final class HubClientTests: XCTestCase {
    func testDownloadsIntoTheHubCacheLayoutAndSkipsMissingOptionalFiles() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hub-\(ProcessInfo.processInfo.processIdentifier)")
        defer { try? FileManager.default.removeItem(at: root) }
        let served = root.appendingPathComponent("www/org/tiny/resolve/main")
        try FileManager.default.createDirectory(at: served.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        try Data(#"{"hidden_size": 4}"#.utf8).write(to: served.appendingPathComponent("config.json"))
        let weights = Data((0..<100_000).map { UInt8($0 % 251) })
        try weights.write(to: served.appendingPathComponent("model.safetensors"))
        try Data("{}".utf8).write(to: served.appendingPathComponent("1_Pooling/config.json"))

        let port = 18_000 + Int(ProcessInfo.processInfo.processIdentifier % 2000)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", root.appendingPathComponent("www").path]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        do { try server.run() } catch { throw XCTSkip("python3 is not available to serve files") }
        defer { server.terminate() }
        let hub = HubClient(endpoint: "http://127.0.0.1:\(port)", cacheRoot: root.appendingPathComponent("cache").path)
        // Wait for the server to listen.
        var folder: String?
        for _ in 0..<50 {
            if let f = try? hub.download(repo: "org/tiny", files: HubClient.modelFiles) { folder = f; break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let path = try XCTUnwrap(folder)
        XCTAssertEqual(path, root.appendingPathComponent("cache/models--org--tiny/snapshots/main").path)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path + "/model.safetensors")), weights)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/1_Pooling/config.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + "/vocab.txt"), "optional and missing on the server")
        XCTAssertEqual(hub.cachedSnapshot(repo: "org/tiny"), path)
        XCTAssertThrowsError(try hub.download(repo: "org/absent", files: HubClient.modelFiles)) {
            XCTAssertTrue("\($0)".contains("not found"), "\($0)")
        }
    }
}
