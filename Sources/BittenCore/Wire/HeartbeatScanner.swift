/// The heartbeat's fast path: reads a `HEARTBEAT` (5555) or `heartbeat` (5556) in one pass over its
/// bytes, without a field table or a string per key. At 10 000 EAs, two heartbeats a second each were
/// the server's most frequent message.
///
/// Like `MarketScanner`, it takes only the EA's plain form — a flat object, each key once, ASCII strings
/// without escapes, numbers `-?digits(.digits)?` — and answers nil for anything else, which the caller
/// then decodes with `EAMessage.decode` for the exact message or the exact error. Fields the decoder does
/// not read (`socket_type`, `symbols_monitored` on 5555…) are skipped when their value is a plain string
/// or number, and must not repeat either. What it accepts equals the decoder's result
/// (`HeartbeatScannerTests` holds both to that).
public enum HeartbeatScanner {
    private static let typeBit: UInt16 = 1 << 0
    private static let nodeBit: UInt16 = 1 << 1
    private static let uuidBit: UInt16 = 1 << 2
    private static let accountBit: UInt16 = 1 << 3
    private static let currencyBit: UInt16 = 1 << 4
    private static let balanceBit: UInt16 = 1 << 5
    private static let equityBit: UInt16 = 1 << 6
    private static let leverageBit: UInt16 = 1 << 7
    private static let marginBit: UInt16 = 1 << 8
    private static let freeMarginBit: UInt16 = 1 << 9
    private static let marginLevelBit: UInt16 = 1 << 10
    private static let symbolsBit: UInt16 = 1 << 11
    private static let ticksBit: UInt16 = 1 << 12
    private static let timestampBit: UInt16 = 1 << 13

    /// Required on both (margin is optional).
    private static let common: UInt16 =
        typeBit | nodeBit | uuidBit | currencyBit | balanceBit | equityBit | leverageBit
        | freeMarginBit | marginLevelBit | ticksBit | timestampBit
    /// Unknown keys kept to notice a repeat; more than this many and the decoder takes the message.
    private static let maxUnknown = 8

