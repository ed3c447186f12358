/// The pure state machine of the node registry: events in, node records and `NodeEvent`s out.
/// Time is passed in (server receive time, epoch seconds); the EA clock is never trusted.
public struct NodeTable: Sendable {
    /// Every known node by UUID.
    public private(set) var nodes: [String: NodeRecord] = [:]
    /// Outstanding pings: uuid → (ping id, sent at).
    private var pings: [String: (String, Double)] = [:]
    private let gateway: String

    /// An empty table; `gateway` names the process that owns the EA connections.
    public init(gateway: String = "gateway-1") { self.gateway = gateway }

    /// Loads records persisted earlier (they keep their online flag until the monitor expires them).
    public mutating func restore(_ records: [NodeRecord]) {
        for record in records where nodes[record.uuid] == nil { nodes[record.uuid] = record }
    }

    /// Online nodes.
    public var online: [NodeRecord] { nodes.values.filter(\.online) }

    /// Applies a HELLO (5555).
    public mutating func apply(_ m: Hello, at now: Double) -> [NodeEvent] {
        // HELLO's `broker` is the trade server's name; the broker firm is `company` (handshake's `broker`).
        var events = register(uuid: m.targetUUID, nodeID: m.nodeID, account: m.accountLogin, broker: m.company, at: now)
        update(m.targetUUID) { node in
            node.company = m.company
            node.server = m.broker
            node.version = m.version
            node.symbols = m.symbols
            node.apply(m.account)
        }
        events += heartbeat(m.targetUUID, at: now)
        return events
    }

    /// Applies a `handshake` (5556).
    public mutating func apply(_ m: Handshake, at now: Double) -> [NodeEvent] {
        var events = register(uuid: m.userUUID, nodeID: m.nodeID, account: m.accountNumber, broker: m.broker, at: now)
        update(m.userUUID) { node in
            node.server = m.server
            node.company = m.broker
            node.version = m.version
            node.symbols = m.monitoredSymbols
            node.apply(m.account)
        }
        events += heartbeat(m.userUUID, at: now)
        return events
    }

    /// Applies a dealer `HEARTBEAT` (5555).
    public mutating func apply(_ m: DealerHeartbeat, at now: Double) -> [NodeEvent] {
        guard nodes[m.targetUUID] != nil else {
            // A heartbeat from an EA we never saw say HELLO (server restarted): register it from what we have.
            return register(uuid: m.targetUUID, nodeID: m.nodeID, account: 0, broker: "", at: now) + heartbeat(m.targetUUID, at: now)
        }
        update(m.targetUUID) { $0.apply(m.account) }
        return heartbeat(m.targetUUID, at: now, nodeID: m.nodeID)
    }

    /// Applies a telemetry `heartbeat` (5556).
    public mutating func apply(_ m: TelemetryHeartbeat, at now: Double) -> [NodeEvent] {
        guard nodes[m.userUUID] != nil else {
            return register(uuid: m.userUUID, nodeID: m.nodeID, account: m.accountNumber, broker: "", at: now)
                + heartbeat(m.userUUID, at: now)
        }
        var events: [NodeEvent] = []
        if let node = nodes[m.userUUID], node.account != 0, node.account != m.accountNumber {
            events += register(uuid: m.userUUID, nodeID: m.nodeID, account: m.accountNumber, broker: node.broker, at: now)
        }
        update(m.userUUID) { node in
            node.apply(m.account)
            if node.account == 0 { node.account = m.accountNumber }
        }
        return events + heartbeat(m.userUUID, at: now, nodeID: m.nodeID)
    }

    /// Applies a `DISCONNECT` (5556): offline at once.
    public mutating func apply(_ m: Disconnect, at now: Double) -> [NodeEvent] {
        markOffline(m.userUUID, reason: "disconnect", at: now).map { [$0] } ?? []
    }

    /// Records that a ping went out.
    public mutating func pingSent(uuid: String, pingID: String, at now: Double) {
        pings[uuid] = (pingID, now)
    }

    /// Applies a `pong` (5558): the round trip becomes the node's latency.
    public mutating func apply(_ m: Pong, at now: Double) {
        guard let (id, sentAt) = pings[m.userUUID], id == m.pingID else { return }
        pings[m.userUUID] = nil
        update(m.userUUID) { node in
            node.latencyMs = max(0, (now - sentAt) * 1000)
            node.lastSeen = now
        }
    }

