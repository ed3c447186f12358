/// Reads typed fields out of a parsed JSON object; every failure names the field.
public struct FieldReader: Sendable {
    /// The parsed fields.
    public let fields: JSONFields

    /// The parsed object as a dictionary (built on each call; prefer `self[key]`).
    public var object: [String: JSONValue] { fields.dictionary }

    /// Wraps a parsed object.
    public init(_ object: [String: JSONValue]) { self.fields = JSONFields(object) }

    /// Parses bytes (size-checked) and wraps the object. `legacyText`: text that is not UTF-8 is read
    /// as Windows-1252 (the EA's wire) instead of refused.
    public init(parsing bytes: [UInt8], maxBytes: Int = WireLimits.maxMessageBytes, legacyText: Bool = false)
        throws(WireError)
    {
        fields = try JSONParser.parseFields(bytes, maxBytes: maxBytes, legacyText: legacyText)
    }

    /// One field's raw value.
    public subscript(key: String) -> JSONValue? { fields[key] }

    private func required(_ key: String) throws(WireError) -> JSONValue {
        guard let value = fields[key], value != .null else {
            throw WireError(.missingField, field: key, "required field is missing")
        }
        return value
    }

    /// A required string of at most `maxLength` characters, without `"` or `\`.
    public func string(_ key: String, maxLength: Int = WireLimits.maxStringLength, allowEmpty: Bool = true)
        throws(WireError) -> String
    {
        guard case .string(let text) = try required(key) else {
            throw WireError(.wrongType, field: key, "expected a string, got \(fields[key]?.typeName ?? "nothing")")
        }
        guard text.utf8.count <= maxLength else {
            throw WireError(.tooLong, field: key, "string of \(text.utf8.count) bytes exceeds \(maxLength)")
        }
        guard allowEmpty || !text.isEmpty else { throw WireError(.outOfRange, field: key, "must not be empty") }
        return text
    }

    /// An optional string (absent or null → nil).
    public func optionalString(_ key: String, maxLength: Int = WireLimits.maxStringLength) throws(WireError) -> String?
    {
        guard let value = fields[key], value != .null else { return nil }
        return try string(key, maxLength: maxLength)
    }

    /// A required finite number. Integers are accepted where numbers are.
    public func double(_ key: String, nonNegative: Bool = false) throws(WireError) -> Double {
        guard case .number(let value, _) = try required(key) else {
            throw WireError(.wrongType, field: key, "expected a number, got \(fields[key]?.typeName ?? "nothing")")
        }
        if nonNegative && value < 0 { throw WireError(.outOfRange, field: key, "must not be negative (got \(value))") }
        return value
    }

    /// An optional number.
    public func optionalDouble(_ key: String, nonNegative: Bool = false) throws(WireError) -> Double? {
        guard let value = fields[key], value != .null else { return nil }
        return try double(key, nonNegative: nonNegative)
    }

    /// A price: a finite number greater than zero.
    public func price(_ key: String) throws(WireError) -> Double {
        let value = try double(key)
        guard value > 0 else { throw WireError(.outOfRange, field: key, "price must be positive (got \(value))") }
        return value
    }

    /// A required integer (an integer literal, or a number with no fractional part).
    public func int(_ key: String, nonNegative: Bool = false) throws(WireError) -> Int {
        guard case .number(let value, _) = try required(key) else {
            throw WireError(.wrongType, field: key, "expected an integer, got \(fields[key]?.typeName ?? "nothing")")
        }
        guard value.rounded() == value, abs(value) < 9.0e15 else {
            throw WireError(.wrongType, field: key, "expected an integer, got \(value)")
        }
        if nonNegative && value < 0 {
            throw WireError(.outOfRange, field: key, "must not be negative (got \(Int(value)))")
        }
        return Int(value)
    }

    /// An optional integer.
    public func optionalInt(_ key: String, nonNegative: Bool = false) throws(WireError) -> Int? {
        guard let value = fields[key], value != .null else { return nil }
        return try int(key, nonNegative: nonNegative)
    }

    /// An integer that may also arrive as a string of digits (the EA sends `account_login` as a string).
    public func intOrString(_ key: String) throws(WireError) -> Int {
        if case .string(let text)? = fields[key] {
            guard let value = Int(text) else {
                throw WireError(.wrongType, field: key, "expected digits, got '\(text)'")
            }
            return value
        }
        return try int(key)
    }

    /// A MetaTrader timestamp (`YYYY.MM.DD HH:MM:SS`) as given.
    public func timestamp(_ key: String = "timestamp") throws(WireError) -> MetaTraderTime {
        let text = try string(key, maxLength: 32)
        guard let time = MetaTraderTime(text) else {
            throw WireError(.badTimestamp, field: key, "'\(text)' is not YYYY.MM.DD HH:MM:SS")
        }
        return time
    }

    /// A user UUID: 3–64 characters of letters, digits, `_`, `-` and `.`.
    public func uuid(_ key: String) throws(WireError) -> String {
        let text = try string(key, maxLength: 64)
        guard UserID.isValid(text) else {
            throw WireError(.outOfRange, field: key, "'\(text)' is not a valid UUID (letters, digits, _ - . only)")
        }
        return text
    }
}

/// Rules for user and node identifiers that end up inside Redis keys.
public enum UserID {
    /// Letters, digits, `_`, `-`, `.`; 3 to 64 characters.
    public static func isValid(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { isValid(bytes: $0) }
    }

    /// The same rule over the bytes (a loop over contiguous bytes, not the string's generic UTF-8 view).
    public static func isValid(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard (3...64).contains(bytes.count) else { return false }
        for byte in bytes {
            guard
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x5F || byte == 0x2D || byte == 0x2E
            else { return false }
        }
        return true
    }
}
