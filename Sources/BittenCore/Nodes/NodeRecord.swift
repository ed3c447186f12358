/// What the first registration of a UUID fixed: the account, the broker server and the machine it
/// came from. Later messages that disagree are not taken silently (see `NodeTable.admit`).
public struct NodePin: Sendable, Equatable {
    /// The MetaTrader account number.
    public var account: Int
    /// The broker's trade server.
    public var server: String
    /// The peer address (IP) of the EA's command connection.
    public var peer: String
    /// Since when (epoch seconds).
    public var since: Double

    /// A pin.
    public init(account: Int, server: String, peer: String, since: Double) {
        self.account = account
        self.server = server
        self.peer = peer
        self.since = since
    }
}

/// A registration with another account or server than the pin: waits for an operator (or the quiet
/// period) before the node moves to it; no fires meanwhile.
public struct PendingSwitch: Sendable, Equatable {
    /// The MetaTrader account number.
    public var account: Int
    /// The broker's trade server.
    public var server: String
    /// The peer's address.
    public var peer: String
    /// When (epoch seconds).
    public var at: Double
}

/// The latest message refused for a node (an intruder, a second terminal, a pending switch).
public struct RefusedAttempt: Sendable, Equatable {
    /// The peer's address.
    public var peer: String
    /// The MetaTrader account number.
    public var account: Int
    /// Why.
    public var reason: String
    /// When (epoch seconds).
    public var at: Double
}

/// Everything known about one EA node (one user UUID).
public struct NodeRecord: Sendable, Equatable {
    /// The user's UUID (the EA's `target_uuid`).
    public var uuid: String
    /// The EA's node id.
    public var nodeID: String
    /// The MetaTrader account number.
    public var account: Int
    /// The broker's company name.
    public var broker: String
    /// The broker's trade server.
    public var server: String
    /// The broker's company name.
    public var company: String
    /// The account currency.
    public var currency: String
    /// The account balance.
    public var balance: Double
    /// The account equity.
    public var equity: Double
    /// The account leverage.
    public var leverage: Int
    /// The margin in use.
    public var margin: Double
    /// The free margin.
    public var freeMargin: Double
    /// The margin level, in percent.
    public var marginLevel: Double
    /// How many symbols the EA lists.
    public var symbols: Int
    /// The EA's version.
    public var version: String
    /// The gateway it is connected to.
    public var gateway: String
    /// Epoch seconds (server clock) of the first and latest message.
    public var firstSeen: Double
    /// When any message came last (epoch seconds).
    public var lastSeen: Double
    /// Server receive time of the latest heartbeat (either channel).
    public var lastHeartbeat: Double
    /// Mean seconds between heartbeats and mean absolute deviation from it.
    public var heartbeatInterval: Double?
    /// The spread of the heartbeat intervals, seconds.
    public var heartbeatJitter: Double?
    /// Last ping/pong round trip in milliseconds.
    public var latencyMs: Double?
    /// Whether the node is online.
    public var online: Bool
    /// Why it went offline (`timeout`, `disconnect`…).
    public var offlineReason: String?
    /// When the current connection began (for uptime).
    public var connectedSince: Double
    /// Registrations after the first.
    public var reconnects: Int
    /// Registrations with another account.
    public var accountSwitches: Int
    /// The broker's names of the canonical instruments this EA lists or quotes (`EURUSD` → `EURUSD.r`).
    public var brokerSymbols = BrokerSymbolMap()
    /// A ping has gone unanswered for longer than the fire timeout: the EA reads no command (its chart
    /// symbol is quiet, or it is stuck), so fires to it will wait.
    public var commandsUnread = false
    /// The pinned account, server and peer (nil until the first HELLO).
    public var pin: NodePin?
    /// A switch to another account or server waiting for approval.
    public var pendingSwitch: PendingSwitch?
    /// The latest refused message.
    public var lastRefused: RefusedAttempt?
    /// When a message last proved the pinned account (for the automatic approval of a switch).
    public var pinnedSeenAt: Double = 0

    /// Seconds online in the current connection (0 when offline).
    public func uptime(at now: Double) -> Double { online ? max(0, now - connectedSince) : 0 }

    /// The `node:{uuid}` hash fields.
    public var redisFields: [(String, String)] { Self.columns.map { ($0.name, $0.text(self)) } }

