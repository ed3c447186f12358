/// A parsed JSON value. Objects keep their keys in order (the EA's messages are flat objects).
public enum JSONValue: Sendable, Equatable {
    case string(String)
    /// A number, with whether its text was an integer literal (no `.`, `e` or `E`).
    case number(Double, isInteger: Bool)
    case bool(Bool)
    case null
    case object([String: JSONValue])
    case array([JSONValue])

    /// A short name of the JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .string: "string"
        case .number(_, let isInteger): isInteger ? "integer" : "number"
        case .bool: "boolean"
        case .null: "null"
        case .object: "object"
        case .array: "array"
        }
    }
}

/// The top-level fields of a parsed object, in order, in flat storage. Looking a field up is a
/// linear scan, which beats hashing for the EA's objects of a dozen or so fields.
public struct JSONFields: Sendable, Equatable {
    /// The fields in document order; keys are unique.
    public var pairs: [(key: String, value: JSONValue)] = []
    /// How many strings of the document were not UTF-8 and were read as Windows-1252.
    public var legacyTextStrings = 0

    /// No fields.
    public init() {}

    /// Fields from a dictionary.
    public init(_ dictionary: [String: JSONValue]) {
        pairs = dictionary.map { ($0.key, $0.value) }
    }

    /// How many.
    public var count: Int { pairs.count }

    /// The position of `key`, if present.
    public func index(of key: String) -> Int? {
        let length = key.utf8.count
        return pairs.firstIndex { $0.key.utf8.count == length && $0.key == key }
    }

    /// The value of `key`.
    public subscript(key: String) -> JSONValue? {
        // Lengths first: a key of another byte length is never compared character by character (and never
        // matches: JSON names are compared code point by code point, not by Unicode canonical equivalence).
        let length = key.utf8.count
        for pair in pairs where pair.key.utf8.count == length && pair.key == key { return pair.value }
        return nil
    }

    /// The fields as a dictionary.
    public var dictionary: [String: JSONValue] {
        Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// The same keys with the same values.
    public static func == (lhs: JSONFields, rhs: JSONFields) -> Bool { lhs.dictionary == rhs.dictionary }
}
