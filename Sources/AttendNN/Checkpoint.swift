// Saving and loading module weights and whole training states as safetensors. Names are the modules'
// dotted parameter paths; optimizer slots are stored under "optimizer/" (a slash never occurs in a
// property path), and the step and any caller metadata go in the header's metadata.

import AttendTensor
import Foundation

extension Module {
    /// Saves every tensor of this module to a safetensors file, atomically.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        try Safetensors.write(namedTensors(), metadata: metadata, to: path)
    }

    /// Copies tensors from `tensors` into this module's tensors by name.
    /// - Parameter strict: when true, a name the module has but `tensors` lacks is an error.
    /// - Throws: naming `source` and the tensor for a missing name or a shape mismatch.
    public func load(_ tensors: [String: Tensor], source: String, strict: Bool = true) throws {
        for (name, t) in namedTensors() {
            guard let loaded = tensors[name] else {
                if strict { throw AttendError("\(source): tensor '\(name)' is missing (the checkpoint has \(tensors.count) tensors)") }
                continue
            }
            guard loaded.shape == t.shape else {
                throw AttendError("\(source): tensor '\(name)' has shape \(loaded.shape), the model expects \(t.shape)")
            }
            t.assign(loaded)
        }
    }

    /// Loads weights saved by `save(to:)` (or a training checkpoint).
    public func load(from path: String, strict: Bool = true) throws {
        try load(try Safetensors.read(path).tensors, source: path, strict: strict)
    }
}

/// A training checkpoint: model tensors, optimizer state, step, and metadata, in one safetensors file.
public enum TrainingCheckpoint {
    static let optimizerPrefix = "optimizer/"

    public static func save(model: Module, optimizer: Optimizer, to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["step"] = String(optimizer.step)
        meta["learning_rate"] = String(optimizer.learningRate)
        let tensors = model.namedTensors() + optimizer.stateTensors().map { (optimizerPrefix + $0.name, $0.tensor) }
        try Safetensors.write(tensors, metadata: meta, to: path)
    }

    /// Restores model and optimizer from `path`; returns the file's metadata.
    @discardableResult
    public static func load(model: Module, optimizer: Optimizer, from path: String) throws -> [String: String] {
        let file = try Safetensors.read(path)
        try model.load(file.tensors, source: path)
        var state: [String: Tensor] = [:]
        for (name, t) in file.tensors where name.hasPrefix(optimizerPrefix) {
            state[String(name.dropFirst(optimizerPrefix.count))] = t
        }
        try optimizer.loadState(from: state, source: path)
        guard let stepText = file.metadata["step"], let step = Int(stepText) else {
            throw AttendError("\(path): metadata 'step' is missing; this is not a training checkpoint")
        }
        optimizer.step = step
        if let lr = file.metadata["learning_rate"].flatMap(Float.init) { optimizer.learningRate = lr }
        return file.metadata
    }
}

extension Safetensors.File {
    /// Throws, naming `source` and the tensor, unless the file holds `name` with exactly `shape`. Loaders call it for
    /// the largest tensors a config in the file's metadata implies before building the model, so a config never makes
    /// a model allocate more than the file itself holds.
    /// The JSON config stored under metadata `key`, decoded with errors naming `source`, the key and the field;
    /// `writer` names the command that writes such files, for the message when the key is missing.
    public func config<T: Decodable>(_ type: T.Type, key: String, source: String, writer: String) throws -> T {
        guard let json = metadata[key] else { throw AttendError("\(source): metadata '\(key)' is missing; this is not a file written by \(writer)") }
        return try ConfigDecoding.decode(type, from: Data(json.utf8), source: source + " (\(key))")
    }

    public func requireTensor(_ name: String, shape: [Int], source: String) throws {
        guard let t = tensors[name] else { throw AttendError("\(source): tensor '\(name)' is missing, though the config implies it") }
        guard t.shape == shape else { throw AttendError("\(source): tensor '\(name)' has shape \(t.shape), the config implies \(shape)") }
    }
}
