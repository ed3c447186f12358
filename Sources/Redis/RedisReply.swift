/// A typed Redis reply.
public enum RedisReply: Sendable, Equatable, CustomStringConvertible {
    /// A bulk string (binary-safe).
    case string([UInt8])
    /// A status reply such as `OK` or `QUEUED`.
    case status(String)
    /// An integer reply.
    case integer(Int)
    /// An array reply.
    case array([RedisReply])
    /// The nil reply.
    case null
    /// An error reply (`-ERR …`), kept as a value inside pipelines and transactions.
    case error(String)

    /// The text of a bulk string or status reply.
    public var string: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        case .integer(let value): String(value)
        default: nil
        }
    }

    /// The value of an integer reply, or of a bulk string holding an integer.
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .string: string.flatMap { Int($0) }
        default: nil
        }
    }

    /// The elements of an array reply.
    public var array: [RedisReply]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// True for the nil reply.
    public var isNull: Bool { self == .null }

    /// An array of field/value pairs (HGETALL) as a dictionary.
    public var hash: [String: String]? {
        guard let items = array else { return nil }
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < items.count {
            if let key = items[index].string, let value = items[index + 1].string { result[key] = value }
            index += 2
        }
        return result
    }

    /// Throws when this is an error reply; returns self otherwise.
    @discardableResult
    public func orThrow() throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw RedisError(.server, message) }
        return self
    }

    /// The reply as `redis-cli` would show it, in one line.
    public var description: String {
        switch self {
        case .string: "\"\(string ?? "")\""
        case .status(let text): text
        case .integer(let value): String(value)
        case .array(let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .null: "(nil)"
        case .error(let message): "(error) \(message)"
        }
    }
}
