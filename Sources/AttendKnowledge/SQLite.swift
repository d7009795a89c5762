// A small, strict layer over SQLite's C API (Debian's libsqlite3, through the CSQLite system-library target): open a
// file, run statements with bound parameters, read typed columns, run a block in a transaction. Values reach SQL
// only as bound parameters; every error names the database file and the statement.

import AttendTensor
import CSQLite
import Foundation

/// A value bound to a statement parameter.
public enum SQLValue: Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null
}

/// One open SQLite database (one file, or `:memory:`).
///
/// ```swift
/// let db = try SQLiteDatabase(path: "notes.sqlite")
/// try db.execute("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT)")
/// try db.run("INSERT INTO notes(body) VALUES (?)", [.text("hello")])
/// let bodies = try db.query("SELECT body FROM notes") { $0.text(0) }
/// ```
public final class SQLiteDatabase {
    public let path: String
    let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    public init(path: String, readOnly: Bool = false) throws {
        var db: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close(db) }
            throw AttendError("\(path): cannot open as an SQLite database: \(message)")
        }
        self.path = path
        handle = db
        sqlite3_busy_timeout(db, 5000)
        do {
            // Reading the schema is the first real I/O: a file that is not a database fails here, with its name.
            try execute("PRAGMA foreign_keys = ON")
            if !readOnly && path != ":memory:" { _ = try query("PRAGMA journal_mode = WAL") { $0.text(0) } }
        } catch {
            sqlite3_close(db)
            throw error
        }
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close(handle)
    }

    func failure(_ sql: String) -> AttendError {
        AttendError("\(path): \(String(cString: sqlite3_errmsg(handle))) (in: \(sql.prefix(120)))")
    }

    /// Runs one or more statements that take no parameters and return no rows.
    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(handle, sql, nil, nil, &message) != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "error"
            sqlite3_free(message)
            throw AttendError("\(path): \(text) (in: \(sql.prefix(120)))")
        }
    }

    // Prepared statements are cached by their SQL text: ingestion runs the same few thousands of times.
    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let s = statements[sql] { return s }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else { throw failure(sql) }
        statements[sql] = statement
        return statement
    }

    private func bind(_ statement: OpaquePointer, _ values: [SQLValue], sql: String) throws {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        guard Int(sqlite3_bind_parameter_count(statement)) == values.count else {
            throw AttendError("\(path): statement takes \(sqlite3_bind_parameter_count(statement)) parameters, got \(values.count) (in: \(sql.prefix(120)))")
        }
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .integer(let x): rc = sqlite3_bind_int64(statement, index, x)
            case .real(let x): rc = sqlite3_bind_double(statement, index, x)
            case .text(let s): rc = sqlite3_bind_text(statement, index, s, -1, attend_sqlite_transient())
            case .blob(let bytes):
                rc = bytes.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), attend_sqlite_transient()) }
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            guard rc == SQLITE_OK else { throw failure(sql) }
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLValue] = []) throws -> Int {
        let statement = try prepared(sql)
        try bind(statement, values, sql: sql)
        defer { sqlite3_reset(statement) }
        var rc = sqlite3_step(statement)
        while rc == SQLITE_ROW { rc = sqlite3_step(statement) }
        guard rc == SQLITE_DONE else { throw failure(sql) }
        return Int(sqlite3_changes(handle))
    }

    /// Runs a query and maps each row.
    public func query<T>(_ sql: String, _ values: [SQLValue] = [], _ row: (SQLiteRow) throws -> T) throws -> [T] {
        let statement = try prepared(sql)
        try bind(statement, values, sql: sql)
        defer { sqlite3_reset(statement) }
        var out: [T] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure(sql) }
            out.append(try row(SQLiteRow(statement: statement)))
        }
        return out
    }

    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws, so a killed or failed
    /// ingestion never leaves half a document behind.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Whether this SQLite has FTS5 compiled in (Debian's does).
    public func hasFTS5() -> Bool {
        (try? query("SELECT sqlite_compileoption_used('ENABLE_FTS5')") { $0.int(0) }.first == 1) ?? false
    }
}

/// The current row of a query.
public struct SQLiteRow {
    let statement: OpaquePointer

    public func int(_ column: Int) -> Int64 { sqlite3_column_int64(statement, Int32(column)) }
    public func double(_ column: Int) -> Double { sqlite3_column_double(statement, Int32(column)) }
    public func isNull(_ column: Int) -> Bool { sqlite3_column_type(statement, Int32(column)) == SQLITE_NULL }
    public func text(_ column: Int) -> String {
        guard let p = sqlite3_column_text(statement, Int32(column)) else { return "" }
        return String(cString: p)
    }
    /// The column's bytes (empty for NULL).
    public func blob(_ column: Int) -> UnsafeRawBufferPointer {
        let n = Int(sqlite3_column_bytes(statement, Int32(column)))
        guard n > 0, let p = sqlite3_column_blob(statement, Int32(column)) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: p, count: n)
    }
}
