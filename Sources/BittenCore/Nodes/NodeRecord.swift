/// What the first registration of a UUID fixed: the account, the broker server and the machine it
/// came from. Later messages that disagree are not taken silently (see `NodeTable.admit`).
public struct NodePin: Sendable, Equatable {
    public var account: Int
    public var server: String
    /// The peer address (IP) of the EA's command connection.
    public var peer: String
    public var since: Double

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
    public var account: Int
    public var server: String
    public var peer: String
    public var at: Double
}

/// The latest message refused for a node (an intruder, a second terminal, a pending switch).
public struct RefusedAttempt: Sendable, Equatable {
    public var peer: String
    public var account: Int
    public var reason: String
    public var at: Double
}

/// Everything known about one EA node (one user UUID).
public struct NodeRecord: Sendable, Equatable {
    public var uuid: String
    public var nodeID: String
    public var account: Int
    public var broker: String
    public var server: String
    public var company: String
    public var currency: String
    public var balance: Double
    public var equity: Double
    public var leverage: Int
    public var margin: Double
    public var freeMargin: Double
    public var marginLevel: Double
    public var symbols: Int
    public var version: String
    public var gateway: String
    /// Epoch seconds (server clock) of the first and latest message.
    public var firstSeen: Double
    public var lastSeen: Double
    /// Server receive time of the latest heartbeat (either channel).
    public var lastHeartbeat: Double
    /// Mean seconds between heartbeats and mean absolute deviation from it.
    public var heartbeatInterval: Double?
    public var heartbeatJitter: Double?
    /// Last ping/pong round trip in milliseconds.
    public var latencyMs: Double?
    public var online: Bool
    public var offlineReason: String?
    /// When the current connection began (for uptime).
    public var connectedSince: Double
    public var reconnects: Int
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
    public var redisFields: [(String, String)] {
        func num(_ value: Double?) -> String { value.map { PlainDecimal.format($0, maxFractionDigits: 6) ?? "0" } ?? "" }
        return [
            ("node_id", nodeID), ("uuid", uuid), ("account", String(account)), ("broker", broker), ("server", server),
            ("company", company), ("currency", currency), ("balance", num(balance)), ("equity", num(equity)),
            ("leverage", String(leverage)), ("margin", num(margin)), ("free_margin", num(freeMargin)),
            ("margin_level", num(marginLevel)), ("symbols", String(symbols)), ("version", version),
            ("first_seen", num(firstSeen)), ("last_seen", num(lastSeen)), ("last_heartbeat", num(lastHeartbeat)),
            ("heartbeat_interval", num(heartbeatInterval)), ("heartbeat_jitter", num(heartbeatJitter)),
            ("latency_ms", num(latencyMs)), ("status", online ? "online" : "offline"),
            ("offline_reason", offlineReason ?? ""), ("connected_since", num(connectedSince)),
            ("reconnects", String(reconnects)), ("account_switches", String(accountSwitches)), ("gateway", gateway),
            ("broker_symbols", brokerSymbols.encoded), ("commands_unread", commandsUnread ? "1" : "0"),
            ("pin_account", pin.map { String($0.account) } ?? ""), ("pin_server", pin?.server ?? ""), ("pin_peer", pin?.peer ?? ""),
            ("pin_since", num(pin?.since)), ("pinned_seen_at", num(pinnedSeenAt)),
            ("switch_account", pendingSwitch.map { String($0.account) } ?? ""), ("switch_server", pendingSwitch?.server ?? ""),
            ("switch_peer", pendingSwitch?.peer ?? ""), ("switch_at", num(pendingSwitch?.at)),
            ("refused_peer", lastRefused?.peer ?? ""), ("refused_account", lastRefused.map { String($0.account) } ?? ""),
            ("refused_reason", lastRefused?.reason ?? ""), ("refused_at", num(lastRefused?.at)),
        ]
    }

    /// Rebuilds a record from its `node:{uuid}` hash (after a restart).
    public init?(redisHash h: [String: String]) {
        guard let uuid = h["uuid"], let nodeID = h["node_id"] else { return nil }
        func d(_ key: String) -> Double { Double(h[key] ?? "") ?? 0 }
        func i(_ key: String) -> Int { Int(h[key] ?? "") ?? 0 }
        self.init(uuid: uuid, nodeID: nodeID, account: i("account"), broker: h["broker"] ?? "", server: h["server"] ?? "",
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
            pin = NodePin(account: account, server: h["pin_server"] ?? "", peer: h["pin_peer"] ?? "", since: d("pin_since"))
        }
        pinnedSeenAt = d("pinned_seen_at")
        if let account = h["switch_account"].flatMap({ Int($0) }) {
            pendingSwitch = PendingSwitch(account: account, server: h["switch_server"] ?? "", peer: h["switch_peer"] ?? "", at: d("switch_at"))
        }
        if let reason = h["refused_reason"], !reason.isEmpty {
            lastRefused = RefusedAttempt(peer: h["refused_peer"] ?? "", account: Int(h["refused_account"] ?? "") ?? 0, reason: reason,
                                         at: d("refused_at"))
        }
    }

    public init(uuid: String, nodeID: String, account: Int, broker: String, server: String, company: String,
                currency: String, balance: Double, equity: Double, leverage: Int, margin: Double, freeMargin: Double,
                marginLevel: Double, symbols: Int, version: String, gateway: String, firstSeen: Double, lastSeen: Double,
                lastHeartbeat: Double, heartbeatInterval: Double?, heartbeatJitter: Double?, latencyMs: Double?,
                online: Bool, offlineReason: String?, connectedSince: Double, reconnects: Int, accountSwitches: Int) {
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
