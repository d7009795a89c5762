// A client for the Hugging Face hub's file layout: downloads into the hub cache (models--ORG--NAME/snapshots/REV)
// and finds what is already there, so later runs and other tools work offline.

import AttendTensor
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Downloads model repositories from the Hugging Face hub (or a mirror: $HF_ENDPOINT) into the hub cache
/// layout (models--ORG--NAME/snapshots/REVISION), so later runs and other tools find them offline. Each file
/// is written under a temporary name and renamed only once its size matches the server's Content-Length:
/// an interrupted download never leaves a file that looks complete.
public struct HubClient {
    public var endpoint: String
    public var cacheRoot: String
    public var revision = "main"

    /// The files a BERT / sentence-transformers or Llama folder may have; only config.json is required.
    public static let modelFiles: [(name: String, required: Bool)] = [
        ("config.json", true), ("model.safetensors", false), ("tokenizer.json", false), ("tokenizer_config.json", false),
        ("vocab.txt", false), ("special_tokens_map.json", false), ("modules.json", false), ("sentence_bert_config.json", false),
        ("1_Pooling/config.json", false),
    ]

    public init(endpoint: String? = nil, cacheRoot: String? = nil) {
        let env = ProcessInfo.processInfo.environment
        self.endpoint = endpoint ?? env["HF_ENDPOINT"] ?? "https://huggingface.co"
        self.cacheRoot = cacheRoot ?? env["HF_HUB_CACHE"] ?? env["HF_HOME"].map { $0 + "/hub" } ?? NSHomeDirectory() + "/.cache/huggingface/hub"
    }

    func snapshots(_ repo: String) -> String { cacheRoot + "/models--" + repo.replacingOccurrences(of: "/", with: "--") + "/snapshots" }

    /// The newest snapshot folder of `repo` already in the cache.
    public func cachedSnapshot(repo: String) -> String? {
        guard let last = try? FileManager.default.contentsOfDirectory(atPath: snapshots(repo)).sorted().last else { return nil }
        let path = snapshots(repo) + "/" + last
        return FileManager.default.fileExists(atPath: path + "/config.json") ? path : nil
    }

    /// Downloads `files` of `repo` (a missing optional file is skipped) and returns the snapshot folder.
    public func download(repo: String, files: [(name: String, required: Bool)]) throws -> String {
        guard ModelLocator.isHubRepoId(repo) else {
            throw AttendError("'\(repo)' is not a hub repo id (org/name of letters, digits, '-', '_', '.'; no '..')")
        }
        if let offline = ProcessInfo.processInfo.environment["HF_HUB_OFFLINE"], offline == "1" {
            throw AttendError("model '\(repo)' is not in the Hugging Face cache (\(snapshots(repo))) and HF_HUB_OFFLINE=1 forbids downloading it")
        }
        let folder = snapshots(repo) + "/" + revision
        var got = 0
        for file in files {
            let url = endpoint + "/" + repo + "/resolve/" + revision + "/" + file.name
            let destination = folder + "/" + file.name
            if FileManager.default.fileExists(atPath: destination) { got += 1; continue }
            switch try fetch(url, to: destination) {
            case .saved: got += 1
            case .notFound where !file.required: continue
            case .notFound: throw AttendError("\(url): not found (is '\(repo)' a model repository with \(file.name)?)")
            }
        }
        guard got > 0 else { throw AttendError("\(repo): nothing could be downloaded from \(endpoint)") }
        return folder
    }

    enum Outcome { case saved, notFound }

    /// GET `url` into `path` via a temporary file; 404 is `.notFound`, any other failure an error.
    func fetch(_ url: String, to path: String) throws -> Outcome {
        guard let u = URL(string: url) else { throw AttendError("\(url): not a valid URL") }
        let semaphore = DispatchSemaphore(value: 0)
        // Written by the completion handler before it signals, read after the wait.
        final class Box: @unchecked Sendable { var result: Result<Outcome, Error> = .failure(AttendError("no response")) }
        let box = Box()
        let partial = path + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        let task = URLSession.shared.downloadTask(with: u) { temp, response, error in
            defer { semaphore.signal() }
            if let error { box.result = .failure(AttendError("\(url): download failed (\(error.localizedDescription))")); return }
            guard let http = response as? HTTPURLResponse, let temp else { box.result = .failure(AttendError("\(url): no HTTP response")); return }
            if http.statusCode == 404 { box.result = .success(.notFound); return }
            guard http.statusCode == 200 else { box.result = .failure(AttendError("\(url): HTTP \(http.statusCode)")); return }
            do {
                let size = (try FileManager.default.attributesOfItem(atPath: temp.path)[.size] as? NSNumber)?.int64Value ?? -1
                if http.expectedContentLength >= 0 && size != http.expectedContentLength {
                    throw AttendError("\(url): got \(size) of \(http.expectedContentLength) bytes (the download was cut off)")
                }
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try? FileManager.default.removeItem(atPath: partial)
                try FileManager.default.moveItem(atPath: temp.path, toPath: partial)
                try FileManager.default.moveItem(atPath: partial, toPath: path)  // a rename within the folder: atomic
                box.result = .success(.saved)
            } catch {
                try? FileManager.default.removeItem(atPath: partial)
                box.result = .failure(error)
            }
        }
        task.resume()
        semaphore.wait()
        return try box.result.get()
    }
}