    /// Reads `bytes` as the heartbeat of `channel` (`.command`: HEARTBEAT, `.market`: heartbeat) in the
    /// EA's plain form; nil: decode it with `EAMessage.decode`.
    public static func scan(_ bytes: UnsafeRawBufferPointer, channel: EAChannel) -> EAMessage? {
        guard channel != .confirm, bytes.count <= WireLimits.maxMessageBytes, let base = bytes.baseAddress else {
            return nil
        }
        let dealer = channel == .command
        // On 5555 the UUID is `target_uuid` and there is no account number; on 5556 `user_uuid` and `account`.
        let required = dealer ? common : common | accountBit | symbolsBit
        var cursor = MarketScanner.Cursor(base: base.assumingMemoryBound(to: UInt8.self), end: bytes.count)
        var seen: UInt16 = 0
        // Keys the decoder ignores, kept to notice a repeat: on the stack (every 5556 heartbeat has one,
        // `socket_type`; an array would be a heap allocation per heartbeat).
        var unknown = (count: 0, keys: ((0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0)))
        var node = (0, 0)
        var uuid = (0, 0)
        var currency = (0, 0)
        var timestamp = (0, 0)
        var accountText: (Int, Int)?
        var numbers = (
            account: 0.0, balance: 0.0, equity: 0.0, leverage: 0.0, margin: 0.0, freeMargin: 0.0,
            marginLevel: 0.0, symbols: 0.0, ticks: 0.0
        )

        let walked = cursor.walkObject { cursor, key in
            let bit = field(cursor, key, dealer: dealer)
            if bit == 0 {
                // A field the decoder does not read: a plain value, and not a repeat.
                guard unknown.count < maxUnknown else { return false }
                let seenBefore = withUnsafeBytes(of: &unknown.keys) { raw in
                    raw.bindMemory(to: (Int, Int).self).prefix(unknown.count).contains { cursor.same($0, key) }
                }
                guard !seenBefore else { return false }
                withUnsafeMutableBytes(of: &unknown.keys) { $0.bindMemory(to: (Int, Int).self)[unknown.count] = key }
                unknown.count += 1
                if cursor.peek(UInt8(ascii: "\"")) { return cursor.plainString() != nil }
                return cursor.number() != nil
            }
            guard seen & bit == 0 else { return false }
            seen |= bit
            switch bit {
            case typeBit:
                guard let value = cursor.plainString(), cursor.equals(value, dealer ? "HEARTBEAT" : "heartbeat") else {
                    return false
                }
            case nodeBit:
                guard let v = cursor.plainString() else { return false }
                node = v
            case uuidBit:
                guard let v = cursor.plainString() else { return false }
                uuid = v
            case currencyBit:
                guard let v = cursor.plainString() else { return false }
                currency = v
            case timestampBit:
                guard let v = cursor.plainString() else { return false }
                timestamp = v
            case accountBit:
                // The decoder takes the account as digits in a string too.
                if cursor.peek(UInt8(ascii: "\"")) {
                    guard let v = cursor.plainString() else { return false }
                    accountText = v
                } else {
                    guard let value = cursor.number() else { return false }
                    numbers.account = value
                }
            default:
                guard let value = cursor.number() else { return false }
                switch bit {
                case balanceBit: numbers.balance = value
                case equityBit: numbers.equity = value
                case leverageBit: numbers.leverage = value
                case marginBit: numbers.margin = value
                case freeMarginBit: numbers.freeMargin = value
                case marginLevelBit: numbers.marginLevel = value
                case symbolsBit: numbers.symbols = value
                default: numbers.ticks = value
                }
            }
            return true
        }
        guard walked, seen & required == required else { return nil }

        // The decoder's rules, field by field (`DealerHeartbeat`, `TelemetryHeartbeat`, `AccountSnapshot`).
        guard (1...64).contains(node.1), uuid.1 <= 64, currency.1 <= 8, timestamp.1 <= 32 else { return nil }
        let uuidText = cursor.text(uuid)
        guard UserID.isValid(uuidText),
            let time = MetaTraderTime(bytes: UnsafeBufferPointer(start: cursor.base + timestamp.0, count: timestamp.1)),
            let leverage = integer(numbers.leverage, nonNegative: true),
            let ticks = integer(numbers.ticks, nonNegative: true)
        else { return nil }
        let hasMargin = seen & marginBit != 0
        guard !hasMargin || numbers.margin >= 0 else { return nil }
        let account = AccountSnapshot(
            currency: cursor.text(currency), balance: numbers.balance, equity: numbers.equity,
            leverage: leverage, margin: hasMargin ? numbers.margin : nil,
            freeMargin: numbers.freeMargin, marginLevel: numbers.marginLevel)
        if dealer {
            return .heartbeat(
                DealerHeartbeat(
                    targetUUID: uuidText, nodeID: cursor.text(node), account: account,
                    ticksProcessed: ticks, timestamp: time))
        }
        let accountNumber: Int
        if let accountText {
            guard let value = Int(cursor.text(accountText)) else { return nil }
            accountNumber = value
        } else {
            guard let value = integer(numbers.account, nonNegative: false) else { return nil }
            accountNumber = value
        }
        guard let symbols = integer(numbers.symbols, nonNegative: true) else { return nil }
        return .telemetryHeartbeat(
            TelemetryHeartbeat(
                nodeID: cursor.text(node), userUUID: uuidText, accountNumber: accountNumber,
                account: account, symbolsMonitored: symbols, ticksProcessed: ticks,
                timestamp: time))
    }

    /// `FieldReader.int`: a whole number below 9e15 (negative only where allowed).
    private static func integer(_ value: Double, nonNegative: Bool) -> Int? {
        guard value.rounded() == value, abs(value) < 9.0e15, !nonNegative || value >= 0 else { return nil }
        return Int(value)
    }

    /// The bit of a key the heartbeat of this channel reads, 0 for any other.
    private static func field(_ c: MarketScanner.Cursor, _ key: (Int, Int), dealer: Bool) -> UInt16 {
        switch key.1 {
        case 4: if c.equals(key, "type") { return typeBit }
        case 6:
            if c.equals(key, "equity") { return equityBit }
            if c.equals(key, "margin") { return marginBit }
        case 7:
            if c.equals(key, "node_id") { return nodeBit }
            if c.equals(key, "balance") { return balanceBit }
            if !dealer, c.equals(key, "account") { return accountBit }
        case 8:
            if c.equals(key, "currency") { return currencyBit }
            if c.equals(key, "leverage") { return leverageBit }
        case 9:
            if c.equals(key, "timestamp") { return timestampBit }
            if !dealer, c.equals(key, "user_uuid") { return uuidBit }
        case 11:
            if c.equals(key, "free_margin") { return freeMarginBit }
            if dealer, c.equals(key, "target_uuid") { return uuidBit }
        case 12: if c.equals(key, "margin_level") { return marginLevelBit }
        case 15: if c.equals(key, "ticks_processed") { return ticksBit }
        case 17: if !dealer, c.equals(key, "symbols_monitored") { return symbolsBit }
        default: break
        }
        return 0
    }
}
