/// A request on the CITADEL query socket (5566).
public enum CitadelRequest: Sendable, Equatable {
    /// `{"type":"protection_query","symbol":…,"direction":…,"entry":…,"sl":…}`, or the original
    /// `{"symbol":"EURUSD","entry_price":1.17450}` (no `type`, no direction).
    case protection(ProtectionQuery)
    /// `{"type":"zones","symbol":…}`.
    case zones(symbol: String)

    /// The largest request accepted (bytes).
    public static let maxBytes = 4096

    /// A query from its JSON (a protection query or a zones query); a bad one names its field.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> CitadelRequest {
        let r = try FieldReader(parsing: bytes, maxBytes: maxBytes)
        let type = try r.optionalString("type", maxLength: 32) ?? "protection_query"
        let symbol = try r.string("symbol", maxLength: 32)
        guard Symbol.isValid(symbol) else {
            throw WireError(.outOfRange, field: "symbol", "'\(symbol)' is not a valid symbol")
        }
        switch type {
        case "zones":
            return .zones(symbol: symbol)
        case "protection_query", "protection", "score":
            let entryKey = r["entry"] != nil && r["entry"] != .null ? "entry" : "entry_price"
            let entry = try r.price(entryKey)
            var direction: Direction?
            if let text = try r.optionalString("direction", maxLength: 8) {
                guard let parsed = Direction(rawValue: text.uppercased()) else {
                    throw WireError(.outOfRange, field: "direction", "'\(text)' is not BUY or SELL")
                }
                direction = parsed
            }
            let slKey = r["sl"] != nil && r["sl"] != .null ? "sl" : "stop_loss"
            var stopLoss: Double?
            if r[slKey] != nil && r[slKey] != .null { stopLoss = try r.price(slKey) }
            if let stopLoss, let direction {
                let rightSide = direction == .buy ? stopLoss < entry : stopLoss > entry
                guard rightSide else {
                    throw WireError(
                        .outOfRange, field: slKey,
                        "stop \(stopLoss) is on the wrong side of the entry \(entry) for \(direction.rawValue)")
                }
            }
            return .protection(ProtectionQuery(symbol: symbol, direction: direction, entry: entry, stopLoss: stopLoss))
        default:
            throw WireError(.unknownType, field: "type", "unknown query type '\(type)' (protection_query or zones)")
        }
    }

    /// The protocol's error reply.
    public static func errorReply(_ error: WireError) -> JSONValue {
        .object([
            "error": .string(error.description), "protection_score": .number(1.0, isInteger: false),
            "risk_level": .string("ERROR"),
        ])
    }
}
