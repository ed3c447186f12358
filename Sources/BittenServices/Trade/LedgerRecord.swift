import Redis

/// How confirmations are kept in a shard's ledger stream. The confirmation service appends one stream
/// entry per batch and shard, with each confirmation as one `m` field (its own fields, length-prefixed:
/// `4:type12:confirmation…`), so a batch costs Redis one XADD instead of one per confirmation. An entry
/// without `m` fields (the position watcher's inferred closes) is one message by itself. A shard's owner
/// applies a stream entry whole, so its checkpoint is a stream entry id.
public enum LedgerRecord {
    /// One message's fields as an `m` value.
    public static func encode(_ fields: [(String, String)]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 12 })
        func item(_ text: String) {
            var text = text
            text.withUTF8 { utf8 in
                appendDecimal(utf8.count, to: &bytes)
                bytes.append(0x3A)  // :
                bytes.append(contentsOf: utf8)
            }
        }
        for (key, value) in fields {
            item(key)
            item(value)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A non-negative number's decimal digits.
    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        guard value >= 10 else { return bytes.append(0x30 + UInt8(value)) }
        appendDecimal(value / 10, to: &bytes)
        bytes.append(0x30 + UInt8(value % 10))
    }

    /// The fields of an `m` value, or nil when it is not one.
    public static func decode(_ text: String) -> [(String, String)]? {
        let bytes = Array(text.utf8)
        var fields: [(String, String)] = []
        var index = 0
        func item() -> String? {
            var length = 0
            var digits = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39, digits < 9 {
                length = length * 10 + Int(bytes[index] - 0x30)
                index += 1
                digits += 1
            }
            guard digits > 0, index < bytes.count, bytes[index] == 0x3A, index + 1 + length <= bytes.count else {
                return nil
            }
            defer { index += 1 + length }
            return String(decoding: bytes[(index + 1)..<(index + 1 + length)], as: UTF8.self)
        }
        while index < bytes.count {
            guard let key = item(), let value = item() else { return nil }
            fields.append((key, value))
        }
        return fields
    }

    /// The messages of a stream entry, each as an entry of its own with the id `streamID#n` (or the entry
    /// itself when it holds no `m` fields); an `m` value that cannot be read is an entry with no fields
    /// (it is counted as undecodable, never applied).
    public static func messages(of entry: StreamEntry) -> [StreamEntry] {
        let packed = entry.fields.filter { $0.0 == "m" }
        guard !packed.isEmpty else { return [entry] }
        return packed.enumerated().map { index, field in
            StreamEntry(id: "\(entry.id)#\(index)", fields: decode(field.1) ?? [])
        }
    }
}
