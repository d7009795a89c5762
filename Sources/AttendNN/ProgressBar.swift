// Progress for long work: a redrawn bar with rate and ETA on a terminal, plain log lines otherwise
// (so CI logs and pipes stay readable).

import Foundation

/// Progress of long work on standard error: a redrawn bar with rate and ETA on a terminal, a line per tenth otherwise.
///
/// ```swift
/// let bar = ProgressBar(total: steps, label: "train", unit: "step")
/// for step in 0..<steps { bar.advance(status: String(format: "loss %.3f", train(step))) }
/// bar.finish()   // needed only when the loop can stop before `total`
/// ```
public final class ProgressBar {
    public let total: Int
    public let label: String
    public let unit: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastLoggedTenth = -1
    private let isTerminal = isatty(fileno(stderr)) != 0
    public private(set) var done = 0

    public init(total: Int, label: String, unit: String = "it") {
        self.total = total
        self.label = label
        self.unit = unit
    }

    /// Advances by `count` items; `status` is appended (e.g. "loss 0.412").
    public func advance(_ count: Int = 1, status: String = "") {
        done += count
        let now = Date()
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        if isTerminal {
            guard now.timeIntervalSince(lastDraw) > 0.1 || done >= total else { return }
            lastDraw = now
            let width = 24, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write("\r\(label) [\(bar)] \(done)/\(total) \(ProgressBar.format(rate)) \(unit)/s ETA \(ProgressBar.duration(eta)) \(status)\u{1B}[K".data(using: .utf8)!)
            if done >= total { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        } else {
            let tenth = Int(fraction * 10)
            guard tenth > lastLoggedTenth else { return }
            lastLoggedTenth = tenth
            FileHandle.standardError.write("\(label): \(done)/\(total) (\(tenth * 10)%) \(ProgressBar.format(rate)) \(unit)/s ETA \(ProgressBar.duration(eta)) \(status)\n".data(using: .utf8)!)
        }
    }

    /// Marks the work complete when it ended before `total` (e.g. nothing left to merge).
    public func finish(status: String = "") {
        if done < total { advance(total - done, status: status) }
    }

    static func format(_ rate: Double) -> String {
        rate >= 1e6 ? String(format: "%.2fM", rate / 1e6) : rate >= 1e3 ? String(format: "%.1fk", rate / 1e3) : String(format: "%.1f", rate)
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
