/// The Redis key schema (see architecture.md and the README): every key Bitten writes is built here or,
/// for a trade shard's keys, by `ShardKeys`.
public enum RedisKeys {
    /// An EA node's hash.
    public static func node(_ uuid: String) -> String { "node:\(uuid)" }
    /// The set of online nodes.
    public static let activeNodes = "active_nodes"
    /// A node's lifecycle history.
    public static func nodeHistory(_ uuid: String) -> String { "node_history:\(uuid)" }
    /// A node's account switches.
    public static func accountSwitches(_ uuid: String) -> String { "account_switches:\(uuid)" }
    /// A broker's node counts.
    public static func brokerStats(_ broker: String) -> String { "broker_stats:\(safe(broker))" }
    /// The latest system alerts.
    public static let systemAlerts = "system_alerts"
    /// CITADEL alerts, newest first, bounded.
    public static let citadelAlerts = "citadel:alerts"
    /// The services board as last published.
    public static let services = "bitten:services"
    /// The health score as last published.
    public static let health = "bitten:health"

    // MARK: operator controls

    /// The system's trading state (`TradingControlStore`): state, reason, by, at, version, close_all.
    public static let tradingControl = "bitten:control"
    /// Per trade process: the version of the trading state it enforces and when it said so.
    public static let tradingControlAcks = "bitten:control:acks"
    /// Who performed the close-all of a state change for one shard (claimed once).
    public static func tradingCloseAll(version: Int, shard: Int) -> String {
        "bitten:control:closeall:\(version):\(shard)"
    }

    // MARK: concentration limits

    /// Lots open or in flight on a symbol, a field per trade shard. The concentration keys share one hash tag, so
    /// that a fire holds its symbol's and its signal's lots in one step, on a Redis Cluster too.
    public static func concentrationSymbol(_ symbol: String) -> String { "concentration:{lots}:symbol:\(safe(symbol))" }
    /// Lots open or in flight of a signal, a field per trade shard.
    public static func concentrationSignal(_ id: String) -> String { "concentration:{lots}:signal:\(id)" }
    /// Every concentration key ever held (the owners look through them for holds left by a crash).
    public static let concentrationKeys = "concentration:{lots}:keys"
    /// Whether a concentration key is a signal's (kept two days past the signal, not for ever).
    public static func isConcentrationSignal(_ key: String) -> Bool { key.hasPrefix("concentration:{lots}:signal:") }

    // MARK: the flight recorder

    /// A signal's own trace (intake, refused attempts): a stream, kept 30 days.
    public static func signalTrace(_ id: String) -> String { "trace:signal:\(id)" }
    /// The fires made of a signal, by time.
    public static func signalTraceFires(_ id: String) -> String { "trace:signal:\(id):fires" }
    /// A fire's trace (checks, command, answers, close): a stream, kept 30 days.
    public static func fireTrace(_ id: String) -> String { "trace:fire:\(id)" }

    // MARK: signals and trade events

    /// A signal as stored with its CITADEL score (`TradeStore`).
    public static func signal(_ id: String) -> String { "signal:\(id)" }
    /// Signal ids by arrival time, the newest 1 000.
    public static let signalsRecent = "signals:recent"
    /// The pub/sub channel of trade events (one message per commit, one JSON object per line): the
    /// webhook's and any subscriber's source.
    public static let events = "bitten:events"

    // MARK: scale-out routing

    /// A gateway's inbox of commands for its EAs, asked by other processes (`GatewayRouting`).
    public static func gatewayInbox(_ gateway: String) -> String { "gateway:\(gateway):inbox" }
    /// Where a gateway answers one routed command.
    public static func gatewayReply(_ request: String) -> String { "gateway:reply:\(request)" }
    /// Set with a short expiry while a gateway's inbox loop runs.
    public static func gatewayAlive(_ gateway: String) -> String { "gateway:\(gateway):alive" }
    /// A trade shard's inbox of fires, closes and user saves asked by other processes (`ShardRouting`).
    public static func shardInbox(_ shard: Int) -> String { ShardKeys(shard: shard).list("inbox") }
    /// Where a shard's owner answers one routed request.
    public static func shardReply(_ request: String) -> String { "shard:reply:\(request)" }

    /// A free-text name (a broker) made safe to embed in a key: anything outside `[A-Za-z0-9._-]` becomes `_`.
    public static func safe(_ text: String) -> String {
        let mapped = text.unicodeScalars.prefix(64).map { scalar -> Character in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": Character(scalar)
            default: "_"
            }
        }
        return mapped.isEmpty ? "_" : String(mapped)
    }
}
