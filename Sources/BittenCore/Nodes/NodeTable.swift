/// How closely a confirmation's or registration's peer address must match the pinned one.
public enum PeerMatch: String, Sendable, Equatable {
    /// The same IP address.
    case exact
    /// The same /24 network (IPv4) — for EAs behind NAT pools.
    case subnet24 = "24"
    /// No check (EAs behind changing NAT).
    case off

    /// Whether `peer` passes against `pinned` (an empty pin matches anything).
    public func matches(_ peer: String, _ pinned: String) -> Bool {
        guard !pinned.isEmpty, !peer.isEmpty else { return true }
        switch self {
        case .off: return true
        case .exact: return peer == pinned
        case .subnet24:
            let a = peer.split(separator: ".")
            let b = pinned.split(separator: ".")
            guard a.count == 4, b.count == 4 else { return peer == pinned }
            return a.prefix(3) == b.prefix(3)
        }
    }
}

/// The pure state machine of the node registry: events in, node records and `NodeEvent`s out.
/// Time is passed in (server receive time, epoch seconds); the EA clock is never trusted.
public struct NodeTable: Sendable {
    /// Every known node by UUID.
    public internal(set) var nodes: [String: NodeRecord] = [:]
    /// Outstanding pings: uuid → (ping id, sent at).
    var pings: [String: (String, Double)] = [:]
    /// Commands (fire, close) sent and not answered yet: uuid → (count, when the oldest went out).
    var commandsOut: [String: (count: Int, since: Double)] = [:]
    let gateway: String
    /// Maps the broker's symbol names to canonical instruments.
    public let canon: SymbolCanon
    /// How closely a message's peer address must match the pinned one.
    public let peerMatch: PeerMatch
    /// Seconds without a message after which the pinned EA counts as gone (a restart on another
    /// machine may then take the UUID over).
    public var silentAfter: Double = 45

    /// An empty table; `gateway` names the process that owns the EA connections.
    public init(
        gateway: String = "gateway-1",
        canon: SymbolCanon = SymbolCanon(known: InstrumentTable.standard.instruments.keys),
        peerMatch: PeerMatch = .exact
    ) {
        self.gateway = gateway
        self.canon = canon
        self.peerMatch = peerMatch
    }

    /// Loads records persisted earlier (they keep their online flag until the monitor expires them).
    public mutating func restore(_ records: [NodeRecord]) {
        for record in records where nodes[record.uuid] == nil { nodes[record.uuid] = record }
    }

    /// Online nodes.
    public var online: [NodeRecord] { nodes.values.filter(\.online) }

