// Personal data and secrets in text: e-mail addresses, phone numbers, payment card numbers (Luhn check and issuer
// prefixes), IBANs (the ISO 13616 length of each country and the mod-97 check), and credentials (PEM private keys,
// the token formats of the large providers, `password = ...` assignments). Hand-written scanners over Unicode
// scalars rather than regular expressions: one pass, no backtracking, offsets in code points (what Python's str
// indices count, so labelled sets made with Python compare directly).

/// What a span of personal data is.
public enum PersonalDataKind: String, CaseIterable, Sendable, Comparable {
    case email, phone, paymentCard = "payment_card", iban, secret

    /// What a redacted span becomes.
    public var placeholder: String {
        switch self {
        case .email: "[EMAIL]"
        case .phone: "[PHONE]"
        case .paymentCard: "[CARD]"
        case .iban: "[IBAN]"
        case .secret: "[SECRET]"
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// One span found: its kind and where it is, in Unicode scalars from the start of the text.
public struct PersonalDataMatch: Equatable, Sendable {
    public var kind: PersonalDataKind
    public var range: Range<Int>
    public init(kind: PersonalDataKind, range: Range<Int>) { (self.kind, self.range) = (kind, range) }
}

/// Finds personal data and secrets.
///
/// ```swift
/// let found = PersonalDataDetector().find(in: "Mail jane.doe@example.com or call +44 20 7946 0958.")
/// // [email 5..<25, phone 34..<50]
/// PersonalDataDetector().redact("card 4111 1111 1111 1111")   // "card [CARD]"
/// ```
public struct PersonalDataDetector: Sendable {
    public var kinds: Set<PersonalDataKind>

    public init(kinds: Set<PersonalDataKind> = Set(PersonalDataKind.allCases)) { self.kinds = kinds }

    /// The spans in `text`, in order, none overlapping. Secrets are looked for first, then e-mail addresses, IBANs,
    /// card numbers and phone numbers, each in what the earlier ones left.
    public func find(in text: String) -> [PersonalDataMatch] { find(scalars: text.unicodeScalars.map(\.value)) }

    /// `text` with every span found replaced by its kind's placeholder.
    public func redact(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        return Self.replace(scalars, find(scalars: scalars.map(\.value)))
    }

    static func replace(_ scalars: [Unicode.Scalar], _ matches: [PersonalDataMatch]) -> String {
        var out = String.UnicodeScalarView()
        var at = 0
        for m in matches {
            out.append(contentsOf: scalars[at..<m.range.lowerBound])
            out.append(contentsOf: m.kind.placeholder.unicodeScalars)
            at = m.range.upperBound
        }
        out.append(contentsOf: scalars[at...])
        return String(out)
    }

    func find(scalars s: [UInt32]) -> [PersonalDataMatch] {
        var found: [PersonalDataMatch] = []
        func free(_ r: Range<Int>) -> Bool { !found.contains { $0.range.overlaps(r) } }
        func add(_ kind: PersonalDataKind, _ r: Range<Int>) { if free(r) { found.append(PersonalDataMatch(kind: kind, range: r)) } }
        if kinds.contains(.secret) { for r in Self.secrets(s) { add(.secret, r) } }
        if kinds.contains(.email) { for r in Self.emails(s) { add(.email, r) } }
        if kinds.contains(.iban) { for r in Self.ibans(s) { add(.iban, r) } }
        if kinds.contains(.paymentCard) || kinds.contains(.phone) {
            for (kind, r) in Self.numbers(s) where kinds.contains(kind) { add(kind, r) }
        }
        return found.sorted { $0.range.lowerBound < $1.range.lowerBound }
    }

    // MARK: Characters

    @inline(__always) static func isDigit(_ c: UInt32) -> Bool { c >= 48 && c <= 57 }
    @inline(__always) static func isUpper(_ c: UInt32) -> Bool { c >= 65 && c <= 90 }
    @inline(__always) static func isLower(_ c: UInt32) -> Bool { c >= 97 && c <= 122 }
    @inline(__always) static func isAlnum(_ c: UInt32) -> Bool { isDigit(c) || isUpper(c) || isLower(c) }
    /// Letters and digits of any script: what must not touch a number or an address for it to be one.
    static func isWordScalar(_ c: UInt32) -> Bool {
        if c < 128 { return isAlnum(c) || c == 95 }
        guard let u = Unicode.Scalar(c) else { return false }
        return u.properties.isAlphabetic || u.properties.numericType != nil
    }
    static func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

    // MARK: E-mail

    static func emails(_ s: [UInt32]) -> [Range<Int>] {
        func isLocal(_ c: UInt32) -> Bool { isAlnum(c) || c == 46 || c == 95 || c == 37 || c == 43 || c == 45 }  // . _ % + -
        func isDomain(_ c: UInt32) -> Bool { isAlnum(c) || c == 46 || c == 45 }
        var out: [Range<Int>] = []
        for at in s.indices where s[at] == 64 {  // @
            var start = at
            while start > 0, isLocal(s[start - 1]) { start -= 1 }
            while start < at, s[start] == 46 { start += 1 }
            guard start < at, s[at - 1] != 46 else { continue }
            var end = at + 1
            while end < s.count, isDomain(s[end]) { end += 1 }
            while end > at + 1, s[end - 1] == 46 || s[end - 1] == 45 { end -= 1 }
            let labels = s[(at + 1)..<end].split(separator: 46, omittingEmptySubsequences: false)
            guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty && $0.first != 45 && $0.last != 45 }),
                  let tld = labels.last, tld.count >= 2, tld.allSatisfy({ isUpper($0) || isLower($0) }) else { continue }
            if let last = out.last, last.overlaps(start..<end) { continue }
            out.append(start..<end)
        }
        return out
    }

    // MARK: IBAN

    /// ISO 13616 IBAN lengths by country (SWIFT's registry).
    static let ibanLengths: [String: Int] = [
        "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29, "BY": 28,
        "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
        "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
        "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
        "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
        "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
        "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29,
        "VA": 22, "VG": 24, "XK": 20, "YE": 30,
    ]

    /// Whether the characters (upper-case letters and digits, no spaces) pass the mod-97 check.
    static func ibanChecks(_ chars: [UInt32]) -> Bool {
        var remainder = 0
        for c in chars[4...] + chars[..<4] {
            if isDigit(c) { remainder = (remainder * 10 + Int(c - 48)) % 97 } else { remainder = (remainder * 100 + Int(c - 55)) % 97 }
        }
        return remainder == 1
    }

    static func ibans(_ s: [UInt32]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var at = 0
        while at + 4 <= s.count {
            defer { at += 1 }
            guard isUpper(s[at]), isUpper(s[at + 1]), isDigit(s[at + 2]), isDigit(s[at + 3]), at == 0 || !isWordScalar(s[at - 1]),
                  let length = ibanLengths[String(decoding: [UInt8(s[at]), UInt8(s[at + 1])], as: UTF8.self)] else { continue }
            // The characters, in groups separated by single spaces (the printed form) or not at all.
            var chars: [UInt32] = [], end = at
            while chars.count < length, end < s.count {
                let c = s[end]
                if isDigit(c) || isUpper(c) || isLower(c) { chars.append(isLower(c) ? c - 32 : c); end += 1 }
                else if c == 32, end + 1 < s.count, isAlnum(s[end + 1]), end > at { end += 1 } else { break }
            }
            guard chars.count == length, end == s.count || !isWordScalar(s[end]), ibanChecks(chars) else { continue }
            out.append(at..<end)
            at = end - 1
        }
        return out
    }

    // MARK: Card and phone numbers

    static func luhn(_ digits: [UInt32]) -> Bool {
        var sum = 0
        for (i, c) in digits.reversed().enumerated() {
            var d = Int(c - 48)
            if i % 2 == 1 { d *= 2; if d > 9 { d -= 9 } }
            sum += d
        }
        return sum % 10 == 0
    }

    /// Issuer prefixes of the card schemes (Visa, Mastercard, American Express, Discover, JCB, Diners, UnionPay,
    /// Maestro): what separates a card number from any 16-digit number that happens to pass the Luhn check.
    static func plausibleCard(_ d: [UInt32]) -> Bool {
        func prefix(_ n: Int) -> Int { d.prefix(n).reduce(0) { $0 * 10 + Int($1 - 48) } }
        let n = d.count
        switch prefix(1) {
        case 4: return n == 13 || n == 16 || n == 19
        case 5: return (51...55).contains(prefix(2)) ? n == 16 : (n >= 12 && n <= 19)   // Mastercard; Maestro 50, 56-59
        case 0: return prefix(4) == 604 && n >= 12 && n <= 19                              // Maestro 0604
        case 2: return (2221...2720).contains(prefix(4)) ? n == 16 : (prefix(4) == 2131 && n == 15)
        case 3:
            if prefix(2) == 34 || prefix(2) == 37 { return n == 15 }
            if prefix(2) == 35 { return n >= 16 && n <= 19 }                              // JCB
            return (prefix(2) == 36 || prefix(2) == 38 || prefix(2) == 39 || (300...305).contains(prefix(3))) && n >= 14 && n <= 19
        case 6: return n >= 12 && n <= 19                                                  // Discover, UnionPay, Maestro
        case 1: return prefix(4) == 1800 && n == 15
        default: return false
        }
    }

    /// Words that say a plain run of digits is a phone number.
    static let phoneWords = ["phone", "tel", "call", "mobile", "cell", "fax", "sms", "whatsapp", "text me", "reach", "ring", "office at",
                             "telefon", "handy", "téléphone", "portable", "teléfono", "telefono", "cellulare", "bel ", "nummer"]

    /// Words that say a plain run of digits is some other number.
    static let numberWords = ["order", "tracking", "reference", "ref", "invoice", "ticket", "id", "account", "#", "no.", "nr", "=", "serial"]

    /// A run of digit groups joined by short separators (space, `-`, `.`, `/`, parentheses), with an optional leading `+`
    /// and an optional extension (`x123`, `ext. 123`), bounded by non-word characters. Then: 13 to 19 digits in one run or
    /// in even groups that pass the Luhn check with a card issuer's prefix are a card; 8 to 15 digits after `+` or
    /// `00`, or 9 to 11 digits grouped like a national number, or a plain run of 9 to 11 digits after a word like
    /// "phone", are a phone number. Shapes of dates, IP addresses, ISBNs and versions are refused.
    static func numbers(_ s: [UInt32]) -> [(PersonalDataKind, Range<Int>)] {
        var out: [(PersonalDataKind, Range<Int>)] = []
        func isSep(_ c: UInt32) -> Bool { c == 32 || c == 45 || c == 46 || c == 47 || c == 40 || c == 41 }  // space - . / ( )
        var at = 0
        while at < s.count {
            let c = s[at]
            guard isDigit(c) || c == 43 || c == 40, at == 0 || !(isWordScalar(s[at - 1]) || s[at - 1] == 46 || s[at - 1] == 45 || s[at - 1] == 43 || s[at - 1] == 47) else { at += 1; continue }
            var end = at
            let plus = c == 43
            if plus { end += 1 }
            var groups: [[UInt32]] = [], separators: [[UInt32]] = []
            var pendingSep: [UInt32] = []
            var openParens = 0
            scan: while end < s.count {
                let x = s[end]
                if isDigit(x) {
                    if !groups.isEmpty { separators.append(pendingSep) }
                    pendingSep = []
                    var g: [UInt32] = []
                    while end < s.count, isDigit(s[end]) { g.append(s[end]); end += 1 }
                    groups.append(g)
                } else if isSep(x), pendingSep.count < 2 {
                    if x == 40 { openParens += 1 } else if x == 41 { guard openParens > 0 else { break scan }; openParens -= 1 }
                    pendingSep.append(x); end += 1
                } else { break }
            }
            // Give back trailing separators, except a closing parenthesis that closes the run's own.
            end -= pendingSep.count
            if pendingSep.first == 41, openParens == 0 { end += 1 }
            let digits = groups.flatMap { $0 }
            guard !digits.isEmpty else { at += 1; continue }
            // Parentheses inside the run kept (an area code), not one opened after it.
            let sawParen = s[at] == 40 || (plus && at + 1 < s.count && s[at + 1] == 40) || separators.contains { $0.contains(40) }
            // An extension: x123, ext 123, ext. 123.
            var extEnd = end, k = end, marker = false
            if k < s.count, s[k] == 32 { k += 1 }
            if k < s.count, s[k] == 120 { k += 1; marker = true }
            else if k + 2 < s.count, s[k] == 101, s[k + 1] == 120, s[k + 2] == 116 {
                k += 3; marker = true
                if k < s.count, s[k] == 46 { k += 1 }
                if k < s.count, s[k] == 32 { k += 1 }
            }
            if marker {
                var m = k
                while m < s.count, isDigit(s[m]) { m += 1 }
                if m > k, m - k <= 6 { extEnd = m }
            }
            guard extEnd == s.count || !(isWordScalar(s[extEnd]) || (s[extEnd] == 46 && extEnd + 1 < s.count && isDigit(s[extEnd + 1]))) else {
                at = max(at + 1, end); continue
            }
            let span = at..<extEnd
            let seps = Set(separators.map { String(decoding: $0.map { UInt8($0) }, as: UTF8.self) })
            // Card numbers: one run, or groups of 4 (Amex 4-6-5, Diners 4-6-4) separated by one kind of single space or dash.
            let evenGroups = seps.count == 1 && (seps.first == " " || seps.first == "-") && groups.count >= 3
                && (groups.dropLast().allSatisfy { $0.count == 4 } || groups.map(\.count) == [4, 6, 5] || groups.map(\.count) == [4, 6, 4])
            if extEnd == end, !plus, (12...19).contains(digits.count), groups.count == 1 || evenGroups, luhn(digits), plausibleCard(digits) {
                out.append((.paymentCard, at..<end)); at = end; continue
            }
            if isPhone(groups: groups, separators: seps, parenthesized: sawParen, plus: plus, s: s, at: at) { out.append((.phone, span)); at = extEnd; continue }
            at = max(at + 1, end)
        }
        return out
    }

    static func isPhone(groups: [[UInt32]], separators: Set<String>, parenthesized: Bool, plus: Bool, s: [UInt32], at: Int) -> Bool {
        let n = groups.reduce(0) { $0 + $1.count }
        if plus { return (8...15).contains(n) && !(groups.count > 1 && groups.last!.count == 1) }
        if groups.count == 1 {
            // A plain run: with a trunk 0 (national numbers written without spaces), after 00 (international), or
            // after a word that says it is a phone number.
            guard (9...11).contains(n) || (n >= 10 && n <= 15 && groups[0].starts(with: [48, 48])) else { return false }
            let before = String(String.UnicodeScalarView(s[max(0, at - 28)..<at].compactMap(Unicode.Scalar.init))).lowercased()
            if phoneWords.contains(where: { before.contains($0) }) { return true }
            return groups[0].first == 48 && !numberWords.contains { before.contains($0) }
        }
        if groups[0].starts(with: [48, 48]) { return (10...15).contains(n) }   // 00 + country code
        guard (9...11).contains(n), groups.last!.count >= 2, groups.count <= 6 else { return false }
        // Dates have at most 8 digits; IPv4 addresses are four groups of up to 3 digits joined by dots.
        if separators == ["."] && groups.count == 4 && groups.allSatisfy({ $0.count <= 3 }) { return false }
        // A national number: a trunk 0, a parenthesized area code, or 3-3-4 / 1-3-3-4 groups (North America), or
        // 9 digits in groups of 2 and 3 (Spain).
        let lengths = groups.map(\.count)
        if groups[0].first == 48 || parenthesized { return true }
        if lengths == [3, 3, 4] || lengths == [1, 3, 3, 4] { return true }
        if n == 9, lengths.allSatisfy({ $0 == 2 || $0 == 3 }), [54, 55, 56, 57].contains(groups[0].first!) { return true }
        return false
    }

    // MARK: Secrets

    /// Token formats: a prefix, the characters that follow and how many at least.
    static let tokenFormats: [(prefix: String, charset: String, minimum: Int, exact: Bool)] = [
        ("AKIA", "A-Z0-9", 16, true), ("ASIA", "A-Z0-9", 16, true),
        ("ghp_", "a-zA-Z0-9", 36, false), ("gho_", "a-zA-Z0-9", 36, false), ("ghu_", "a-zA-Z0-9", 36, false),
        ("ghs_", "a-zA-Z0-9", 36, false), ("ghr_", "a-zA-Z0-9", 36, false), ("github_pat_", "a-zA-Z0-9_", 22, false),
        ("glpat-", "a-zA-Z0-9_-", 20, false), ("hf_", "a-zA-Z0-9", 30, false), ("npm_", "a-zA-Z0-9", 36, false),
        ("sk-", "a-zA-Z0-9_-", 20, false),
        ("sk_live_", "a-zA-Z0-9", 16, false), ("sk_test_", "a-zA-Z0-9", 16, false), ("rk_live_", "a-zA-Z0-9", 16, false), ("rk_test_", "a-zA-Z0-9", 16, false),
        ("xoxb-", "a-zA-Z0-9-", 10, false), ("xoxp-", "a-zA-Z0-9-", 10, false), ("xoxa-", "a-zA-Z0-9-", 10, false),
        ("xoxr-", "a-zA-Z0-9-", 10, false), ("xoxs-", "a-zA-Z0-9-", 10, false),
        ("AIza", "a-zA-Z0-9_-", 35, true),
    ]

    static func inCharset(_ c: UInt32, _ charset: String) -> Bool {
        (isDigit(c) && charset.contains("0-9")) || (isUpper(c) && charset.contains("A-Z")) || (isLower(c) && charset.contains("a-z"))
            || (c == 95 && charset.contains("_")) || (c == 45 && charset.hasSuffix("-"))
    }

    /// Names whose value is a credential when assigned (`DB_PASSWORD=...`, `"api_key": "..."`).
    static let secretNames = ["password", "passwd", "pwd", "secret", "apikey", "api_key", "api-key", "access_token", "auth_token",
                              "token", "private_key", "secret_key", "access_key", "client_secret", "passphrase"]

    static func secrets(_ s: [UInt32]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        // PEM private keys: from the BEGIN line to the END line (or the end of the text, while it is still coming).
        let begin = scalars("-----BEGIN "), endMark = scalars("-----END "), dashes = scalars("-----")
        func find(_ needle: [UInt32], from: Int) -> Int? {
            guard needle.count <= s.count - from else { return nil }
            var i = from
            while i + needle.count <= s.count { if s[i] == needle[0], Array(s[i..<(i + needle.count)]) == needle { return i }; i += 1 }
            return nil
        }
        var from = 0
        while let b = find(begin, from: from) {
            guard let close = find(dashes, from: b + begin.count) else { out.append(b..<s.count); break }
            let label = String(String.UnicodeScalarView(s[(b + begin.count)..<close].compactMap(Unicode.Scalar.init)))
            guard label.hasSuffix("PRIVATE KEY") else { from = close + dashes.count; continue }
            if let e = find(endMark, from: close), let eClose = find(dashes, from: e + endMark.count) { out.append(b..<(eClose + dashes.count)); from = eClose + dashes.count }
            else { out.append(b..<s.count); break }
        }
        func free(_ r: Range<Int>) -> Bool { !out.contains { $0.overlaps(r) } }
        // Tokens: maximal runs of token characters, checked against the formats; JSON web tokens.
        func isToken(_ c: UInt32) -> Bool { isAlnum(c) || c == 95 || c == 45 || c == 46 }
        var at = 0
        while at < s.count {
            guard isToken(s[at]), at == 0 || !isToken(s[at - 1]) else { at += 1; continue }
            var end = at
            while end < s.count, isToken(s[end]) { end += 1 }
            var stop = end
            while stop > at, s[stop - 1] == 46 || s[stop - 1] == 45 { stop -= 1 }   // a sentence's full stop, a dash
            let token = Array(s[at..<stop])
            if free(at..<stop), isSecretToken(token) { out.append(at..<stop) }
            at = end
        }
        // Assignments: NAME = value, NAME: value, "NAME": "value".
        at = 0
        while at < s.count {
            guard isAlnum(s[at]) || s[at] == 95, at == 0 || !(isAlnum(s[at - 1]) || s[at - 1] == 95 || s[at - 1] == 45) else { at += 1; continue }
            var end = at
            while end < s.count, isAlnum(s[end]) || s[end] == 95 || s[end] == 45 { end += 1 }
            let name = String(String.UnicodeScalarView(s[at..<end].compactMap(Unicode.Scalar.init))).lowercased()
            defer { at = end }
            guard secretNames.contains(where: { name == $0 || name.hasSuffix("_" + $0) || name.hasSuffix("-" + $0) }) else { continue }
            var k = end
            if k < s.count, s[k] == 34 || s[k] == 39 { k += 1 }
            while k < s.count, s[k] == 32 { k += 1 }
            guard k < s.count, s[k] == 61 || s[k] == 58 else { continue }   // = :
            k += 1
            while k < s.count, s[k] == 32 { k += 1 }
            var quote: UInt32? = nil
            if k < s.count, s[k] == 34 || s[k] == 39 { quote = s[k]; k += 1 }
            var v = k
            while v < s.count, s[v] != 32, s[v] != 10, s[v] != 13, s[v] != 9, quote.map({ s[v] != $0 }) ?? (s[v] != 34 && s[v] != 39 && s[v] != 44 && s[v] != 59) { v += 1 }
            if quote == nil { while v > k, s[v - 1] == 46 || s[v - 1] == 44 || s[v - 1] == 41 { v -= 1 } }
            let value = Array(s[k..<v])
            guard value.count >= 6, isCredentialValue(value), free(k..<v) else { continue }
            out.append(k..<v)
        }
        return out.sorted { $0.lowerBound < $1.lowerBound }
    }

    static func isSecretToken(_ t: [UInt32]) -> Bool {
        for f in tokenFormats {
            let p = scalars(f.prefix)
            guard t.count >= p.count + f.minimum, Array(t[0..<p.count]) == p else { continue }
            let rest = t[p.count...]
            guard rest.allSatisfy({ inCharset($0, f.charset) }), !f.exact || rest.count == f.minimum else { continue }
            // Random tokens mix at least two of digits, capitals and small letters; a hyphenated word after "sk-" does not.
            let classes = [rest.contains(where: isDigit), rest.contains(where: isUpper), rest.contains(where: isLower)].filter { $0 }.count
            if classes >= 2 && (f.prefix != "sk-" || rest.contains(where: isDigit)) { return true }
        }
        // JSON web token: three base64url parts, the header and the payload both JSON objects ("eyJ").
        let parts = t.split(separator: 46, omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].starts(with: scalars("eyJ")), parts[1].starts(with: scalars("eyJ")),
           parts.allSatisfy({ $0.count >= 8 && $0.allSatisfy { isAlnum($0) || $0 == 95 || $0 == 45 } }) { return true }
        return false
    }

    /// Not a placeholder (`<your key>`, `***`, `xxxxxx`, `${VAR}`, `changeme`-like words are still secrets): the
    /// value has no angle brackets or dollar-brace, and is not one repeated character.
    static func isCredentialValue(_ v: [UInt32]) -> Bool {
        // <placeholder>, $VAR, ${VAR}, %VAR%, [REDACTED], os.environ['X'], getenv("X")
        if v.contains(60) || v.contains(62) || v.contains(91) || v.contains(40) || v.first == 36 || (v.first == 37 && v.last == 37) { return false }
        // An environment variable's name or a placeholder in capitals: YOUR_API_KEY_HERE, SECRET_KEY.
        if v.allSatisfy({ isUpper($0) || $0 == 95 }) { return false }
        if Set(v).count <= 2 { return false }
        let text = String(String.UnicodeScalarView(v.compactMap(Unicode.Scalar.init))).lowercased()
        return !["required", "optional", "string", "none", "null", "true", "false", "undefined", "hidden", "redacted", "example"].contains(text)
    }
}

/// True and false positives and misses of a detector against labelled spans.
public struct DetectionScore: Sendable, Equatable {
    public var truePositives = 0, falsePositives = 0, falseNegatives = 0
    public init() {}
    public var precision: Double { truePositives + falsePositives == 0 ? 1 : Double(truePositives) / Double(truePositives + falsePositives) }
    public var recall: Double { truePositives + falseNegatives == 0 ? 1 : Double(truePositives) / Double(truePositives + falseNegatives) }

    /// Scores one text's spans, per kind: a span found is a true positive when it overlaps a labelled span of the same
    /// kind not matched yet, otherwise a false positive; labelled spans left unmatched are misses (the rule of
    /// Benchmarks/safety_peers.py, so that the figures compare).
    public static func score(found: [PersonalDataMatch], labelled: [PersonalDataMatch], into scores: inout [PersonalDataKind: DetectionScore]) {
        var matched = Array(repeating: false, count: labelled.count)
        for f in found {
            if let i = labelled.indices.first(where: { !matched[$0] && labelled[$0].kind == f.kind && labelled[$0].range.overlaps(f.range) }) {
                matched[i] = true
                scores[f.kind, default: DetectionScore()].truePositives += 1
            } else {
                scores[f.kind, default: DetectionScore()].falsePositives += 1
            }
        }
        for (i, l) in labelled.enumerated() where !matched[i] { scores[l.kind, default: DetectionScore()].falseNegatives += 1 }
    }
}
