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
            if isInteger, abs(value) < 9.0e15 { out += String(Int64(value)) } else { out += PlainDecimal.format(value, maxFractionDigits: 10) ?? "null" }
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
        var out = "{"
        for (index, key) in fields.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            writeString(key, to: &out)
            out += ":"
            writeString(fields[key]!, to: &out)
        }
        return out + "}"
    }

    /// An array of strings as compact JSON (the confirmation spool's and journal's lines).
    public static func serialize(_ strings: [String]) -> String {
        var out = "["
        for (index, text) in strings.enumerated() {
            if index > 0 { out += "," }
            writeString(text, to: &out)
        }
        return out + "]"
    }

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
