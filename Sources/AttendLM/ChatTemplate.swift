// Chat templates: messages (role, content) to the prompt text a chat model was trained on.

import Foundation

/// Chat formatting. A full Jinja engine is not needed for the ChatML family: the template's own default
/// system message is kept, and messages are wrapped in <|im_start|>role ... <|im_end|>.
///
/// ```swift
/// let template = ChatTemplate(ggufTemplate: loaded.chatTemplate)
/// let prompt = template.render([("user", "Name three fruits.")])   // ends with "<|im_start|>assistant\n"
/// ```
public struct ChatTemplate {
    public let defaultSystem: String?

    public init(ggufTemplate: String?) {
        if let t = ggufTemplate, let r = t.range(of: "<|im_start|>system\n"), let end = t.range(of: "<|im_end|>", range: r.upperBound..<t.endIndex) {
            defaultSystem = String(t[r.upperBound..<end.lowerBound])
        } else {
            defaultSystem = nil
        }
    }

    /// The prompt text for `messages` (role, content), ending with the assistant's turn.
    public func render(_ messages: [(role: String, content: String)]) -> String {
        var out = ""
        if let system = defaultSystem, messages.first?.role != "system" { out += "<|im_start|>system\n\(system)<|im_end|>\n" }
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        return out + "<|im_start|>assistant\n"
    }
}
