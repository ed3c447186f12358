#if canImport(Glibc)
    import Glibc
#endif

/// A strict JSON parser over bytes with errors that name the field being read. It rejects
/// duplicate keys, non-finite numbers (`inf`, `nan`, `1e999`), invalid UTF-8 and trailing data.
public struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    private var currentField: String?
    /// Strings that were not valid UTF-8 and were read as Windows-1252 (the EA's ANSI code page).
    private var legacyStrings = 0
    /// Whether strings that are not UTF-8 are read as Windows-1252 (the EA's wire) or refused (HTTP).
    private var acceptLegacyText = false

    /// Parses a whole document that must be a JSON object.
    public static func parseObject(_ input: [UInt8], maxBytes: Int = WireLimits.maxMessageBytes) throws(WireError)
        -> [String: JSONValue]
    {
        try parseFields(input, maxBytes: maxBytes).dictionary
    }

    /// Parses a whole document that must be a JSON object, keeping its top-level fields in order
    /// in flat storage (no hashing: the EA's messages are small flat objects read field by field).
    /// `legacyText`: strings that are not valid UTF-8 are read as Windows-1252 (the EA's ANSI code
    /// page) and counted in `JSONFields.legacyTextStrings`, instead of being refused.
    public static func parseFields(
        _ input: [UInt8], maxBytes: Int = WireLimits.maxMessageBytes, legacyText: Bool = false
    )
        throws(WireError) -> JSONFields
    {
        guard input.count <= maxBytes else {
            throw WireError(.oversized, "message is \(input.count) bytes, the limit is \(maxBytes)")
        }
        let result: Result<JSONFields, WireError> = input.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(bytes: buffer)
            parser.acceptLegacyText = legacyText
            do throws(WireError) {
                parser.skipWhitespace()
                guard parser.index < buffer.count else { throw WireError(.notJSON, "message is empty") }
                guard buffer[parser.index] == UInt8(ascii: "{") else {
                    if buffer[parser.index] < 0x20 || buffer[parser.index] >= 0x80 {
                        throw WireError(
                            .notJSON,
                            "message is not JSON text (starts with byte 0x\(String(buffer[parser.index], radix: 16)))")
                    }
                    throw WireError(.notObject, "message must be a JSON object")
                }
                var fields = try parser.parseTopLevelObject()
                fields.legacyTextStrings = parser.legacyStrings
                parser.skipWhitespace()
                guard parser.index == buffer.count else {
                    throw WireError(.malformed, "unexpected data after the object at byte \(parser.index)")
                }
                return .success(fields)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private func truncated() -> WireError {
        WireError(.truncated, field: currentField, "message ends in the middle of the JSON")
    }

    private func unexpected(_ what: String) -> WireError {
        guard index < bytes.count else { return truncated() }
        let byte = bytes[index]
        let shown =
            byte >= 0x20 && byte < 0x7F ? "'\(Character(UnicodeScalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        var hint = ""
        if let field = currentField, what.contains("after") {
            hint = " (an unescaped quote inside `\(field)`?)"
        }
        return WireError(.malformed, field: currentField, "expected \(what) at byte \(index), found \(shown)\(hint)")
    }

    private mutating func parseValue() throws(WireError) -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw truncated() }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObjectBody()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            if matches("nan") { throw WireError(.nonFinite, field: currentField, "NaN is not a number") }
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case UInt8(ascii: "i"), UInt8(ascii: "I"), UInt8(ascii: "N"):
            throw WireError(.nonFinite, field: currentField, "non-finite number is not allowed")
        default: throw unexpected("a value")
        }
    }

    private func matches(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] { return false }
        return true
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(WireError) {
        guard matches(literal) else {
            if index + literal.utf8CodeUnitCount > bytes.count { throw truncated() }
            throw unexpected("`\(literal)`")
        }
        index += literal.utf8CodeUnitCount
    }

    private mutating func parseObjectBody() throws(WireError) -> JSONValue {
        var object: [String: JSONValue] = [:]
        try parseMembers { key, value throws(WireError) in
            guard object.updateValue(value, forKey: key) == nil else {
                throw WireError(.duplicateField, field: key, "field appears more than once")
            }
        }
        return .object(object)
    }

    private mutating func parseTopLevelObject() throws(WireError) -> JSONFields {
        var fields = JSONFields()
        fields.pairs.reserveCapacity(16)
        var seen: Set<String>?
        try parseMembers { key, value throws(WireError) in
            // Small objects: a linear scan; large ones (hostile input) switch to a set.
            let duplicate: Bool
            if let set = seen {
                duplicate = set.contains(key)
                seen!.insert(key)
            } else {
                duplicate = fields.index(of: key) != nil
                if fields.count >= 32 { seen = Set(fields.pairs.map(\.key) + [key]) }
            }
            guard !duplicate else { throw WireError(.duplicateField, field: key, "field appears more than once") }
            fields.pairs.append((key, value))
        }
        return fields
    }

    /// Reads `{ "key": value, ... }` from the opening brace, handing each member to `member`.
    private mutating func parseMembers(_ member: (String, JSONValue) throws(WireError) -> Void) throws(WireError) {
        depth += 1
        guard depth <= 16 else { throw WireError(.malformed, "nesting deeper than 16 levels") }
        defer { depth -= 1 }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        let outerField = currentField
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw truncated() }
            guard bytes[index] == UInt8(ascii: "\"") else { throw unexpected("a field name") }
            let key = try parseString()
            currentField = key
            skipWhitespace()
            guard index < bytes.count else { throw truncated() }
            guard bytes[index] == UInt8(ascii: ":") else { throw unexpected("':' after the field name") }
            index += 1
            let value = try parseValue()
            try member(key, value)
            skipWhitespace()
            guard index < bytes.count else { throw truncated() }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                currentField = outerField
                return
            }
            throw unexpected("',' or '}' after the value")
        }
    }

    private mutating func parseArray() throws(WireError) -> JSONValue {
        depth += 1
        guard depth <= 16 else { throw WireError(.malformed, "nesting deeper than 16 levels") }
        defer { depth -= 1 }
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            items.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw truncated() }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            throw unexpected("',' or ']' in the array")
        }
    }

    private mutating func parseString() throws(WireError) -> String {
        index += 1
        let start = index
        var hasEscapes = false
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte >= 0x80 { ascii = false }
            if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                index += 2
                continue
            }
            if byte < 0x20 {
                throw WireError(.malformed, field: currentField, "control character in a string at byte \(index)")
            }
            index += 1
        }
        guard index < bytes.count else { throw truncated() }
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
        index += 1
        // ASCII needs no validation (and the generic validating initialiser is slow).
        if ascii && !hasEscapes { return String(decoding: raw, as: UTF8.self) }
        guard let text = String(validating: raw, as: UTF8.self) else {
            guard acceptLegacyText else {
                throw WireError(.malformed, field: currentField, "string is not valid UTF-8")
            }
            // The EA writes text in the terminal's ANSI code page (Windows-1252 on most terminals):
            // `é` arrives as the single byte 0xE9. Such a string is read as Windows-1252, never refused.
            legacyStrings += 1
            let text = Windows1252.decode(raw)
            return hasEscapes ? try unescape(text) : text
        }
        return hasEscapes ? try unescape(text) : text
    }

    /// The four hex digits of a `\u` escape.
    private func hexEscape(_ iterator: inout String.UnicodeScalarView.Iterator) throws(WireError) -> UInt32 {
        var hex = ""
        for _ in 0..<4 { if let h = iterator.next() { hex.unicodeScalars.append(h) } }
        guard hex.unicodeScalars.count == 4, hex.unicodeScalars.allSatisfy(\.properties.isASCIIHexDigit),
            let code = UInt32(hex, radix: 16)
        else {
            throw WireError(.malformed, field: currentField, "invalid \\u escape")
        }
        return code
    }

    private func unescape(_ text: String) throws(WireError) -> String {
        var result = ""
        var iterator = text.unicodeScalars.makeIterator()
        while let scalar = iterator.next() {
            guard scalar == "\\" else {
                result.unicodeScalars.append(scalar)
                continue
            }
            guard let next = iterator.next() else {
                throw WireError(.malformed, field: currentField, "dangling escape")
            }
            switch next {
            case "\"": result.append("\"")
            case "\\": result.append("\\")
            case "/": result.append("/")
            case "b": result.append("\u{08}")
            case "f": result.append("\u{0C}")
            case "n": result.append("\n")
            case "r": result.append("\r")
            case "t": result.append("\t")
            case "u":
                // A character outside the BMP is escaped as a UTF-16 surrogate pair (`\ud83d\ude00`, as
                // JSON.stringify and Python's json write it); a surrogate without its partner is refused.
                var code = try hexEscape(&iterator)
                if (0xD800...0xDBFF).contains(code) {
                    guard iterator.next() == "\\", iterator.next() == "u" else {
                        throw WireError(.malformed, field: currentField, "unpaired surrogate in a \\u escape")
                    }
                    let low = try hexEscape(&iterator)
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw WireError(.malformed, field: currentField, "unpaired surrogate in a \\u escape")
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let value = Unicode.Scalar(code) else {
                    throw WireError(.malformed, field: currentField, "unpaired surrogate in a \\u escape")
                }
                result.unicodeScalars.append(value)
            default: throw WireError(.malformed, field: currentField, "invalid escape \\\(next)")
            }
        }
        return result
    }

    private mutating func parseNumber() throws(WireError) -> JSONValue {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "i") || bytes[index] == UInt8(ascii: "I") {
                throw WireError(.nonFinite, field: currentField, "non-finite number is not allowed")
            }
        }
        var digits = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): isInteger = false
            case UInt8(ascii: "+"), UInt8(ascii: "-"): break
            default:
                return try finishNumber(start: start, isInteger: isInteger, digits: digits)
            }
            index += 1
        }
        throw truncated()
    }

    private func finishNumber(start: Int, isInteger: Bool, digits: Int) throws(WireError) -> JSONValue {
        guard digits > 0, index - start <= 64 else {
            throw WireError(.malformed, field: currentField, "invalid number")
        }
        let length = index - start
        let value = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 66) { pointer -> Double in
            for offset in 0..<length { pointer[offset] = CChar(bitPattern: bytes[start + offset]) }
            pointer[length] = 0
            var end: UnsafeMutablePointer<CChar>?
            let result = strtod(pointer.baseAddress!, &end)
            if let end, end - pointer.baseAddress! != length { return .nan }
            return result
        }
        guard !value.isNaN else { throw WireError(.malformed, field: currentField, "invalid number") }
        guard value.isFinite else {
            throw WireError(.nonFinite, field: currentField, "number is out of the finite range")
        }
        return .number(value, isInteger: isInteger)
    }
}
