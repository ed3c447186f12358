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
    public private(set) var nodes: [String: NodeRecord] = [:]
    /// Outstanding pings: uuid → (ping id, sent at).
    private var pings: [String: (String, Double)] = [:]
    /// Commands (fire, close) sent and not answered yet: uuid → (count, when the oldest went out).
    private var commandsOut: [String: (count: Int, since: Double)] = [:]
    private let gateway: String
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

    // MARK: pins

    /// Whether a message is taken for its node.
    public enum Verdict: Sendable, Equatable {
        case accepted
        /// Refused (not applied, not routed), with the reason.
        case refused(String)
    }

    /// The account login in a `node_id` (`NODE_{login}_{tickcount}`), if it has that shape.
    public static func login(ofNodeID nodeID: String) -> Int? {
        // Every heartbeat asks: the parts of `split(separator: "_")` (empty ones dropped) read in place,
        // without a substring per part. The first part must be NODE, a third must exist, the second is the login.
        var nodeID = nodeID
        return nodeID.withUTF8 { bytes -> Int? in
            let underscore = UInt8(ascii: "_")
            var index = 0
            func part() -> Range<Int>? {
                while index < bytes.count, bytes[index] == underscore { index += 1 }
                guard index < bytes.count else { return nil }
                let start = index
                while index < bytes.count, bytes[index] != underscore { index += 1 }
                return start..<index
            }
            guard let first = part(), first.count == 4, bytes[first.lowerBound] == UInt8(ascii: "N"),
                bytes[first.lowerBound + 1] == UInt8(ascii: "O"), bytes[first.lowerBound + 2] == UInt8(ascii: "D"),
                bytes[first.lowerBound + 3] == UInt8(ascii: "E"),
                let login = part(), part() != nil
            else { return nil }
            return Int(String(decoding: UnsafeBufferPointer(rebasing: bytes[login]), as: UTF8.self))
        }
    }

    /// Checks a message against its node's pin before it is applied or routed. A message with another
    /// account or server than the pin puts the node in `pending_switch` (no fires until an operator
    /// approves, or the quiet period passes); a second machine claiming a UUID whose pinned EA is alive
    /// is refused as a duplicate; the EA's own restart (same account and server, same machine, or the old
    /// one silent) is taken at once. Returns the verdict and the events to record.
    public mutating func admit(_ message: EAMessage, peer: String?, at now: Double) -> (Verdict, [NodeEvent]) {
        let uuid = message.userUUID
        // Read in place: a heartbeat passes here, and copying the record out costs a retain per field.
        guard let index = nodes.index(forKey: uuid), let pin = peek(index, { $0.pin }) else { return (.accepted, []) }
        var account: Int?
        var server: String?
        var nodeID: String?
        switch message {
        case .hello(let m): (account, server, nodeID) = (m.accountLogin, m.broker, m.nodeID)
        case .handshake(let m): (account, server, nodeID) = (m.accountNumber, m.server, m.nodeID)
        case .telemetryHeartbeat(let m): (account, nodeID) = (m.accountNumber, m.nodeID)
        case .heartbeat(let m): nodeID = m.nodeID
        case .disconnect(let m):
            // Only the running EA may say it stops (anyone may claim a UUID).
            guard m.nodeID == peek(index, { $0.nodeID }) else {
                return refuse(uuid, peer: peer, account: 0, "DISCONNECT from another node id", at: now)
            }
            return (.accepted, [])
        default: return (.accepted, [])
        }
        let claimed = account ?? nodeID.flatMap(Self.login(ofNodeID:))
        if let claimed, claimed != 0, claimed != pin.account {
            return pending(uuid, pin: pin, account: claimed, server: server ?? pin.server, peer: peer, at: now)
        }
        if let server, !server.isEmpty, !pin.server.isEmpty, server != pin.server {
            return pending(uuid, pin: pin, account: claimed ?? pin.account, server: server, peer: peer, at: now)
        }
        if let peer, !peerMatch.matches(peer, pin.peer) {
            // The same account from another machine: a move once the pinned EA is silent, a duplicate while it lives.
            guard now - peek(index, { $0.lastSeen }) > silentAfter else {
                let (verdict, events) = refuse(
                    uuid, peer: peer, account: claimed ?? 0,
                    "another machine (\(peer)) while the pinned EA (\(pin.peer)) is alive", at: now)
                let duplicate = NodeEvent.duplicateEA(
                    uuid: uuid, pinnedPeer: pin.peer, peer: peer, account: claimed ?? 0, at: now)
                return (verdict, events + [duplicate])
            }
            peek(index) { $0.pin?.peer = peer }
        }
        if claimed == pin.account { peek(index) { $0.pinnedSeenAt = now } }
        return (.accepted, [])
    }

    private mutating func refuse(_ uuid: String, peer: String?, account: Int, _ reason: String, at now: Double) -> (
        Verdict, [NodeEvent]
    ) {
        update(uuid) { $0.lastRefused = RefusedAttempt(peer: peer ?? "", account: account, reason: reason, at: now) }
        return (.refused(reason), [])
    }

    private mutating func pending(
        _ uuid: String, pin: NodePin, account: Int, server: String, peer: String?, at now: Double
    )
        -> (Verdict, [NodeEvent])
    {
        let reason = "account \(account) on \(server) is not the pinned \(pin.account) on \(pin.server)"
        let (verdict, _) = refuse(uuid, peer: peer, account: account, reason, at: now)
        var events: [NodeEvent] = []
        let known = nodes[uuid]?.pendingSwitch
        // A heartbeat carries no server: the same account again is the same pending switch.
        if known?.account != account || (server != pin.server && known?.server != server) {
            update(uuid) {
                $0.pendingSwitch = PendingSwitch(
                    account: account, server: server, peer: peer ?? known?.peer ?? "", at: now)
            }
            events.append(
                .switchPending(
                    uuid: uuid, pinnedAccount: pin.account, account: account, server: server, peer: peer ?? "", at: now)
            )
        } else if let peer, !peer.isEmpty, known?.peer.isEmpty == true {
            update(uuid) { $0.pendingSwitch?.peer = peer }
        }
        return (verdict, events)
    }

    /// An operator approves the pending switch: the pin moves to the new account, server and machine.
    public mutating func approveSwitch(_ uuid: String, at now: Double) -> [NodeEvent] {
        guard let node = nodes[uuid], let switching = node.pendingSwitch else { return [] }
        let old = node.account
        update(uuid) { n in
            n.pin = NodePin(account: switching.account, server: switching.server, peer: switching.peer, since: now)
            n.pendingSwitch = nil
            n.account = switching.account
            n.server = switching.server
            n.accountSwitches += 1
            n.pinnedSeenAt = now
        }
        return [.accountSwitch(uuid: uuid, oldAccount: old, newAccount: switching.account, at: now)]
    }

    /// An operator dismisses the pending switch (an intruder): the pin stays.
    public mutating func dismissSwitch(_ uuid: String) -> Bool {
        guard nodes[uuid]?.pendingSwitch != nil else { return false }
        update(uuid) { $0.pendingSwitch = nil }
        return true
    }

    /// Clears a node's pin (and a pending switch): the next HELLO pins again.
    public mutating func unpin(_ uuid: String) -> Bool {
        guard nodes[uuid] != nil else { return false }
        update(uuid) { n in
            n.pin = nil
            n.pendingSwitch = nil
        }
        return true
    }

    /// Approves the switches pending for longer than `after` seconds in which the pinned account never
    /// came back (the operator's automatic approval; off when `after` is 0).
    public mutating func approveQuietSwitches(at now: Double, after: Double) -> [NodeEvent] {
        guard after > 0 else { return [] }
        let due = nodes.values.filter { node in
            guard let switching = node.pendingSwitch else { return false }
            return now - switching.at >= after && node.pinnedSeenAt < switching.at
        }.map(\.uuid)
        return due.sorted().flatMap { approveSwitch($0, at: now) }
    }

    /// Whether a confirmation belongs to the node: its account and node id are the pinned EA's, and it
    /// came from the pinned machine. Nil when it does, else why not.
    public func untrusted(uuid: String, account: Int, nodeID: String, peer: String?) -> String? {
        guard let node = nodes[uuid], let pin = node.pin else { return nil }
        if account != pin.account { return "account \(account) is not the pinned \(pin.account)" }
        if nodeID != node.nodeID { return "node id \(nodeID) is not the running EA's \(node.nodeID)" }
        if let peer, !peerMatch.matches(peer, pin.peer) { return "sent from \(peer), the pinned EA is at \(pin.peer)" }
        return nil
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
    private mutating func peek<T>(_ index: [String: NodeRecord].Index, _ body: (inout NodeRecord) -> T) -> T {
        body(&nodes.values[index])
    }

    private mutating func update(_ uuid: String, _ body: (inout NodeRecord) -> Void) {
        guard let index = nodes.index(forKey: uuid) else { return }
        body(&nodes.values[index])
    }

    private mutating func register(uuid: String, nodeID: String, account: Int, broker: String, at now: Double)
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
    private mutating func heartbeat(
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
