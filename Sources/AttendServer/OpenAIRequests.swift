// OpenAI's request bodies, read field by field: every field's type and range is checked before use, and an error
// names the field (OpenAI's `param`), so a client learns what to fix.

import AttendLM
import AttendTensor
import Foundation

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with its HTTP status.
public struct APIError: Error, Sendable {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    public var json: [String: Any] {
        ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": code as Any? ?? NSNull()]]
    }
}

/// A JSON object from a request body, with typed, checked accessors.
struct RequestObject {
    let fields: [String: Any]
    /// The body as sent, for what must keep its key order (a JSON schema's properties are written in their order).
    let raw: Data

    init(body: Data) throws {
        guard !body.isEmpty else { throw APIError.invalid("the request body is empty; expected a JSON object") }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: body) } catch {
            throw APIError.invalid("the request body is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = parsed as? [String: Any] else { throw APIError.invalid("the request body must be a JSON object") }
        fields = object
        raw = body
    }

    func has(_ key: String) -> Bool { fields[key] != nil && !(fields[key] is NSNull) }

    func string(_ key: String) throws -> String? {
        guard has(key) else { return nil }
        guard let s = fields[key] as? String else { throw APIError.invalid("'\(key)' must be a string", param: key) }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard has(key) else { return nil }
        // JSON's true and false arrive as booleans (objCType "c"); 0 and 1 do not count.
        guard let n = fields[key] as? NSNumber, String(cString: n.objCType) == "c" else {
            throw APIError.invalid("'\(key)' must be true or false", param: key)
        }
        return n.boolValue
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard has(key) else { return nil }
        guard let n = fields[key] as? NSNumber, !(String(cString: n.objCType) == "c"), n.doubleValue.isFinite else {
            throw APIError.invalid("'\(key)' must be a number", param: key)
        }
        guard range.contains(n.doubleValue) else { throw APIError.invalid("'\(key)' must be in \(range.lowerBound)...\(range.upperBound), got \(n)", param: key) }
        return n.doubleValue
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let d = try number(key, in: Double(range.lowerBound)...Double(range.upperBound)) else { return nil }
        guard d == d.rounded() else { throw APIError.invalid("'\(key)' must be an integer, got \(d)", param: key) }
        // Double(Int.max) is 2^63, one past Int's range, so the range check above lets 2^63 through: a whole Double
        // converts only when exact, and an integer near Int's ends is taken from the JSON's own integer.
        let signed = (fields[key] as? NSNumber).flatMap { ["q", "l", "i", "s"].contains(String(cString: $0.objCType)) ? $0.intValue : nil }
        guard let value = signed ?? Int(exactly: d), range.contains(value) else {
            throw APIError.invalid("'\(key)' must be an integer in \(range.lowerBound)...\(range.upperBound), got \(fields[key].map { "\($0)" } ?? "nothing")", param: key)
        }
        return value
    }

    /// `stop`: a string or an array of up to 4 strings.
    func stops() throws -> [String] {
        guard has("stop") else { return [] }
        if let s = fields["stop"] as? String { return [s] }
        guard let list = fields["stop"] as? [Any], list.count <= 4, let strings = list as? [String] else {
            throw APIError.invalid("'stop' must be a string or an array of at most 4 strings", param: "stop")
        }
        return strings
    }

    /// The sampling fields shared by chat and text completions, checked against the model's context.
    func samplingOptions(contextLength: Int, promptTokens: Int) throws -> SamplingOptions {
        var o = SamplingOptions()
        if let n = try integer("n", in: 1...Int.max), n != 1 { throw APIError.invalid("'n' must be 1 (one choice per request)", param: "n") }
        let room = contextLength - promptTokens
        guard room > 0 else {
            throw APIError.invalid("the prompt has \(promptTokens) tokens; the model's context is \(contextLength)", param: "messages", code: "context_length_exceeded")
        }
        let key = has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens"
        if let m = try integer(key, in: 1...Int(Int32.max)) {
            guard m <= room else {
                throw APIError.invalid("'\(key)' is \(m), but only \(room) tokens are left in the model's context of \(contextLength) after the \(promptTokens)-token prompt",
                                       param: key, code: "context_length_exceeded")
            }
            o.maxTokens = m
        } else {
            o.maxTokens = min(room, 512)
        }
        o.temperature = Float(try number("temperature", in: 0...2) ?? 1)
        if let p = try number("top_p", in: 0...1) { guard p > 0 else { throw APIError.invalid("'top_p' must be more than 0", param: "top_p") }; o.topP = Float(p) }
        o.presencePenalty = Float(try number("presence_penalty", in: -2...2) ?? 0)
        o.frequencyPenalty = Float(try number("frequency_penalty", in: -2...2) ?? 0)
        if let seed = try integer("seed", in: Int(Int64.min)...Int(Int64.max)) { o.seed = UInt64(bitPattern: Int64(seed)) }
        o.stop = try stops()
        if let format = fields["response_format"] {
            guard let f = format as? [String: Any], let type = f["type"] as? String else {
                throw APIError.invalid("'response_format' must be an object with a 'type'", param: "response_format")
            }
            switch type {
            case "text": break
            case "json_object": o.constraint = .jsonSchema(#"{"type": "object"}"#)
            case "json_schema":
                guard let spec = f["json_schema"] as? [String: Any], spec["schema"] != nil,
                      let ordered = try? JSONValue.parse(String(decoding: raw, as: UTF8.self)),
                      let schema = ordered["response_format"]?["json_schema"]?["schema"] else {
                    throw APIError.invalid("'response_format.json_schema.schema' is missing", param: "response_format")
                }
                o.constraint = .jsonSchema(schema.description)
            default: throw APIError.invalid("'response_format.type' must be text, json_object or json_schema, got '\(type)'", param: "response_format")
            }
            // The schema is compiled here so that a bad one is the client's 400, not a failure mid-stream.
            if let c = o.constraint {
                do { _ = try c.compile() } catch { throw APIError.invalid("response_format: \(error)", param: "response_format") }
            }
        }
        return o
    }

    /// `logprobs` and `top_logprobs` (chat): nil when not asked for, else the number of alternatives per token.
    func logprobs(chat: Bool) throws -> Int? {
        guard chat else {
            if has("logprobs") { throw APIError.invalid("'logprobs' is supported on /v1/chat/completions, not on /v1/completions", param: "logprobs") }
            return nil
        }
        let wanted = try bool("logprobs") ?? false
        let top = try integer("top_logprobs", in: 0...20)
        if top != nil && !wanted { throw APIError.invalid("'top_logprobs' needs 'logprobs': true", param: "top_logprobs") }
        return wanted ? (top ?? 0) : nil
    }

    /// Chat messages: role and content (a string, or an array of text parts).
    func messages() throws -> [(role: String, content: String)] {
        guard let list = fields["messages"] as? [Any], !list.isEmpty else { throw APIError.invalid("'messages' must be a non-empty array", param: "messages") }
        return try list.enumerated().map { i, item in
            guard let m = item as? [String: Any], let role = m["role"] as? String else {
                throw APIError.invalid("messages[\(i)] must be an object with a 'role'", param: "messages[\(i)]")
            }
            guard ["system", "developer", "user", "assistant", "tool"].contains(role) else {
                throw APIError.invalid("messages[\(i)].role must be system, developer, user, assistant or tool, got '\(role)'", param: "messages[\(i)].role")
            }
            if let text = m["content"] as? String { return (role == "developer" ? "system" : role, text) }
            if let parts = m["content"] as? [Any] {
                var text = ""
                for (j, part) in parts.enumerated() {
                    guard let p = part as? [String: Any], let type = p["type"] as? String else {
                        throw APIError.invalid("messages[\(i)].content[\(j)] must be an object with a 'type'", param: "messages[\(i)].content")
                    }
                    guard type == "text", let t = p["text"] as? String else {
                        throw APIError.invalid("messages[\(i)].content[\(j)]: only text parts are supported by this model, got '\(type)'", param: "messages[\(i)].content")
                    }
                    text += t
                }
                return (role == "developer" ? "system" : role, text)
            }
            if m["content"] == nil || m["content"] is NSNull, role == "assistant" { return (role, "") }
            throw APIError.invalid("messages[\(i)].content must be a string or an array of text parts", param: "messages[\(i)].content")
        }
    }
}

/// The checks the server makes on a request body before any model runs, without a server: for fuzzing the request
/// reader and for tests. Throws the `APIError` the endpoint would answer with.
///
/// ```swift
/// try OpenAIRequests.check(body: Data(#"{"model": "m", "messages": [{"role": "user", "content": "Hi"}]}"#.utf8),
///                          endpoint: "/v1/chat/completions", contextLength: 2048, promptTokens: 10)
/// ```
public enum OpenAIRequests {
    public static let endpoints = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/moderations", "/v1/attention"]

    public static func check(body: Data, endpoint: String, contextLength: Int, promptTokens: Int, layerCount: Int = 2, headCount: Int = 2) throws {
        let request = try RequestObject(body: body)
        switch endpoint {
        case "/v1/chat/completions", "/v1/completions":
            let chat = endpoint == "/v1/chat/completions"
            _ = try request.string("model")
            if chat { _ = try request.messages() } else { _ = try request.string("prompt") }
            _ = try request.samplingOptions(contextLength: contextLength, promptTokens: promptTokens)
            _ = try request.logprobs(chat: chat)
        case "/v1/embeddings", "/v1/moderations":
            _ = try request.string("model")
            _ = try OpenAIServer.inputs(request, limit: endpoint == "/v1/embeddings" ? 2048 : 256)
            _ = try request.string("encoding_format")
        case "/v1/attention":
            _ = try request.messages()
            _ = try request.string("answer")
            _ = try request.integer("layer", in: -layerCount...(layerCount - 1))
            _ = try request.integer("head", in: 0...(headCount - 1))
        default:
            throw APIError(status: 404, message: "no endpoint \(endpoint)", type: "invalid_request_error")
        }
    }
}
