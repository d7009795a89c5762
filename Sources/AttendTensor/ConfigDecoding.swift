// Decoding JSON configuration files (config.json, checkpoint metadata) into `Codable` types whose coding keys
// are the file's own names, with errors that name the file, the key and what was expected.

import Foundation

public enum ConfigDecoding {
    /// Decodes `type` from the JSON in `data`; throws naming `source`, the key path and the problem (and, with
    /// `kind`, what the file should have been: "not an OPT config (key 'ffn_dim' is missing)").
    ///
    /// ```swift
    /// let config = try ConfigDecoding.decode(LlamaConfig.self, from: data, source: "model/config.json")
    /// ```
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, source: String, kind: String? = nil) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            let detail = (error as? AttendError)?.message ?? describe(error)
            throw AttendError("\(source): " + (kind.map { "not \($0) (\(detail))" } ?? detail))
        }
    }

    /// A one-line account of a decoding error: which key, what was expected.
    public static func describe(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let c)?: return "key '\(path(c.codingPath + [key]))' is missing"
        case .typeMismatch(let type, let c)?: return "key '\(path(c.codingPath))': expected \(type)"
        case .valueNotFound(let type, let c)?: return "key '\(path(c.codingPath))' is null; expected \(type)"
        case .dataCorrupted(let c)?:
            return c.codingPath.isEmpty ? "not valid JSON" : "key '\(path(c.codingPath))': \(c.debugDescription)"
        default: return "\(error)"
        }
    }
}
