/// `handshake` on 5556, sent once when the EA starts.
public struct Handshake: Sendable, Equatable {
    public var nodeID: String
    public var userUUID: String
    public var accountNumber: Int
    public var broker: String
    public var server: String
    public var chartSymbol: String
    public var monitoredSymbols: Int
    public var symbolList: [String]
    public var account: AccountSnapshot
    public var version: String
    public var socketType: String
    public var timestamp: MetaTraderTime

    init(reading r: FieldReader) throws(WireError) {
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        userUUID = try r.uuid("user_uuid")
        accountNumber = try r.intOrString("account")
        broker = try r.string("broker")
        server = try r.string("server")
        chartSymbol = try r.string("chart_symbol", maxLength: 32)
        monitoredSymbols = try r.int("monitored_symbols", nonNegative: true)
        symbolList = try r.string("symbol_list", maxLength: WireLimits.maxListLength)
            .split(separator: ",").map { String($0) }
        account = try AccountSnapshot(reading: r, requireMargin: false, requireFreeMargin: false)
        version = try r.string("version", maxLength: 32)
        socketType = try r.optionalString("socket_type", maxLength: 16) ?? ""
        timestamp = try r.timestamp()
    }
}

/// `heartbeat` on 5556, every 30 s.
public struct TelemetryHeartbeat: Sendable, Equatable {
    public var nodeID: String
    public var userUUID: String
    public var accountNumber: Int
    public var account: AccountSnapshot
    public var symbolsMonitored: Int
    public var ticksProcessed: Int
    public var timestamp: MetaTraderTime

    public init(
        nodeID: String, userUUID: String, accountNumber: Int, account: AccountSnapshot, symbolsMonitored: Int,
        ticksProcessed: Int, timestamp: MetaTraderTime
    ) {
        self.nodeID = nodeID
        self.userUUID = userUUID
        self.accountNumber = accountNumber
        self.account = account
        self.symbolsMonitored = symbolsMonitored
        self.ticksProcessed = ticksProcessed
        self.timestamp = timestamp
    }

    init(reading r: FieldReader) throws(WireError) {
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        userUUID = try r.uuid("user_uuid")
        accountNumber = try r.intOrString("account")
        account = try AccountSnapshot(reading: r, requireMargin: false, requireFreeMargin: true)
        symbolsMonitored = try r.int("symbols_monitored", nonNegative: true)
        ticksProcessed = try r.int("ticks_processed", nonNegative: true)
        timestamp = try r.timestamp()
    }
}

/// `DISCONNECT` on 5556, sent when the EA stops.
public struct Disconnect: Sendable, Equatable {
    public var nodeID: String
    public var userUUID: String
    public var ticksProcessed: Int
    public var timestamp: MetaTraderTime

    init(reading r: FieldReader) throws(WireError) {
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        userUUID = try r.uuid("user_uuid")
        ticksProcessed = try r.optionalInt("ticks_processed", nonNegative: true) ?? 0
        timestamp = try r.timestamp()
    }
}

/// `TICK` on 5556: one quote.
public struct Tick: Sendable, Equatable {
    public var nodeID: String
    public var userUUID: String
    public var symbol: String
    public var bid: Double
    public var ask: Double
    public var spread: Double
    public var volume: Double
    public var timestamp: MetaTraderTime

    /// Whether the quote can be used as a price: both sides positive and not crossed.
    public var usable: Bool { bid > 0 && ask > 0 && ask >= bid }

    public init(
        nodeID: String, userUUID: String, symbol: String, bid: Double, ask: Double, spread: Double,
        volume: Double, timestamp: MetaTraderTime
    ) {
        self.nodeID = nodeID
        self.userUUID = userUUID
        self.symbol = symbol
        self.bid = bid
        self.ask = ask
        self.spread = spread
        self.volume = volume
        self.timestamp = timestamp
    }

    init(reading r: FieldReader) throws(WireError) {
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        userUUID = try r.uuid("user_uuid")
        symbol = try Symbol.validated(r.string("symbol", maxLength: 32), field: "symbol")
        // The EA sends a zero or crossed quote for a moment (a symbol just selected, a feed gap): it is
        // accepted and counted, but `usable` keeps it out of every price.
        bid = try r.double("bid", nonNegative: true)
        ask = try r.double("ask", nonNegative: true)
        spread = try r.double("spread", nonNegative: true)
        volume = try r.double("volume", nonNegative: true)
        timestamp = try r.timestamp()
    }
}

/// `OHLC` on 5556: one completed bar.
public struct OHLCBar: Sendable, Equatable {
    public var nodeID: String
    public var userUUID: String
    public var symbol: String
    public var timeframe: String
    public var time: Int
    public var open: Double
    public var high: Double
    public var low: Double
    public var close: Double
    public var timestamp: MetaTraderTime

    /// The MetaTrader timeframes an OHLC may name.
    public static let timeframes: Set<String> = ["M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1", "MN1"]

    public init(
        nodeID: String, userUUID: String, symbol: String, timeframe: String, time: Int, open: Double,
        high: Double, low: Double, close: Double, timestamp: MetaTraderTime
    ) {
        self.nodeID = nodeID
        self.userUUID = userUUID
        self.symbol = symbol
        self.timeframe = timeframe
        self.time = time
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.timestamp = timestamp
    }

    init(reading r: FieldReader) throws(WireError) {
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        userUUID = try r.uuid("user_uuid")
        symbol = try Symbol.validated(r.string("symbol", maxLength: 32), field: "symbol")
        timeframe = try r.string("timeframe", maxLength: 4)
        guard Self.timeframes.contains(timeframe) else {
            throw WireError(.outOfRange, field: "timeframe", "'\(timeframe)' is not a MetaTrader timeframe")
        }
        time = try r.int("time", nonNegative: true)
        open = try r.price("open")
        high = try r.price("high")
        low = try r.price("low")
        close = try r.price("close")
        guard high >= low else { throw WireError(.outOfRange, field: "high", "high \(high) is below low \(low)") }
        timestamp = try r.timestamp()
    }
}

/// Rules for symbols that end up inside Redis keys and PUB topics.
public enum Symbol {
    /// Letters, digits and the characters brokers decorate names with (`._#-+!$&[]`), 1–32 bytes:
    /// `EURUSD.r`, `EURUSDm`, `EURUSD-ECN`, `US30+`, `[DJI30]`, `#AAPL`. Never a quote, backslash,
    /// space, `:`, `*` or `{}`, so a symbol is safe in a Redis key, a PUB topic and a command.
    public static func isValid(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { isValid(bytes: $0) }
    }

    /// The same rule over the bytes (every TICK is checked: a loop over contiguous bytes, not the
    /// string's generic UTF-8 view).
    public static func isValid(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard (1...32).contains(bytes.count) else { return false }
        for byte in bytes {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: continue
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "#"), UInt8(ascii: "-"), UInt8(ascii: "+"),
                UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "["), UInt8(ascii: "]"):
                continue
            default: return false
            }
        }
        return true
    }

    static func validated(_ text: String, field: String) throws(WireError) -> String {
        guard isValid(text) else { throw WireError(.outOfRange, field: field, "'\(text)' is not a valid symbol") }
        return text
    }
}
