#if canImport(Glibc)
    import Glibc
#endif

/// A TICK or OHLC read by `MarketScanner`.
public enum ScannedMarketMessage: Sendable, Equatable {
    case tick(Tick)
    case ohlc(OHLCBar)

    /// The same value as the full decoder's `EAMessage`.
    public var message: EAMessage {
        switch self {
        case .tick(let t): .tick(t)
        case .ohlc(let b): .ohlc(b)
        }
    }
}

/// The relay's fast path: reads a TICK or OHLC in one pass over its bytes, without building a field
/// table or a string per key, straight into the typed message.
///
/// It takes only the plain form the EA writes — a flat object of the message's own fields, once each,
/// ASCII strings without escapes, numbers `-?digits(.digits)?` — and answers nil for anything else
/// (another type, an unknown or repeated field, an escape, non-ASCII text, a null, a bad value…). A nil
/// is no verdict: the caller decodes such a message with `EAMessage.decode`, which gives the exact
/// message or the exact error. So the scanner never accepts what the decoder refuses, and what it
/// accepts equals the decoder's result (`MarketScannerTests` holds both to that).
public enum MarketScanner {
    // One bit per field, to notice a repeat or a missing one without a set.
    private static let typeBit: UInt16 = 1 << 0
    private static let nodeBit: UInt16 = 1 << 1
    private static let uuidBit: UInt16 = 1 << 2
    private static let symbolBit: UInt16 = 1 << 3
    private static let timestampBit: UInt16 = 1 << 4
    private static let bidBit: UInt16 = 1 << 5
    private static let askBit: UInt16 = 1 << 6
    private static let spreadBit: UInt16 = 1 << 7
    private static let volumeBit: UInt16 = 1 << 8
    private static let timeframeBit: UInt16 = 1 << 9
    private static let timeBit: UInt16 = 1 << 10
    private static let openBit: UInt16 = 1 << 11
    private static let highBit: UInt16 = 1 << 12
    private static let lowBit: UInt16 = 1 << 13
    private static let closeBit: UInt16 = 1 << 14

    private static let common: UInt16 = typeBit | nodeBit | uuidBit | symbolBit | timestampBit
    private static let tickFields: UInt16 = common | bidBit | askBit | spreadBit | volumeBit
    private static let ohlcFields: UInt16 = common | timeframeBit | timeBit | openBit | highBit | lowBit | closeBit

    /// Reads `bytes` as a TICK or OHLC in the EA's plain form; nil: decode it with `EAMessage.decode`.
    public static func scan(_ bytes: UnsafeRawBufferPointer) -> ScannedMarketMessage? {
        guard bytes.count <= WireLimits.maxMessageBytes, let base = bytes.baseAddress else { return nil }
        var cursor = Cursor(base: base.assumingMemoryBound(to: UInt8.self), end: bytes.count)
        var seen: UInt16 = 0
        var isTick = false
        var nodeID = (0, 0)
        var uuid = (0, 0)
        var symbol = (0, 0)
        var timestamp = (0, 0)
        var timeframe = (0, 0)
        var numbers = (
            bid: 0.0, ask: 0.0, spread: 0.0, volume: 0.0, time: 0.0, open: 0.0, high: 0.0, low: 0.0, close: 0.0
        )

        let walked = cursor.walkObject { cursor, key in
            let bit = field(cursor, key)
            guard bit != 0, seen & bit == 0 else { return false }
            seen |= bit
            switch bit {
            case typeBit:
                guard let value = cursor.plainString() else { return false }
                if cursor.equals(value, "TICK") { isTick = true } else if !cursor.equals(value, "OHLC") { return false }
            case nodeBit:
                guard let v = cursor.plainString() else { return false }
                nodeID = v
            case uuidBit:
                guard let v = cursor.plainString() else { return false }
                uuid = v
            case symbolBit:
                guard let v = cursor.plainString() else { return false }
                symbol = v
            case timestampBit:
                guard let v = cursor.plainString() else { return false }
                timestamp = v
            case timeframeBit:
                guard let v = cursor.plainString() else { return false }
                timeframe = v
            default:
                guard let value = cursor.number() else { return false }
                switch bit {
                case bidBit: numbers.bid = value
                case askBit: numbers.ask = value
                case spreadBit: numbers.spread = value
                case volumeBit: numbers.volume = value
                case timeBit: numbers.time = value
                case openBit: numbers.open = value
                case highBit: numbers.high = value
                case lowBit: numbers.low = value
                default: numbers.close = value
                }
            }
            return true
        }
        guard walked, seen == (isTick ? tickFields : ohlcFields) else { return nil }

        // The decoder's rules, field by field (`Tick.init(reading:)`, `OHLCBar.init(reading:)`).
        guard (1...64).contains(nodeID.1), uuid.1 <= 64, symbol.1 <= 32, timestamp.1 <= 32 else { return nil }
        let uuidText = cursor.text(uuid)
        let symbolText = cursor.text(symbol)
        guard UserID.isValid(uuidText), Symbol.isValid(symbolText),
            let time = MetaTraderTime(bytes: UnsafeBufferPointer(start: cursor.base + timestamp.0, count: timestamp.1))
        else { return nil }
        if isTick {
            guard numbers.bid >= 0, numbers.ask >= 0, numbers.spread >= 0, numbers.volume >= 0 else { return nil }
            return .tick(
                Tick(
                    nodeID: cursor.text(nodeID), userUUID: uuidText, symbol: symbolText, bid: numbers.bid,
                    ask: numbers.ask, spread: numbers.spread, volume: numbers.volume, timestamp: time))
        }
        guard timeframe.1 <= 4 else { return nil }
        let frame = cursor.text(timeframe)
        guard OHLCBar.timeframes.contains(frame), numbers.time >= 0, numbers.time.rounded() == numbers.time,
            numbers.time < 9.0e15, numbers.open > 0, numbers.high > 0, numbers.low > 0, numbers.close > 0,
            numbers.high >= numbers.low
        else { return nil }
        return .ohlc(
            OHLCBar(
                nodeID: cursor.text(nodeID), userUUID: uuidText, symbol: symbolText, timeframe: frame,
                time: Int(numbers.time), open: numbers.open, high: numbers.high, low: numbers.low,
                close: numbers.close, timestamp: time))
    }