    /// Marks a node offline; returns the event when it was online.
    public mutating func markOffline(_ uuid: String, reason: String, at now: Double) -> NodeEvent? {
        guard var node = nodes[uuid], node.online else { return nil }
        node.online = false
        node.offlineReason = reason
        nodes[uuid] = node
        pings[uuid] = nil
        return .offline(uuid: uuid, broker: node.broker, reason: reason, at: now)
    }

    /// Marks offline every online node whose last heartbeat is older than `timeout` seconds.
    public mutating func expire(at now: Double, timeout: Double) -> [NodeEvent] {
        let stale = nodes.values.filter { $0.online && now - $0.lastHeartbeat > timeout }.map(\.uuid)
        return stale.sorted().compactMap { markOffline($0, reason: "timeout", at: now) }
    }

    /// Nodes by broker: (online, total).
    public var countsByBroker: [String: (online: Int, total: Int)] {
        var counts: [String: (online: Int, total: Int)] = [:]
        for node in nodes.values {
            var entry = counts[node.broker] ?? (0, 0)
            entry.total += 1
            if node.online { entry.online += 1 }
            counts[node.broker] = entry
        }
        return counts
    }

    private mutating func update(_ uuid: String, _ body: (inout NodeRecord) -> Void) {
        guard var node = nodes[uuid] else { return }
        body(&node)
        nodes[uuid] = node
    }

    private mutating func register(uuid: String, nodeID: String, account: Int, broker: String, at now: Double) -> [NodeEvent] {
        guard var node = nodes[uuid] else {
            nodes[uuid] = NodeRecord(
                uuid: uuid, nodeID: nodeID, account: account, broker: broker, server: "", company: "", currency: "",
                balance: 0, equity: 0, leverage: 0, margin: 0, freeMargin: 0, marginLevel: 0, symbols: 0, version: "",
                gateway: gateway, firstSeen: now, lastSeen: now, lastHeartbeat: now, heartbeatInterval: nil,
                heartbeatJitter: nil, latencyMs: nil, online: true, offlineReason: nil, connectedSince: now,
                reconnects: 0, accountSwitches: 0)
            return [.connected(uuid: uuid, nodeID: nodeID, account: account, broker: broker, at: now, reconnect: false)]
        }
        var events: [NodeEvent] = []
        if account != 0 && node.account != 0 && node.account != account {
            events.append(.accountSwitch(uuid: uuid, oldAccount: node.account, newAccount: account, at: now))
            node.accountSwitches += 1
        }
        let newStart = node.nodeID != nodeID
        if !node.online || newStart {
            node.reconnects += 1
            node.connectedSince = now
            node.heartbeatInterval = nil
            node.heartbeatJitter = nil
            events.append(.connected(uuid: uuid, nodeID: nodeID, account: account == 0 ? node.account : account,
                                     broker: broker.isEmpty ? node.broker : broker, at: now, reconnect: true))
        }
        node.nodeID = nodeID
        if account != 0 { node.account = account }
        if !broker.isEmpty { node.broker = broker }
        node.online = true
        node.offlineReason = nil
        node.gateway = gateway
        nodes[uuid] = node
        return events
    }

    private mutating func heartbeat(_ uuid: String, at now: Double, nodeID: String? = nil) -> [NodeEvent] {
        var events: [NodeEvent] = []
        if let node = nodes[uuid], !node.online || (nodeID != nil && nodeID != node.nodeID) {
            events = register(uuid: uuid, nodeID: nodeID ?? node.nodeID, account: 0, broker: "", at: now)
        }
        update(uuid) { node in
            let gap = now - node.lastHeartbeat
            // The EA sends a heartbeat on each channel at once: only gaps over a second measure the interval.
            if gap > 1 {
                if let mean = node.heartbeatInterval {
                    node.heartbeatJitter = 0.8 * (node.heartbeatJitter ?? 0) + 0.2 * abs(gap - mean)
                    node.heartbeatInterval = 0.8 * mean + 0.2 * gap
                } else {
                    node.heartbeatInterval = gap
                    node.heartbeatJitter = 0
                }
                node.lastHeartbeat = now
            }
            // A twin within a second leaves the anchor alone, so the next gap is measured from the first of the pair.
            node.lastSeen = now
        }
        return events
    }
}

extension NodeRecord {
    mutating func apply(_ snapshot: AccountSnapshot) {
        currency = snapshot.currency
        balance = snapshot.balance
        equity = snapshot.equity
        leverage = snapshot.leverage
        if let value = snapshot.margin { margin = value }
        if let value = snapshot.freeMargin { freeMargin = value }
        if let value = snapshot.marginLevel { marginLevel = value }
    }
}
