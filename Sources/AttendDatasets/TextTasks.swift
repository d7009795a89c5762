// Text-to-text tasks generated here, each with one right answer, for T5-style multitask training (a prefix
// names the task: "date to iso: 5 Mar 98") and for instruction tuning (the same pairs asked in words).

import AttendTensor
import Foundation

/// A generated text-to-text task.
///
/// ```swift
/// let pairs = TextTask.numberToWords.pairs(count: 3, seed: 1)
/// pairs[0]                                      // e.g. ("4821", "four thousand eight hundred twenty-one")
/// TextTask.numberToWords.prefixed(pairs[0].source)   // "number to words: 4821"
/// ```
public enum TextTask: String, CaseIterable, Codable {
    /// Dates as people write them to ISO 8601 (see `HumanDates`).
    case dateToISO = "date to iso"
    /// 0 ... 99,999 in digits to English words.
    case numberToWords = "number to words"
    /// Three to seven common words, in reverse order.
    case reverseWords = "reverse"

    /// T5's layout: the task's name, a colon, the input.
    public func prefixed(_ source: String) -> String { "\(rawValue): \(source)" }

    /// The same request in words, for a chat model's user turn.
    public func instruction(_ source: String) -> String {
        switch self {
        case .dateToISO: return "Convert this date to ISO 8601 (YYYY-MM-DD): \(source)"
        case .numberToWords: return "Write this number in English words: \(source)"
        case .reverseWords: return "Reverse the order of these words: \(source)"
        }
    }

    /// `count` (input, answer) pairs drawn with `seed` (the same seed gives the same pairs).
    public func pairs(count: Int, seed: UInt64) -> [(source: String, target: String)] {
        switch self {
        case .dateToISO:
            return HumanDates.pairs(count: count, seed: seed)
        case .numberToWords:
            var g = RandomGenerator(seed: seed ^ 0x4E554D)
            return (0..<count).map { _ in
                // Every digit count equally often, so short numbers are not rare.
                let digits = 1 + Int(g.next() % 5)
                let n = Int(g.next() % UInt64(pow(10, Double(digits))))
                return (String(n), TextTask.words(n))
            }
        case .reverseWords:
            var g = RandomGenerator(seed: seed ^ 0x524556)
            return (0..<count).map { _ in
                let n = 3 + Int(g.next() % 5)
                let words = (0..<n).map { _ in TextTask.commonWords[Int(g.next() % UInt64(TextTask.commonWords.count))] }
                return (words.joined(separator: " "), words.reversed().joined(separator: " "))
            }
        }
    }

    static let ones = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                       "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
    static let tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    static let commonWords = ["time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world", "school",
                              "state", "family", "student", "group", "country", "problem", "hand", "part", "place", "case", "week",
                              "company", "system", "program", "question", "work", "government", "number", "night", "point", "home",
                              "water", "room", "mother", "area", "money", "story", "fact", "month", "lot", "right", "study", "book",
                              "eye", "job", "word", "business", "issue", "side", "kind", "head", "house", "service", "friend",
                              "father", "power", "hour", "game", "line", "end", "member", "law", "car", "city", "name", "team",
                              "minute", "idea", "kid", "body", "face", "others", "level", "office", "door", "health", "person",
                              "art", "war", "history", "party", "result", "change", "morning", "reason", "research", "girl", "guy",
                              "moment", "air", "teacher", "force", "education", "red", "green", "blue", "small", "large", "old"]

    /// English words for 0 ..< 1,000,000 ("four thousand eight hundred twenty-one").
    public static func words(_ n: Int) -> String {
        precondition(n >= 0 && n < 1_000_000, "words: \(n) is outside 0 ..< 1,000,000")
        func below1000(_ n: Int) -> [String] {
            var out: [String] = []
            if n >= 100 { out += [ones[n / 100], "hundred"] }
            let r = n % 100
            if r >= 20 { out.append(tens[r / 10] + (r % 10 > 0 ? "-" + ones[r % 10] : "")) } else if r > 0 { out.append(ones[r]) }
            return out
        }
        if n == 0 { return "zero" }
        var parts: [String] = []
        if n >= 1000 { parts += below1000(n / 1000) + ["thousand"] }
        parts += below1000(n % 1000)
        return parts.joined(separator: " ")
    }
}