    /// The bit of a key, 0 for a key these messages do not have.
    private static func field(_ c: Cursor, _ key: (Int, Int)) -> UInt16 {
        switch key.1 {
        case 3:
            if c.equals(key, "bid") { return bidBit }
            if c.equals(key, "ask") { return askBit }
            if c.equals(key, "low") { return lowBit }
        case 4:
            if c.equals(key, "type") { return typeBit }
            if c.equals(key, "time") { return timeBit }
            if c.equals(key, "open") { return openBit }
            if c.equals(key, "high") { return highBit }
        case 5: if c.equals(key, "close") { return closeBit }
        case 6:
            if c.equals(key, "symbol") { return symbolBit }
            if c.equals(key, "spread") { return spreadBit }
            if c.equals(key, "volume") { return volumeBit }
        case 7: if c.equals(key, "node_id") { return nodeBit }
        case 9:
            if c.equals(key, "user_uuid") { return uuidBit }
            if c.equals(key, "timestamp") { return timestampBit }
            if c.equals(key, "timeframe") { return timeframeBit }
        default: break
        }
        return 0
    }

    /// A position in the message; every read stops at the end.
    struct Cursor {
        let base: UnsafePointer<UInt8>
        let end: Int
        var index = 0

        init(base: UnsafePointer<UInt8>, end: Int) {
            self.base = base
            self.end = end
        }

        var atEnd: Bool { index == end }

        mutating func skipSpace() {
            while index < end {
                switch base[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < end, base[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string of printable ASCII without escapes: its (start, length), the cursor after its quote.
        mutating func plainString() -> (Int, Int)? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < end {
                let byte = base[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return (start, index - 1 - start)
                }
                guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
                index += 1
            }
            return nil
        }

        func peek(_ byte: UInt8) -> Bool { index < end && base[index] == byte }

        /// Walks a flat object in the plain form, from `{` to `}` and the end of the input: `member` gets
        /// each key's range with the cursor at its value, reads the value and returns false to give up.
        /// False when the object is not in that form or `member` gave up.
        mutating func walkObject(_ member: (inout Cursor, (Int, Int)) -> Bool) -> Bool {
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return false }
            skipSpace()
            while true {
                guard let key = plainString() else { return false }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return false }
                skipSpace()
                guard member(&self, key) else { return false }
                skipSpace()
                if take(UInt8(ascii: ",")) {
                    skipSpace()
                    continue
                }
                guard take(UInt8(ascii: "}")) else { return false }
                break
            }
            skipSpace()
            return atEnd
        }

        /// Whether two ranges of the message hold the same bytes.
        func same(_ a: (Int, Int), _ b: (Int, Int)) -> Bool {
            a.1 == b.1 && memcmp(base + a.0, base + b.0, a.1) == 0
        }

        func equals(_ range: (Int, Int), _ literal: StaticString) -> Bool {
            guard range.1 == literal.utf8CodeUnitCount else { return false }
            return memcmp(base + range.0, literal.utf8Start, range.1) == 0
        }

        func text(_ range: (Int, Int)) -> String {
            String(decoding: UnsafeBufferPointer(start: base + range.0, count: range.1), as: UTF8.self)
        }

        /// `-?digits(.digits)?`, read as the decoder reads it: exactly (a 15-digit mantissa and a power of
        /// ten are both exact doubles, so one division rounds correctly, as `strtod` does), else by `strtod`.
        mutating func number() -> Double? {
            let start = index
            let negative = take(UInt8(ascii: "-"))
            var mantissa: UInt64 = 0
            var digits = 0
            var fraction = 0
            var seenPoint = false
            while index < end {
                let byte = base[index]
                if byte >= 0x30 && byte <= 0x39 {
                    if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(byte - 0x30) }
                    digits += 1
                    if seenPoint { fraction += 1 }
                } else if byte == UInt8(ascii: "."), !seenPoint, digits > 0 {
                    seenPoint = true
                } else {
                    break
                }
                index += 1
            }
            guard digits > 0, !seenPoint || fraction > 0, index < end else { return nil }
            // The decoder reads a number up to the first byte that cannot be in one; anything of that
            // kind here (an exponent, a sign) is left to it.
            switch base[index] {
            case UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."):
                return nil
            default: break
            }
            let length = index - start
            if digits <= 15 && fraction < Cursor.powers.count {
                let value = Double(mantissa) / Cursor.powers[fraction]
                return negative ? -value : value
            }
            guard length <= 64 else { return nil }
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 66) { buffer -> Double? in
                for offset in 0..<length { buffer[offset] = CChar(bitPattern: base[start + offset]) }
                buffer[length] = 0
                var stop: UnsafeMutablePointer<CChar>?
                let value = strtod(buffer.baseAddress!, &stop)
                guard let stop, stop - buffer.baseAddress! == length, value.isFinite else { return nil }
                return value
            }
        }

        static let powers: [Double] = (0...22).map { exponent in
            var value = 1.0
            for _ in 0..<exponent { value *= 10 }
            return value
        }
    }
}
