// How a checkpoint layout names a model's tensors, as data. Each model family declares one value per layout
// it reads (Hugging Face, GGUF) instead of a hand-written rename function, and loading is a lookup.

import AttendTensor

/// The names a checkpoint layout gives a module's tensors: whole-name renames first; otherwise the first
/// matching leading segment is replaced, then the first matching inner rule.
///
/// ```swift
/// let names = CheckpointNames(exact: ["embedding.weight": "token_embd.weight"],
///                             prefixes: [("layers.", "blk.")],
///                             rules: [("attention.query.", "attn_q.")])
/// names("layers.3.attention.query.weight")   // "blk.3.attn_q.weight"
/// ```
public struct CheckpointNames {
    public var exact: [String: String]
    public var prefixes: [(ours: String, theirs: String)]
    public var rules: [(ours: String, theirs: String)]

    public init(exact: [String: String] = [:], prefixes: [(String, String)] = [], rules: [(String, String)] = []) {
        self.exact = exact
        self.prefixes = prefixes.map { (ours: $0.0, theirs: $0.1) }
        self.rules = rules.map { (ours: $0.0, theirs: $0.1) }
    }

    /// The checkpoint's name for the tensor at path `ours`.
    public func callAsFunction(_ ours: String) -> String {
        if let e = exact[ours] { return e }
        var name = ours
        if let p = prefixes.first(where: { name.hasPrefix($0.ours) }) { name = p.theirs + name.dropFirst(p.ours.count) }
        if let r = rules.first(where: { name.contains($0.ours) }), let range = name.range(of: r.ours) {
            name.replaceSubrange(range, with: r.theirs)
        }
        return name
    }

    /// The same names under a parent path: `("bert.", "bert.")` maps `bert.X` to `bert.` + self(X).
    public func nested(under ours: String, as theirs: String) -> CheckpointNames {
        var n = CheckpointNames()
        n.exact = Dictionary(uniqueKeysWithValues: exact.map { (ours + $0.key, theirs + $0.value) })
        n.prefixes = prefixes.map { (ours: ours + $0.ours, theirs: theirs + $0.theirs) } + [(ours: ours, theirs: theirs)]
        n.rules = rules
        return n
    }

    /// `module`'s tensors picked out of `tensors` by their checkpoint names (by our paths), each checked
    /// against the module's shape; throws naming the file and the missing or misshapen tensor.
    public func select(for module: Module, from tensors: [String: Tensor], source: String,
                       transform: (String, Tensor) -> Tensor = { $1 }) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (ours, t) in module.namedTensors() {
            let theirs = self(ours)
            guard let found = tensors[theirs] else { throw AttendError("\(source): tensor '\(theirs)' is missing (for '\(ours)')") }
            let value = transform(ours, found)
            guard value.shape == t.shape else {
                throw AttendError("\(source): tensor '\(theirs)' has shape \(value.shape), but the configuration gives '\(ours)' the shape \(t.shape)")
            }
            out[ours] = value
        }
        return out
    }
}
