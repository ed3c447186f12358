extension JSONValue {
    /// Compact JSON text. Numbers print as plain decimals (no exponent); keys are sorted so that
    /// the same value always gives the same text.
    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .string(let text): JSONValue.writeString(text, to: &out)
        case .number(let value, let isInteger):
            if isInteger, abs(value) < 9.0e15 {
                out += String(Int64(value))
            } else {
                out += PlainDecimal.format(value, maxFractionDigits: 10) ?? "null"
            }
        case .bool(let flag): out += flag ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let object):
            out += "{"
            for (index, key) in object.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                JSONValue.writeString(key, to: &out)
                out += ":"
                object[key]?.write(to: &out)
            }
            out += "}"
        }
    }

    /// A flat object of strings as compact JSON, keys sorted (the events and notes the trade engine stores).
    public static func serialize(_ fields: [String: String]) -> String {
        serialize(sortedPairs(fields, setting: nil))
    }

    /// `fields` with `key` set to `value` (replacing a field of that name), as `serialize(_:)` writes it, without
    /// copying the dictionary to set one field.
    public static func serialize(_ fields: [String: String], setting key: String, to value: String) -> String {
        serialize(sortedPairs(fields, setting: (key, value)))
    }

    /// The fields (with `extra` set) as pairs in key order.
    private static func sortedPairs(_ fields: [String: String], setting extra: (key: String, value: String)?)
        -> [(key: String, value: String)]
    {
        var pairs: [(key: String, value: String)] = []
        pairs.reserveCapacity(fields.count + 1)
        for pair in fields where pair.key != extra?.key { pairs.append(pair) }
        if let extra { pairs.append(extra) }
        pairs.sort { $0.key < $1.key }
        return pairs
    }

    /// Pairs already in key order as a compact JSON object.
    private static func serialize(_ pairs: [(key: String, value: String)]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(pairs.count * 32)
        out.append(0x7B)
        for (index, pair) in pairs.enumerated() {
            if index > 0 { out.append(0x2C) }
            appendString(pair.key, to: &out)
            out.append(0x3A)
            appendString(pair.value, to: &out)
        }
        out.append(0x7D)
        return String(decoding: out, as: UTF8.self)
    }

    /// An array of strings as compact JSON.
    public static func serialize(_ strings: [String]) -> String {
        var out: [UInt8] = []
        appendArray(strings, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends an array of strings as compact JSON, as UTF-8 bytes.
    public static func appendArray(_ strings: [String], to out: inout [UInt8]) {
        out.append(0x5B)
        for (index, text) in strings.enumerated() {
            if index > 0 { out.append(0x2C) }
            appendString(text, to: &out)
        }
        out.append(0x5D)
    }

    /// Appends a JSON string literal as UTF-8 bytes (quotes, backslashes and control characters escaped).
    public static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(0x22)
        // Most text needs no escape: its bytes appended whole, in one scan of the contiguous storage.
        let whole: Bool? = text.utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes where byte < 0x20 || byte == 0x22 || byte == 0x5C { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if whole == true {
            out.append(0x22)
            return
        }
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
                if start < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index])) }
                start = index + 1
                out.append(0x5C)
                switch byte {
                case 0x22, 0x5C: out.append(byte)
                case 0x0A: out.append(0x6E)
                case 0x0D: out.append(0x72)
                case 0x09: out.append(0x74)
                default:
                    out.append(0x75)
                    out.append(0x30)
                    out.append(0x30)
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 0xF))
                }
            }
            if start < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
        }
        out.append(0x22)
    }

    @inline(__always)
    private static func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 + value : 0x57 + value }

    static func writeString(_ text: String, to out: inout String) {
        // Most text needs no escape: appended whole.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            out += "\""
            out += text
            out += "\""
            return
        }
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
