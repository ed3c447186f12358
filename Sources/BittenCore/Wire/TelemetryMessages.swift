/// `handshake` on 5556, sent once when the EA starts.
public struct Handshake: Sendable, Equatable {
    /// The EA's node id.
    public var nodeID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The MetaTrader account number.
    public var accountNumber: Int
    /// The broker's company name.
    public var broker: String
    /// The broker's trade server.
    public var server: String
    /// The symbol of the chart the EA runs on.
    public var chartSymbol: String
    /// How many symbols the EA monitors.
    public var monitoredSymbols: Int
    /// The symbols in the EA's Market Watch.
    public var symbolList: [String]
    /// The account's balance, equity, margin and currency, as the EA reports them.
    public var account: AccountSnapshot
    /// The EA's version.
    public var version: String
    /// The socket type the EA says it uses.
    public var socketType: String
    /// When, as the sender stamped it.
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
    /// The EA's node id.
    public var nodeID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The MetaTrader account number.
    public var accountNumber: Int
    /// The account's balance, equity, margin and currency, as the EA reports them.
    public var account: AccountSnapshot
    /// Symbols the EA monitors.
    public var symbolsMonitored: Int
    /// Ticks the EA has processed, as it reports.
    public var ticksProcessed: Int
    /// When, as the sender stamped it.
    public var timestamp: MetaTraderTime

    /// A handshake.
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
    /// The EA's node id.
    public var nodeID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// Ticks the EA has processed, as it reports.
    public var ticksProcessed: Int
    /// When, as the sender stamped it.
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
    /// The EA's node id.
    public var nodeID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// The bid.
    public var bid: Double
    /// The ask.
    public var ask: Double
    /// The spread.
    public var spread: Double
    /// The tick volume.
    public var volume: Double
    /// When, as the sender stamped it.
    public var timestamp: MetaTraderTime

    /// Whether the quote can be used as a price: both sides positive and not crossed.
    public var usable: Bool { bid > 0 && ask > 0 && ask >= bid }

    /// A heartbeat.
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
    /// The EA's node id.
    public var nodeID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// The chart timeframe (`M5`, `H1`…).
    public var timeframe: String
    /// When (epoch seconds).
    public var time: Int
    /// The bar's open.
    public var open: Double
    /// The bar's high.
    public var high: Double
    /// The bar's low.
    public var low: Double
    /// The bar's close.
    public var close: Double
    /// When, as the sender stamped it.
    public var timestamp: MetaTraderTime

    /// The MetaTrader timeframes an OHLC may name.
    public static let timeframes: Set<String> = ["M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1", "MN1"]

    /// A tick.
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
