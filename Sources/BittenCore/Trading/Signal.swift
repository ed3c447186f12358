/// A trade signal from a signal engine, validated. Extra fields the engine sends are kept in
/// `extras` and published again, untouched.
public struct Signal: Sendable, Equatable {
    /// The signal's id.
    public var signalID: String
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// `BUY` or `SELL`.
    public var direction: Direction
    /// The entry price.
    public var entry: Double
    /// The stop loss price (0: none).
    public var stopLoss: Double
    /// The take profit price (0: none).
    public var takeProfit: Double
    /// The signal engine's confidence, 0–100.
    public var confidence: Double?
    /// The pattern the signal engine saw.
    public var pattern: String?
    /// The chart timeframe (`M5`, `H1`…).
    public var timeframe: String?
    /// Where it came from.
    public var source: String
    /// Epoch seconds when the engine made it.
    public var createdAt: Double
    /// Epoch seconds after which it can no longer be fired.
    public var expiresAt: Double
    /// Every field as received.
    public var extras: [String: JSONValue]

    /// The prefix the original engine puts before the JSON.
    public static let wirePrefix = "ELITE_GUARD_SIGNAL "
    /// The largest signal accepted (bytes).
    public static let maxBytes = 8 * 1024

    /// Whether the stop loss lies on the losing side of the entry (below for BUY, above for SELL).
    public var stopIsOnTheRightSide: Bool {
        direction == .buy ? stopLoss < entry : stopLoss > entry
    }

    /// Decodes a signal in the engine's shape or the short form, with or without the
    /// `ELITE_GUARD_SIGNAL ` prefix. `now` fills a missing timestamp; `defaultTTL` a missing expiry.
    public static func decode(_ input: [UInt8], now: Double, defaultTTL: Double) throws(WireError) -> Signal {
        var bytes = input
        let prefix = Array(wirePrefix.utf8)
        if bytes.starts(with: prefix) { bytes.removeFirst(prefix.count) }
        let r = try FieldReader(parsing: bytes, maxBytes: maxBytes)
        let id = try r.string("signal_id", maxLength: 128, allowEmpty: false)
        guard SignalID.isValid(id) else {
            throw WireError(.outOfRange, field: "signal_id", "'\(id)' may hold only letters, digits, _ - . :")
        }
        var symbolText = try r.optionalString("symbol", maxLength: 32)
        if symbolText == nil { symbolText = try r.string("pair", maxLength: 32) }
        let symbol = try Symbol.validated((symbolText ?? "").uppercased(), field: "symbol")
        var sideText = try r.optionalString("direction", maxLength: 8)
        if sideText == nil { sideText = try r.string("side", maxLength: 8) }
        guard let direction = Direction(rawValue: (sideText ?? "").uppercased()) else {
            throw WireError(.outOfRange, field: "direction", "'\(sideText ?? "")' is neither BUY nor SELL")
        }
        func price(_ long: String, _ short: String) throws(WireError) -> Double {
            if r[long] != nil && r[long] != .null { return try r.price(long) }
            return try r.price(short)
        }
        let entry = try price("entry_price", "entry")
        let sl = try price("stop_loss", "sl")
        let tp = try price("take_profit", "tp")
        let confidence = try r.optionalDouble("confidence", nonNegative: true)
        if let confidence, confidence > 100 {
            throw WireError(.outOfRange, field: "confidence", "must be 0-100 (got \(confidence))")
        }
        let created: Double
        switch r["timestamp"] {
        case nil, .null?: created = now
        case .number(let value, _)?:
            guard value > 0 else { throw WireError(.outOfRange, field: "timestamp", "must be positive epoch seconds") }
            created = value
        case .string(let text)?:
            guard let epoch = ISOTime.epochSeconds(text) else {
                throw WireError(.badTimestamp, field: "timestamp", "'\(text)' is neither epoch seconds nor ISO 8601")
            }
            created = epoch
        case let other?:
            throw WireError(.wrongType, field: "timestamp", "expected a number or a string, got \(other.typeName)")
        }
        var expires = created + defaultTTL
        if let text = try r.optionalString("expires_at", maxLength: 40) {
            guard let epoch = ISOTime.epochSeconds(text) else {
                throw WireError(.badTimestamp, field: "expires_at", "'\(text)' is not an ISO 8601 time")
            }
            expires = epoch
        }
        return Signal(
            signalID: id, symbol: symbol, direction: direction, entry: entry, stopLoss: sl, takeProfit: tp,
            confidence: confidence, pattern: try r.optionalString("pattern", maxLength: 64),
            timeframe: try r.optionalString("timeframe", maxLength: 8),
            source: try r.optionalString("source", maxLength: 64) ?? "signal_engine", createdAt: created,
            expiresAt: expires, extras: r.object)
    }

    /// The signal as a JSON object: every field received, with the normalised fields and `added`.
    public func json(adding added: [String: JSONValue] = [:]) -> String {
        var object = extras
        object["signal_id"] = .string(signalID)
        object["symbol"] = .string(symbol)
        object["direction"] = .string(direction.rawValue)
        object["entry_price"] = .number(entry, isInteger: false)
        object["stop_loss"] = .number(stopLoss, isInteger: false)
        object["take_profit"] = .number(takeProfit, isInteger: false)
        object["created_at"] = .number(createdAt, isInteger: false)
        object["expires_at_epoch"] = .number(expiresAt, isInteger: false)
        for (key, value) in added { object[key] = value }
        return JSONValue.object(object).serialized
    }
}

/// Signal identifiers end up in Redis keys: letters, digits, `_ - . :`, 3–128 characters.
public enum SignalID {
    /// Letters, digits, `_`, `-`, `.`, `:`; 3 to 128 characters.
    public static func isValid(_ text: String) -> Bool {
        guard (3...128).contains(text.utf8.count) else { return false }
        return text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x5F || byte == 0x2D || byte == 0x2E || byte == 0x3A
        }
    }
}

/// ISO 8601 times as signal engines write them: `2026-11-24T16:10:00`, optional fraction, `Z` or
/// `±HH:MM`; no zone means UTC.
public enum ISOTime {
    /// Epoch seconds of an ISO 8601 time, or nil.
    public static func epochSeconds(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x54 || bytes[10] == 0x20,
            bytes[13] == 0x3A, bytes[16] == 0x3A
        else { return nil }
        var mt = bytes.prefix(19).map { $0 }
        mt[4] = 0x2E
        mt[7] = 0x2E
        mt[10] = 0x20
        guard let base = MetaTraderTime(String(decoding: mt, as: UTF8.self)) else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == 0x2E {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                fraction += Double(bytes[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
            if index == start { return nil }
        }
        var offset = 0
        if index < bytes.count {
            switch bytes[index] {
            case 0x5A: index += 1
            case 0x2B, 0x2D:
                let sign = bytes[index] == 0x2B ? 1 : -1
                let rest = Array(bytes[(index + 1)...]).filter { $0 != 0x3A }
                guard rest.count == 4, rest.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
                let hours = Int(rest[0] - 0x30) * 10 + Int(rest[1] - 0x30)
                let minutes = Int(rest[2] - 0x30) * 10 + Int(rest[3] - 0x30)
                offset = sign * (hours * 3600 + minutes * 60)
                index = bytes.count
            default: return nil
            }
        }
        guard index == bytes.count else { return nil }
        return Double(base.epochSeconds - offset) + fraction
    }
}
