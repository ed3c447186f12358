/// Writes commands in the only form the EA's naive extractor reads correctly: compact flat JSON,
/// `"key":value` with no spaces, each key once, strings without `"` or `\`, plain decimals, at most
/// 4096 bytes. Anything that would break that is refused rather than sent.
public enum CommandEncoder {
    /// The encoded bytes of `command`, or an error naming the field that cannot be sent.
    public static func encode(_ command: EACommand) throws(WireError) -> [UInt8] {
        var writer = Writer()
        try writer.string("type", command.typeName)
        switch command {
        case .fire(let fire):
            try writer.string("fire_id", fire.fireID)
            try writer.string("target_uuid", fire.targetUUID)
            try writer.string("symbol", fire.symbol)
            try writer.string("direction", fire.direction.rawValue)
            try writer.number("entry", fire.entry)
            try writer.number("sl", fire.sl)
            try writer.number("tp", fire.tp)
            try writer.number("lot", fire.lot, digits: 2)
            try writer.string("signal_id", fire.signalID)
            try writer.string("source", fire.source)
            try writer.string("timestamp", fire.timestamp.description)
        case .closeAll(let uuid, let time):
            try writer.string("target_uuid", uuid)
            try writer.string("timestamp", time.description)
        case .closeTicket(let uuid, let ticket, let time):
            try writer.string("target_uuid", uuid)
            writer.raw("ticket", String(ticket))
            try writer.string("timestamp", time.description)
        case .ping(let uuid, let pingID, let time):
            try writer.string("target_uuid", uuid)
            try writer.string("ping_id", pingID)
            try writer.string("timestamp", time.description)
        }
        let bytes = writer.finish()
        guard bytes.count <= WireLimits.maxCommandBytes else {
            throw WireError(
                .oversized, "command would be \(bytes.count) bytes; the EA reads at most \(WireLimits.maxCommandBytes)")
        }
        return bytes
    }

    struct Writer {
        var text = "{"
        var first = true

        mutating func raw(_ key: String, _ value: String) {
            if !first { text += "," }
            first = false
            text += "\"\(key)\":\(value)"
        }

        mutating func string(_ key: String, _ value: String) throws(WireError) {
            for scalar in value.unicodeScalars where scalar == "\"" || scalar == "\\" || scalar.value < 0x20 {
                throw WireError(
                    .unencodable, field: key, "contains a character the EA cannot read (quote, backslash or control)")
            }
            raw(key, "\"\(value)\"")
        }

        mutating func number(_ key: String, _ value: Double, digits: Int = 8) throws(WireError) {
            guard let text = PlainDecimal.format(value, maxFractionDigits: digits) else {
                throw WireError(.unencodable, field: key, "\(value) cannot be written as a plain decimal")
            }
            raw(key, text)
        }

        func finish() -> [UInt8] { Array((text + "}").utf8) }
    }
}
