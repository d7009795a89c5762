/// An error about user input (a file, a key, a line) with a message that says what was expected.
public struct AttendError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

import Foundation
