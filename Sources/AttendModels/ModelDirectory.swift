// Finding a model folder: a local path, a Hugging Face hub cache snapshot (models--ORG--NAME), or a short
// name for a model that scripts/fetch-assets.sh installs into the asset cache.

import AttendTensor
import Foundation

public enum ModelDirectory {
    /// Short names of the models that scripts/fetch-assets.sh fetches by package name.
    public static let knownAssets = ["all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
                                     "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"]

    /// Where fetched assets live: $ATTEND_ASSETS, else .cache/assets under the current directory.
    public static var assetRoot: String {
        ProcessInfo.processInfo.environment["ATTEND_ASSETS"] ?? FileManager.default.currentDirectoryPath + "/.cache/assets"
    }

    public static func resolve(_ name: String) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory), isDirectory.boolValue { return name }
        if let asset = knownAssets[name] {
            let path = assetRoot + "/" + asset
            if FileManager.default.fileExists(atPath: path + "/config.json") { return path }
            throw AttendError("model '\(name)' is not in \(assetRoot); run scripts/fetch-assets.sh \(asset)")
        }
        if name.contains("/") && !name.hasPrefix("/") && !name.hasPrefix(".") {
            let hub = ProcessInfo.processInfo.environment["HF_HUB_CACHE"]
                ?? (ProcessInfo.processInfo.environment["HF_HOME"].map { $0 + "/hub" })
                ?? NSHomeDirectory() + "/.cache/huggingface/hub"
            let snapshots = hub + "/models--" + name.replacingOccurrences(of: "/", with: "--") + "/snapshots"
            if let first = try? FileManager.default.contentsOfDirectory(atPath: snapshots).sorted().last {
                return snapshots + "/" + first
            }
            throw AttendError("model '\(name)' is not a folder and not in the Hugging Face cache (\(snapshots)); this machine cannot download it")
        }
        throw AttendError("model '\(name)': no such folder (known short names: \(knownAssets.keys.sorted().joined(separator: ", ")))")
    }
}