    /// The hash fields on which this record differs from `old`, compared before they are formatted (a
    /// heartbeat changes a few of them: formatting all 44 to compare them was the flush's main cost).
    public func redisFields(changedSince old: NodeRecord) -> [(String, String)] {
        Self.columns.compactMap { $0.same(self, old) ? nil : ($0.name, $0.text(self)) }
    }

    /// One field of the hash: its name, its text, and whether two records agree on it.
    struct Column: Sendable {
        let name: String
        let text: @Sendable (NodeRecord) -> String
        let same: @Sendable (NodeRecord, NodeRecord) -> Bool

        static func of<V: Equatable>(
            _ name: String, _ value: @escaping @Sendable (NodeRecord) -> V,
            _ text: @escaping @Sendable (V) -> String
        ) -> Column {
            Column(name: name, text: { text(value($0)) }, same: { value($0) == value($1) })
        }
    }

    /// The hash's fields in order, each read and formatted in one place.
    static let columns: [Column] = {
        let num: @Sendable (Double?) -> String = {
            $0.map { PlainDecimal.format($0, maxFractionDigits: 6) ?? "0" } ?? ""
        }
        let text: @Sendable (String) -> String = { $0 }
        let int: @Sendable (Int) -> String = { String($0) }
        let optionalInt: @Sendable (Int?) -> String = { $0.map { String($0) } ?? "" }
        let optionalText: @Sendable (String?) -> String = { $0 ?? "" }
        return [
            .of("node_id", { $0.nodeID }, text), .of("uuid", { $0.uuid }, text), .of("account", { $0.account }, int),
            .of("broker", { $0.broker }, text), .of("server", { $0.server }, text),
            .of("company", { $0.company }, text),
            .of("currency", { $0.currency }, text), .of("balance", { $0.balance }, num),
            .of("equity", { $0.equity }, num),
            .of("leverage", { $0.leverage }, int), .of("margin", { $0.margin }, num),
            .of("free_margin", { $0.freeMargin }, num), .of("margin_level", { $0.marginLevel }, num),
            .of("symbols", { $0.symbols }, int), .of("version", { $0.version }, text),
            .of("first_seen", { $0.firstSeen }, num), .of("last_seen", { $0.lastSeen }, num),
            .of("last_heartbeat", { $0.lastHeartbeat }, num), .of("heartbeat_interval", { $0.heartbeatInterval }, num),
            .of("heartbeat_jitter", { $0.heartbeatJitter }, num), .of("latency_ms", { $0.latencyMs }, num),
            .of("status", { $0.online }, { $0 ? "online" : "offline" }),
            .of("offline_reason", { $0.offlineReason }, optionalText),
            .of("connected_since", { $0.connectedSince }, num), .of("reconnects", { $0.reconnects }, int),
            .of("account_switches", { $0.accountSwitches }, int), .of("gateway", { $0.gateway }, text),
            .of("broker_symbols", { $0.brokerSymbols }, { $0.encoded }),
            .of("commands_unread", { $0.commandsUnread }, { $0 ? "1" : "0" }),
            .of("pin_account", { $0.pin?.account }, optionalInt), .of("pin_server", { $0.pin?.server }, optionalText),
            .of("pin_peer", { $0.pin?.peer }, optionalText), .of("pin_since", { $0.pin?.since }, num),
            .of("pinned_seen_at", { $0.pinnedSeenAt }, num),
            .of("switch_account", { $0.pendingSwitch?.account }, optionalInt),
            .of("switch_server", { $0.pendingSwitch?.server }, optionalText),
            .of("switch_peer", { $0.pendingSwitch?.peer }, optionalText),
            .of("switch_at", { $0.pendingSwitch?.at }, num),
            .of("refused_peer", { $0.lastRefused?.peer }, optionalText),
            .of("refused_account", { $0.lastRefused?.account }, optionalInt),
            .of("refused_reason", { $0.lastRefused?.reason }, optionalText),
            .of("refused_at", { $0.lastRefused?.at }, num),
        ]
    }()

