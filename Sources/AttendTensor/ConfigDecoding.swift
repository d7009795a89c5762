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
            let detail = (error as? AttendError)?.message ?? describe(error, data: data)
            throw AttendError("\(source): " + (kind.map { "not \($0) (\(detail))" } ?? detail))
        }
    }

    /// A one-line account of a decoding error: which key, what was expected. Foundation on Linux reports a
    /// fractional number for an integer key as "not valid JSON"; when `data` does parse, the keys holding
    /// fractional numbers where counts are expected are named instead.
    public static func describe(_ error: Error, data: Data? = nil) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let c)?: return "key '\(path(c.codingPath + [key]))' is missing"
        case .typeMismatch(let type, let c)?: return "key '\(path(c.codingPath))': expected \(type)"
        case .valueNotFound(let type, let c)?: return "key '\(path(c.codingPath))' is null; expected \(type)"
        case .dataCorrupted(let c)?:
            guard c.codingPath.isEmpty else { return "key '\(path(c.codingPath))': \(c.debugDescription)" }
            guard let data, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return "not valid JSON" }
            let fractional = object.compactMap { key, value -> String? in
                guard !(value is Bool), let n = value as? Double, n.rounded() != n else { return nil }
                return "key '\(key)': expected Int, found \(n)"
            }.sorted()
            return fractional.isEmpty ? "a value has a type other than expected" : fractional.joined(separator: "; ")
        default: return "\(error)"
        }
    }
}
