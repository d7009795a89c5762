// JSON schema to grammar: the JSON a schema describes, written compactly (at most one space after ':' and ','),
// properties in the schema's order, so that constrained decoding produces text that parses and conforms.
// Supported: type (one or a list), properties / required / additionalProperties (only the listed properties are
// written), items / prefixItems-free arrays with minItems / maxItems, string minLength / maxLength and the date,
// date-time and time formats, enum, const, anyOf / oneOf, $ref into #/$defs or #/definitions. Keywords that would
// constrain values in ways the grammar cannot (pattern, allOf, not, if / then / else, ...) are refused by name
// rather than ignored.

import AttendTensor
import Foundation

public enum JSONSchemaGrammar {
    static let annotations: Set<String> = ["$schema", "$id", "$comment", "title", "description", "default", "examples", "$defs", "definitions",
                                           "readOnly", "writeOnly", "deprecated", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
    static let known: Set<String> = ["type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength",
                                     "maxLength", "format", "enum", "const", "anyOf", "oneOf", "$ref"]
    static let types: Set<String> = ["object", "array", "string", "number", "integer", "boolean", "null"]

    /// GBNF for the JSON that `schemaText` (a JSON schema) describes.
    ///
    /// ```swift
    /// let gbnf = try JSONSchemaGrammar.gbnf(schemaText: #"{"type": "object", "properties": {"year": {"type": "integer"}}, "required": ["year"]}"#)
    /// try Grammar(gbnf: gbnf).matches(#"{"year": 2023}"#)   // true
    /// ```
    public static func gbnf(schemaText: String) throws -> String {
        let schema: JSONValue
        do { schema = try JSONValue.parse(schemaText) } catch { throw AttendError("JSON schema: not valid JSON (\(error))") }
        var compiler = Compiler(root: schema)
        let root = try compiler.rule(for: schema, path: "#")
        return (["root ::= \(root)"] + compiler.lines + Compiler.primitives).joined(separator: "\n")
    }

    struct Compiler {
        let root: JSONValue
        var lines: [String] = []
        var count = 0
        var refs: [String: String] = [:]

        static let primitives = [
            #"ws ::= " "?"#,
            #"char ::= [^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})"#,
            #"string ::= "\"" char* "\"""#,
            #"integer ::= "-"? ("0" | [1-9] [0-9]{0,15})"#,
            #"number ::= integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?"#,
            #"boolean ::= "true" | "false""#,
            #"null ::= "null""#,
            #"value ::= object | array | string | number | boolean | null"#,
            #"object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}""#,
            #"array ::= "[" ws ( value ( "," ws value )* )? "]""#,
        ]

        mutating func define(_ body: String) -> String {
            count += 1
            let name = "s\(count)"
            lines.append("\(name) ::= \(body)")
            return name
        }

        /// A GBNF literal for exact text: GBNF reads JSON's string escapes, so JSON's quoting serves.
        static func literal(_ text: String) -> String { JSONValue.quote(text) }

        func fail(_ path: String, _ what: String) -> AttendError { AttendError("JSON schema at \(path): \(what)") }

        func integer(_ v: JSONValue?, _ path: String, _ key: String) throws -> Int? {
            guard let v else { return nil }
            guard let n = v.numberValue, n >= 0, n == n.rounded(), n <= 1_000_000 else { throw fail(path, "\(key) must be a non-negative integer, got \(v)") }
            return Int(n)
        }

        /// The rule (or inline expression) for the values `schema` allows.
        mutating func rule(for schema: JSONValue, path: String) throws -> String {
            if case .bool(let b) = schema {
                guard b else { throw fail(path, "the schema false allows no value") }
                return "value"
            }
            guard let members = schema.objectValue else { throw fail(path, "a schema must be an object or a boolean, got \(schema)") }
            for (key, _) in members where !JSONSchemaGrammar.known.contains(key) && !JSONSchemaGrammar.annotations.contains(key) {
                throw fail(path, "the keyword '\(key)' is not supported (supported: \(JSONSchemaGrammar.known.sorted().joined(separator: ", ")))")
            }
            if let ref = schema["$ref"] {
                guard let r = ref.stringValue else { throw fail(path, "$ref must be a string") }
                return try reference(r, path: path)
            }
            if let c = schema["const"] { return Compiler.literal(c.description) }
            if let e = schema["enum"] {
                guard let values = e.arrayValue, !values.isEmpty else { throw fail(path, "enum must be a non-empty array") }
                return "(" + values.map { Compiler.literal($0.description) }.joined(separator: " | ") + ")"
            }
            for key in ["anyOf", "oneOf"] {
                if let list = schema[key] {
                    guard let options = list.arrayValue, !options.isEmpty else { throw fail(path, "\(key) must be a non-empty array of schemas") }
                    var parts: [String] = []
                    for (i, option) in options.enumerated() { parts.append(try rule(for: option, path: "\(path)/\(key)/\(i)")) }
                    return define(parts.joined(separator: " | "))
                }
            }
            var typeNames: [String]
            switch schema["type"] {
            case nil:
                typeNames = schema["properties"] != nil ? ["object"] : schema["items"] != nil ? ["array"] : []
            case .string(let t)?: typeNames = [t]
            case .array(let list)?:
                typeNames = try list.map { guard let s = $0.stringValue else { throw fail(path, "type must be a string or a list of strings") }; return s }
            default: throw fail(path, "type must be a string or a list of strings")
            }
            if typeNames.isEmpty { return "value" }
            var parts: [String] = []
            for t in typeNames {
                guard JSONSchemaGrammar.types.contains(t) else { throw fail(path, "unknown type '\(t)' (expected one of \(JSONSchemaGrammar.types.sorted().joined(separator: ", ")))") }
                switch t {
                case "object": parts.append(try object(schema, path: path))
                case "array": parts.append(try array(schema, path: path))
                case "string": parts.append(try string(schema, path: path))
                default: parts.append(t)
                }
            }
            return parts.count == 1 ? parts[0] : define(parts.joined(separator: " | "))
        }

        mutating func reference(_ ref: String, path: String) throws -> String {
            if let name = refs[ref] { return name }
            let prefixes = ["#/$defs/", "#/definitions/"]
            guard let prefix = prefixes.first(where: ref.hasPrefix) else { throw fail(path, "$ref '\(ref)' must point into #/$defs/ or #/definitions/") }
            let key = String(ref.dropFirst(prefix.count)), container = prefix == "#/$defs/" ? "$defs" : "definitions"
            guard let target = root[container]?[key] else { throw fail(path, "$ref '\(ref)' names no definition") }
            // Named before it is compiled, so a definition may refer to itself.
            count += 1
            let name = "s\(count)"
            refs[ref] = name
            let body = try rule(for: target, path: ref)
            lines.append("\(name) ::= \(body)")
            return name
        }

        mutating func object(_ schema: JSONValue, path: String) throws -> String {
            guard let properties = schema["properties"] else {
                if case .bool(false)? = schema["additionalProperties"] { return #""{" ws "}""# }
                return "object"
            }
            guard let list = properties.objectValue else { throw fail(path, "properties must be an object") }
            var required = Set<String>()
            if let r = schema["required"] {
                guard let names = r.arrayValue?.compactMap(\.stringValue), names.count == r.arrayValue?.count else { throw fail(path, "required must be an array of strings") }
                for name in names where !list.contains(where: { $0.0 == name }) { throw fail(path, "required names '\(name)', which is not among the properties") }
                required = Set(names)
            }
            var pairs: [String] = []
            for (name, sub) in list { pairs.append("\(Compiler.literal(JSONValue.quote(name))) \":\" ws \(try rule(for: sub, path: "\(path)/properties/\(name)"))") }
            // first[i]: properties i... when none is written yet; rest[i]: when one is (so a comma comes first).
            let n = pairs.count
            var first = [String](repeating: "", count: n + 1), rest = [String](repeating: "", count: n + 1)
            first[n] = #""""#; rest[n] = #""""#
            for i in stride(from: n - 1, through: 0, by: -1) {
                let isRequired = required.contains(list[i].0)
                let restNext = rest[i + 1], firstNext = first[i + 1]
                rest[i] = define(isRequired ? "\",\" ws \(pairs[i]) \(restNext)" : "(\",\" ws \(pairs[i]))? \(restNext)")
                first[i] = define(isRequired ? "\(pairs[i]) \(restNext)" : "\(pairs[i]) \(restNext) | \(firstNext)")
            }
            return define("\"{\" ws \(first[0]) \"}\"")
        }

        mutating func array(_ schema: JSONValue, path: String) throws -> String {
            let item = try schema["items"].map { try rule(for: $0, path: "\(path)/items") } ?? "value"
            let low = try integer(schema["minItems"], path, "minItems") ?? 0
            let high = try integer(schema["maxItems"], path, "maxItems")
            if let high, high < low { throw fail(path, "maxItems \(high) is less than minItems \(low)") }
            guard low <= 1000, (high ?? 0) <= 1000 else { throw fail(path, "minItems and maxItems must be at most 1000") }
            if high == 0 { return #""[" ws "]""# }
            let more = high.map { "{\(max(low, 1) - 1),\($0 - 1)}" } ?? (low > 1 ? "{\(low - 1),}" : "*")
            let body = "\(item) (\",\" ws \(item))\(more)"
            return define(low == 0 ? "\"[\" ws (\(body))? \"]\"" : "\"[\" ws \(body) \"]\"")
        }

        mutating func string(_ schema: JSONValue, path: String) throws -> String {
            if let format = schema["format"]?.stringValue {
                let d2 = "[0-9]{2}", date = #"[0-9]{4} "-" [0-1] [0-9] "-" [0-3] [0-9]"#
                let time = #"[0-2] [0-9] ":" [0-5] [0-9] ":" [0-6] [0-9] ("." [0-9]{1,9})? ("Z" | [+-] "# + d2 + #" ":" "# + d2 + ")?"
                switch format {
                case "date": return define(#""\"" "# + date + #" "\"""#)
                case "time": return define(#""\"" "# + time + #" "\"""#)
                case "date-time": return define(#""\"" "# + date + #" "T" "# + time + #" "\"""#)
                default: break   // other formats are annotations
                }
            }
            let low = try integer(schema["minLength"], path, "minLength"), high = try integer(schema["maxLength"], path, "maxLength")
            if low == nil && high == nil { return "string" }
            let l = low ?? 0
            if let high, high < l { throw fail(path, "maxLength \(high) is less than minLength \(l)") }
            guard l <= 1000, (high ?? 0) <= 1000 else { throw fail(path, "minLength and maxLength must be at most 1000 in a grammar") }
            return define(#""\"" char{"# + "\(l),\(high.map(String.init) ?? "")" + #"} "\"""#)
        }
    }
}