    /// Rebuilds a record from its `node:{uuid}` hash (after a restart).
    public init?(redisHash h: [String: String]) {
        guard let uuid = h["uuid"], let nodeID = h["node_id"] else { return nil }
        func d(_ key: String) -> Double { Double(h[key] ?? "") ?? 0 }
        func i(_ key: String) -> Int { Int(h[key] ?? "") ?? 0 }
        self.init(
            uuid: uuid, nodeID: nodeID, account: i("account"), broker: h["broker"] ?? "", server: h["server"] ?? "",
            company: h["company"] ?? "", currency: h["currency"] ?? "", balance: d("balance"), equity: d("equity"),
            leverage: i("leverage"), margin: d("margin"), freeMargin: d("free_margin"),
            marginLevel: d("margin_level"), symbols: i("symbols"), version: h["version"] ?? "",
            gateway: h["gateway"] ?? "", firstSeen: d("first_seen"), lastSeen: d("last_seen"),
            lastHeartbeat: d("last_heartbeat"), heartbeatInterval: Double(h["heartbeat_interval"] ?? ""),
            heartbeatJitter: Double(h["heartbeat_jitter"] ?? ""), latencyMs: Double(h["latency_ms"] ?? ""),
            online: h["status"] == "online", offlineReason: h["offline_reason"].flatMap { $0.isEmpty ? nil : $0 },
            connectedSince: d("connected_since"), reconnects: i("reconnects"), accountSwitches: i("account_switches"))
        brokerSymbols = BrokerSymbolMap(encoded: h["broker_symbols"] ?? "")
        commandsUnread = h["commands_unread"] == "1"
        if let account = h["pin_account"].flatMap({ Int($0) }) {
            pin = NodePin(
                account: account, server: h["pin_server"] ?? "", peer: h["pin_peer"] ?? "", since: d("pin_since"))
        }
        pinnedSeenAt = d("pinned_seen_at")
        if let account = h["switch_account"].flatMap({ Int($0) }) {
            pendingSwitch = PendingSwitch(
                account: account, server: h["switch_server"] ?? "", peer: h["switch_peer"] ?? "", at: d("switch_at"))
        }
        if let reason = h["refused_reason"], !reason.isEmpty {
            lastRefused = RefusedAttempt(
                peer: h["refused_peer"] ?? "", account: Int(h["refused_account"] ?? "") ?? 0, reason: reason,
                at: d("refused_at"))
        }
    }

    /// A node.
    public init(
        uuid: String, nodeID: String, account: Int, broker: String, server: String, company: String,
        currency: String, balance: Double, equity: Double, leverage: Int, margin: Double, freeMargin: Double,
        marginLevel: Double, symbols: Int, version: String, gateway: String, firstSeen: Double, lastSeen: Double,
        lastHeartbeat: Double, heartbeatInterval: Double?, heartbeatJitter: Double?, latencyMs: Double?,
        online: Bool, offlineReason: String?, connectedSince: Double, reconnects: Int, accountSwitches: Int
    ) {
        self.uuid = uuid
        self.nodeID = nodeID
        self.account = account
        self.broker = broker
        self.server = server
        self.company = company
        self.currency = currency
        self.balance = balance
        self.equity = equity
        self.leverage = leverage
        self.margin = margin
        self.freeMargin = freeMargin
        self.marginLevel = marginLevel
        self.symbols = symbols
        self.version = version
        self.gateway = gateway
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.lastHeartbeat = lastHeartbeat
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatJitter = heartbeatJitter
        self.latencyMs = latencyMs
        self.online = online
        self.offlineReason = offlineReason
        self.connectedSince = connectedSince
        self.reconnects = reconnects
        self.accountSwitches = accountSwitches
    }
}

/// Something that happened to a node and must be recorded (history list, broker stats, alerts).
public enum NodeEvent: Sendable, Equatable {
    /// A node came online (a new EA start or a return after being offline).
    case connected(uuid: String, nodeID: String, account: Int, broker: String, at: Double, reconnect: Bool)
    /// The same UUID appeared with another broker account.
    case accountSwitch(uuid: String, oldAccount: Int, newAccount: Int, at: Double)
    /// A node went offline (`disconnect` or `timeout`).
    case offline(uuid: String, broker: String, reason: String, at: Double)
    /// A registration with another account or server than the pin: waiting for approval.
    case switchPending(uuid: String, pinnedAccount: Int, account: Int, server: String, peer: String, at: Double)
    /// A second connection claimed a UUID whose pinned EA is alive: refused.
    case duplicateEA(uuid: String, pinnedPeer: String, peer: String, account: Int, at: Double)
}
