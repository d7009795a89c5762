// Module: the base of every layer and model. Parameters are found by reflection over stored properties,
// and their dotted paths (`layers.0.attention.query.weight`) are the names used in checkpoints.

import AttendTensor

/// A layer or model. Subclasses store `Tensor` parameters and child modules as properties; they are
/// discovered by reflection, so nothing needs registering.
///
/// ```swift
/// final class TwoLayer: Module {
///     let hidden = Linear(784, 128)
///     let output = Linear(128, 10)
///     func callAsFunction(_ x: Tensor) -> Tensor { output(hidden(x).relu()) }
/// }
/// TwoLayer().namedParameters().map(\.name)  // ["hidden.weight", "hidden.bias", "output.weight", "output.bias"]
/// ```
open class Module {
    /// Training mode (dropout active). Set it for a whole tree with `train()` / `eval()`.
    public internal(set) var isTraining = true

    public init() {}

    /// Every tensor property in this module tree with its dotted path, in declaration order.
    /// Includes frozen tensors (requiresGrad false); this is what a checkpoint holds.
    public func namedTensors() -> [(name: String, tensor: Tensor)] {
        var result: [(String, Tensor)] = []
        visit(prefix: "") { name, value in
            if let t = value as? Tensor { result.append((name, t)) }
        }
        return result
    }

    /// The tensors an optimizer updates: those with `requiresGrad`.
    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        namedTensors().filter { $0.tensor.requiresGrad }
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.tensor) }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// This module and all submodules, with dotted paths ("" for self).
    public func namedModules() -> [(name: String, module: Module)] {
        var result: [(String, Module)] = [("", self)]
        visit(prefix: "") { name, value in
            if let m = value as? Module { result.append((name, m)) }
        }
        return result
    }

    /// Switches the whole tree to training mode (or evaluation mode with `false`).
    public func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.isTraining = on }
    }

    public func eval() { train(false) }

    public func zeroGrad() {
        for p in parameters() { p.zeroGrad() }
    }

    /// Calls `body` for every tensor and module reachable from this one's stored properties.
    /// Arrays and optionals are walked; array elements are named by index.
    private func visit(prefix: String, _ body: (String, Any) -> Void) {
        var mirror: Mirror? = Mirror(reflecting: self)
        var children: [(String, Any)] = []
        while let m = mirror {
            // Superclass properties first, so a subclass's names follow its parent's.
            children.insert(contentsOf: m.children.compactMap { c in c.label.map { ($0, c.value) } }, at: 0)
            mirror = m.superclassMirror
        }
        for (label, value) in children where label != "isTraining" {
            Module.walk(value, name: prefix + label, body)
        }
    }

    private static func walk(_ value: Any, name: String, _ body: (String, Any) -> Void) {
        if let t = value as? Tensor {
            body(name, t)
        } else if let m = value as? Module {
            body(name, m)
            m.visit(prefix: name + ".", body)
        } else {
            let mirror = Mirror(reflecting: value)
            switch mirror.displayStyle {
            case .collection?:
                for (i, element) in mirror.children.enumerated() { walk(element.value, name: "\(name).\(i)", body) }
            case .optional?:
                if let some = mirror.children.first { walk(some.value, name: name, body) }
            default:
                break
            }
        }
    }
}

/// A module that maps one tensor to one tensor; what `Sequential` chains.
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}