    /// Applies a HELLO (5555). The first one pins the account, server and `peer`.
    public mutating func apply(_ m: Hello, at now: Double, peer: String? = nil) -> [NodeEvent] {
        // HELLO's `broker` is the trade server's name; the broker firm is `company` (handshake's `broker`).
        var events = register(uuid: m.targetUUID, nodeID: m.nodeID, account: m.accountLogin, broker: m.company, at: now)
        update(m.targetUUID) { node in
            if node.pin == nil {
                node.pin = NodePin(account: m.accountLogin, server: m.broker, peer: peer ?? "", since: now)
                node.pinnedSeenAt = now
            }
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
        let canon = self.canon
        update(m.userUUID) { node in
            node.server = m.server
            node.company = m.broker
            node.version = m.version
            node.symbols = m.monitoredSymbols
            node.apply(m.account)
            // The broker's names of the first 20 Market Watch symbols (TICKs add the rest).
            for name in [m.chartSymbol] + m.symbolList where Symbol.isValid(name) {
                node.brokerSymbols.learn(broker: name, canonical: canon.canonical(name))
            }
        }
        events += heartbeat(m.userUUID, at: now)
        return events
    }

    /// Applies a dealer `HEARTBEAT` (5555).
    public mutating func apply(_ m: DealerHeartbeat, at now: Double) -> [NodeEvent] {
        // One lookup for the whole heartbeat: the index is used until something is inserted.
        guard let index = nodes.index(forKey: m.targetUUID) else {
            // A heartbeat from an EA we never saw say HELLO (server restarted): register it from what we have.
            return register(uuid: m.targetUUID, nodeID: m.nodeID, account: 0, broker: "", at: now)
                + heartbeat(m.targetUUID, at: now)
        }
        peek(index) { $0.apply(m.account) }
        return heartbeat(m.targetUUID, at: now, nodeID: m.nodeID, index: index)
    }

    /// Applies a telemetry `heartbeat` (5556).
    public mutating func apply(_ m: TelemetryHeartbeat, at now: Double) -> [NodeEvent] {
        guard var index = nodes.index(forKey: m.userUUID) else {
            return register(uuid: m.userUUID, nodeID: m.nodeID, account: m.accountNumber, broker: "", at: now)
                + heartbeat(m.userUUID, at: now)
        }
        var events: [NodeEvent] = []
        let known = peek(index) { $0.account }
        if known != 0, known != m.accountNumber {
            events += register(
                uuid: m.userUUID, nodeID: m.nodeID, account: m.accountNumber, broker: peek(index) { $0.broker }, at: now
            )
            guard let again = nodes.index(forKey: m.userUUID) else { return events }
            index = again
        }
        peek(index) { node in
            node.apply(m.account)
            if node.account == 0 { node.account = m.accountNumber }
        }
        return events + heartbeat(m.userUUID, at: now, nodeID: m.nodeID, index: index)
    }

    /// Applies a `DISCONNECT` (5556): offline at once.
    public mutating func apply(_ m: Disconnect, at now: Double) -> [NodeEvent] {
        markOffline(m.userUUID, reason: "disconnect", at: now).map { [$0] } ?? []
    }

    /// Learns that this EA's broker calls `canonical` `broker` (from a TICK); returns whether it was new.
    @discardableResult
    public mutating func learnSymbol(_ uuid: String, broker: String, canonical: String) -> Bool {
        guard let index = nodes.index(forKey: uuid) else { return false }
        return peek(index) { node in
            guard node.brokerSymbols[canonical] != broker else { return false }
            return node.brokerSymbols.learn(broker: broker, canonical: canonical)
        }
    }

    /// Records that a ping went out.
    public mutating func pingSent(uuid: String, pingID: String, at now: Double) {
        pings[uuid] = (pingID, now)
    }

    /// Records that a command (fire, close) went out to an EA.
    public mutating func commandSent(uuid: String, at now: Double) {
        let out = commandsOut[uuid]
        commandsOut[uuid] = ((out?.count ?? 0) + 1, out?.since ?? now)
    }

    /// Records an EA's answer to a command (a confirmation or close confirmation): it reads commands.
    public mutating func commandAnswered(uuid: String) {
        if let out = commandsOut[uuid] { commandsOut[uuid] = out.count > 1 ? (out.count - 1, out.since) : nil }
        update(uuid) { $0.commandsUnread = false }
    }

    /// What the ping loop should do for one EA.
    public enum PingDecision: Sendable, Equatable {
        /// Queue a ping now.
        case send
        /// Not now: offline, market closed, a ping or another command still unanswered.
        case wait
        /// The outstanding ping has gone unanswered for longer than the fire timeout: the node was just
        /// marked `commands_unread` (alert once); no further ping until it is answered.
        case unread
    }

    /// Pings never delay a fire: the EA reads one command per chart tick, so at most one ping is
    /// outstanding per EA (the next only after its pong), none while another command to it is
    /// unanswered, none to an offline node or while the market is closed.
    public mutating func pingDecision(_ uuid: String, at now: Double, fireTimeout: Double, marketClosed: Bool)
        -> PingDecision
    {
        guard let node = nodes[uuid], node.online, !marketClosed else { return .wait }
        if let (_, sentAt) = pings[uuid] {
            guard now - sentAt > fireTimeout, !node.commandsUnread else { return .wait }
            update(uuid) { $0.commandsUnread = true }
            return .unread
        }
        if let out = commandsOut[uuid] {
            // A command older than the fire timeout has timed out: it no longer holds the pings back.
            guard now - out.since > fireTimeout else { return .wait }
            commandsOut[uuid] = nil
        }
        return .send
    }

    /// Applies a `pong` (5558): the round trip becomes the node's latency.
    public mutating func apply(_ m: Pong, at now: Double) {
        guard let (id, sentAt) = pings[m.userUUID], id == m.pingID else { return }
        pings[m.userUUID] = nil
        update(m.userUUID) { node in
            node.latencyMs = max(0, (now - sentAt) * 1000)
            node.lastSeen = now
            node.commandsUnread = false
        }
    }

    /// Marks a node offline; returns the event when it was online.
    public mutating func markOffline(_ uuid: String, reason: String, at now: Double) -> NodeEvent? {
        guard var node = nodes[uuid], node.online else { return nil }
        node.online = false
        node.offlineReason = reason
        nodes[uuid] = node
        pings[uuid] = nil
        commandsOut[uuid] = nil
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

    /// Changes one node in place (one lookup, no copy of the record out and back).
    /// Reads a node in place, through the dictionary's modify accessor: its getter copies the whole
    /// 44-field record (a retain and release per string) for one field, and heartbeats read several.
    mutating func peek<T>(_ index: [String: NodeRecord].Index, _ body: (inout NodeRecord) -> T) -> T {
        body(&nodes.values[index])
    }

    mutating func update(_ uuid: String, _ body: (inout NodeRecord) -> Void) {
        guard let index = nodes.index(forKey: uuid) else { return }
        body(&nodes.values[index])
    }

    mutating func register(uuid: String, nodeID: String, account: Int, broker: String, at now: Double)
        -> [NodeEvent]
    {
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
        if newStart {
            // A new terminal start reads a fresh command queue: what the old one left unanswered is gone.
            pings[uuid] = nil
            commandsOut[uuid] = nil
            node.commandsUnread = false
        }
        if !node.online || newStart {
            node.reconnects += 1
            node.connectedSince = now
            node.heartbeatInterval = nil
            node.heartbeatJitter = nil
            events.append(
                .connected(
                    uuid: uuid, nodeID: nodeID, account: account == 0 ? node.account : account,
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

    /// `index`: the node's, when the caller looked it up and inserted nothing since.
    mutating func heartbeat(
        _ uuid: String, at now: Double, nodeID: String? = nil,
        index known: [String: NodeRecord].Index? = nil
    ) -> [NodeEvent] {
        var events: [NodeEvent] = []
        var index = known ?? nodes.index(forKey: uuid)
        if let found = index,
            let current = peek(
                found, { node in !node.online || (nodeID != nil && nodeID != node.nodeID) ? node.nodeID : nil })
        {
            events = register(uuid: uuid, nodeID: nodeID ?? current, account: 0, broker: "", at: now)
            index = nodes.index(forKey: uuid)
        }
        guard let index else { return events }
        peek(index) { node in
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
