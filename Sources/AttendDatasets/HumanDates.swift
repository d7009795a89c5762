// A sequence-to-sequence task generated here: dates written the many ways people write them
// ("Thursday, March 5, 1998", "5 mar 98", "1998.03.05", ...) paired with the ISO date ("1998-03-05").
// Formats are unambiguous (no numeric day/month order guessing), so a perfect model exists.

import AttendTensor
import Foundation

/// A generated sequence-to-sequence task: dates as people write them, paired with the ISO date.
///
/// ```swift
/// let pairs = HumanDates.pairs(count: 20_000, seed: 1)
/// let (source, target) = pairs[0]   // e.g. ("5 Mar 98", "1998-03-05")
/// ```
public enum HumanDates {
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
    static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    /// 1st, 2nd, 3rd, 4th, ..., 11th-13th, 21st, ...
    static func ordinal(_ d: Int) -> String {
        if (11...13).contains(d % 100) { return "th" }
        switch d % 10 {
        case 1: return "st"
        case 2: return "nd"
        case 3: return "rd"
        default: return "th"
        }
    }

    /// `count` (human, ISO) pairs for dates between 1950 and 2049, drawn with `seed`.
    public static func pairs(count: Int, seed: UInt64) -> [(source: String, target: String)] {
        var g = RandomGenerator(seed: seed)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: DateComponents(year: 1950, month: 1, day: 1))!
        return (0..<count).map { _ in
            let date = start.addingTimeInterval(Double(g.next() % 36_524) * 86_400)
            let c = calendar.dateComponents([.year, .month, .day, .weekday], from: date)
            let (y, m, d) = (c.year!, c.month!, c.day!)
            let month = months[m - 1], short = String(month.prefix(3))
            let weekday = weekdays[(c.weekday! + 5) % 7]
            let yy = String(format: "%02d", y % 100)
            let formats = [
                "\(month) \(d), \(y)", "\(d) \(month) \(y)", "\(weekday), \(month) \(d), \(y)", "\(short) \(d) \(y)",
                "\(d) \(short) \(yy)", "\(y).\(String(format: "%02d", m)).\(String(format: "%02d", d))", "\(d) \(month.lowercased()) \(y)",
                "\(short.uppercased()) \(String(format: "%02d", d)), \(y)", "\(weekday.prefix(3)) \(d) \(short) \(y)", "\(month) \(d) \(y)",
                "the \(d)\(ordinal(d)) of \(month) \(y)", "\(y)/\(m)/\(d)",
            ]
            let source = formats[Int(g.next() % UInt64(formats.count))]
            return (source, String(format: "%04d-%02d-%02d", y, m, d))
        }
    }
}
