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
