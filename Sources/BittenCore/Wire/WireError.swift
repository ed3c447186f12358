/// Why a message was rejected: a code for counting (bounded, usable as a metric label) and a
/// specific message that names the field.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reason, usable as a metric label.
    public enum Code: String, Sendable, CaseIterable {
        case oversized
        case notJSON = "not_json"
        case truncated
        case malformed
        case notObject = "not_object"
        case duplicateField = "duplicate_field"
        case unknownType = "unknown_type"
        case missingField = "missing_field"
        case wrongType = "wrong_type"
        case nonFinite = "non_finite"
        case outOfRange = "out_of_range"
        case tooLong = "too_long"
        case badTimestamp = "bad_timestamp"
        case unencodable
        /// Over the per-EA message rate.
        case rateLimited = "rate_limited"
    }

    /// The reason.
    public let code: Code
    /// The field concerned, when there is one.
    public let field: String?
    /// A specific, human-readable explanation.
    public let message: String

    /// Makes an error.
    public init(_ code: Code, field: String? = nil, _ message: String) {
        self.code = code
        self.field = field
        self.message = message
    }

    /// A one-line description.
    public var description: String {
        if let field { return "\(code.rawValue): field `\(field)`: \(message)" }
        return "\(code.rawValue): \(message)"
    }
}

/// Size limits of the wire format.
public enum WireLimits {
    /// The largest EA message the decoders accept (bytes).
    public static let maxMessageBytes = 16 * 1024
    /// The largest string field the decoders accept (characters), except lists.
    public static let maxStringLength = 256
    /// The largest list-like string field (`symbol_list`).
    public static let maxListLength = 4096
    /// The largest command the EA can read (its receive buffer).
    public static let maxCommandBytes = 4096
}
