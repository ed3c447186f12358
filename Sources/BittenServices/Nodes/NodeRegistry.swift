import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// The single owner of node state. Message handlers call it synchronously (cheap, in memory); a
/// flush loop writes what changed to Redis in one pipeline every `flushInterval`, retrying after a
/// Redis outage, so no socket loop ever waits for Redis.
public final class NodeRegistry: Service, Sendable {
    struct State {
        var table: NodeTable
        var dirty: Set<String> = []
        /// When the heartbeats' and pongs' figures (last seen, balance, latency…) were last written: they are
        /// written every `heartbeatWriteInterval`, not every flush, for each node seen since (every such
        /// message moves `lastSeen`; nothing is noted per message).
        var lazyFlushedAt = -Double.infinity
        var events: [NodeEvent] = []
        var droppedEvents = 0
    }

    private let state: Mutex<State>
    /// What the last successful flush wrote of each node (the record as written) and
    /// when it last wrote the whole hash: a flush sends only the fields that changed.
    private let written = Mutex<[String: WrittenNode]>([:])
    /// Seconds after which a node's whole hash is written again (heals a hash lost in Redis).
    static let fullWriteInterval = 60.0
    private let redis: RedisClient
    private let board: ServiceBoard
    private let logger: Logger
    private let now: @Sendable () -> Double
    private let flushInterval: Duration
    private let heartbeatWriteInterval: Double
    private let onlineGauge = Gauge(label: "bitten_nodes_online")
    private let historyLength = 100
    private let maxPendingEvents = 50_000
    /// The service name on the board.
    public static let name = "nodes"

    private let alerts: AlertQueue?
    private let switchApprovalAfter: Double
    private let refusedCounter = Counter(label: "bitten_ea_messages_refused_total")

    /// `peerMatch`: how a message's peer address must match the pinned one; `switchApprovalAfter`:
    /// seconds after which a pending account switch is approved when the pinned account never came
    /// back (0 = only an operator approves); `alerts`: where pending switches and duplicate EAs are raised.
    public init(
        redis: RedisClient, board: ServiceBoard, gateway: String = "gateway-1",
        canon: SymbolCanon = SymbolCanon(known: InstrumentTable.standard.instruments.keys),
        peerMatch: PeerMatch = .exact, switchApprovalAfter: Double = 0, alerts: AlertQueue? = nil,
        flushInterval: Duration = .milliseconds(200), heartbeatWriteInterval: Double = 5, logger: Logger,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.state = Mutex(State(table: NodeTable(gateway: gateway, canon: canon, peerMatch: peerMatch)))
        self.alerts = alerts
        self.switchApprovalAfter = switchApprovalAfter
        self.redis = redis
        self.board = board
        self.logger = logger
        self.now = now
        self.flushInterval = flushInterval
        self.heartbeatWriteInterval = heartbeatWriteInterval
        board.register(Self.name)
    }

    // MARK: events

    /// Applies one EA message received at `time` (server clock) from `peer` (its IP, when known),
    /// after checking it against the node's pin. A refused message changes nothing but the node's
    /// last refused attempt (and a pending switch); the caller must not route by it.
    @discardableResult
    public func handle(_ message: EAMessage, at time: Double? = nil, peer: String? = nil) -> NodeTable.Verdict {
        let at = time ?? now()
        let (verdict, events): (NodeTable.Verdict, [NodeEvent]) = state.withLock { s in
            let (verdict, admission) = s.table.admit(message, peer: peer, at: at)
            if case .refused = verdict {
                s.dirty.insert(message.userUUID)
                append(admission, to: &s)
                return (verdict, admission)
            }
            let events: [NodeEvent]
            switch message {
            case .hello(let m): events = s.table.apply(m, at: at, peer: peer)
            case .heartbeat(let m): events = s.table.apply(m, at: at)
            case .handshake(let m): events = s.table.apply(m, at: at)
            case .telemetryHeartbeat(let m): events = s.table.apply(m, at: at)
            case .disconnect(let m): events = s.table.apply(m, at: at)
            case .pong(let m):
                s.table.apply(m, at: at)
                events = []
            case .confirmation, .closeConfirmation:
                s.table.commandAnswered(uuid: message.userUUID)
                events = []
            default: return (verdict, [])
            }
            // A heartbeat or pong that changed nothing but its figures waits for the next heartbeat write
            // (every `heartbeatWriteInterval`): at 10 000 EAs writing each node every second was a third
            // of the server's CPU. Status, registration, pins and every event go out with the next flush.
            let figuresOnly: Bool
            switch message {
            case .heartbeat, .telemetryHeartbeat, .pong: figuresOnly = admission.isEmpty && events.isEmpty
            default: figuresOnly = false
            }
            if !figuresOnly { s.dirty.insert(message.userUUID) }
            append(admission + events, to: &s)
            return (verdict, admission + events)
        }
        if case .refused(let reason) = verdict {
            refusedCounter.increment()
            logger.debug(
                "EA message refused",
                metadata: [
                    "bitten.node.uuid": "\(message.userUUID)", "reason": "\(reason)",
                    "peer": "\(peer ?? "")",
                ])
        }
        for event in events { log(event) }
        return verdict
    }

    /// Why a confirmation does not belong to its node (account, node id, machine), or nil.
    public func untrusted(uuid: String, account: Int, nodeID: String, peer: String?) -> String? {
        state.withLock { $0.table.untrusted(uuid: uuid, account: account, nodeID: nodeID, peer: peer) }
    }

    /// An operator approves a node's pending account switch; false when none is pending.
    public func approveSwitch(_ uuid: String) -> Bool {
        let at = now()
        let events: [NodeEvent] = state.withLock { s in
            let events = s.table.approveSwitch(uuid, at: at)
            if !events.isEmpty {
                s.dirty.insert(uuid)
                append(events, to: &s)
            }
            return events
        }
        for event in events { log(event) }
        return !events.isEmpty
    }

    /// An operator dismisses a node's pending switch (the pin stays); false when none is pending.
    public func dismissSwitch(_ uuid: String) -> Bool {
        state.withLock { s in
            guard s.table.dismissSwitch(uuid) else { return false }
            s.dirty.insert(uuid)
            return true
        }
    }

    /// Clears a node's pin; false for an unknown node.
    public func unpin(_ uuid: String) -> Bool {
        state.withLock { s in
            guard s.table.unpin(uuid) else { return false }
            s.dirty.insert(uuid)
            return true
        }
    }

    /// Records a ping sent to `uuid`.
    public func pingSent(uuid: String, pingID: String) {
        let at = now()
        state.withLock { $0.table.pingSent(uuid: uuid, pingID: pingID, at: at) }
    }

    /// Records a command (fire, close) sent to `uuid`.
    public func commandSent(uuid: String) {
        let at = now()
        state.withLock { $0.table.commandSent(uuid: uuid, at: at) }
    }

    /// Learns broker symbol names seen in TICKs: (uuid, broker name, canonical).
    public func learnSymbols(_ names: [(uuid: String, broker: String, canonical: String)]) {
        state.withLock { s in
            for name in names where s.table.learnSymbol(name.uuid, broker: name.broker, canonical: name.canonical) {
                s.dirty.insert(name.uuid)
            }
        }
    }

    /// The ping loop's decision for each of `uuids` (see `NodeTable.pingDecision`).
    public func pingDecisions(_ uuids: [String], fireTimeout: Double, marketClosed: Bool) -> [(
        uuid: String, decision: NodeTable.PingDecision
    )] {
        let at = now()
        return state.withLock { s in
            uuids.map { uuid in
                let decision = s.table.pingDecision(uuid, at: at, fireTimeout: fireTimeout, marketClosed: marketClosed)
                if decision == .unread { s.dirty.insert(uuid) }
                return (uuid, decision)
            }
        }
    }

    /// The canonical instrument of a broker symbol.
    public var canon: SymbolCanon { state.withLock { $0.table.canon } }

    /// Marks offline every node silent for longer than `timeout`; returns the offline events.
    public func expire(timeout: Double) -> (events: [NodeEvent], onlineBefore: [String: Int]) {
        let at = now()
        return state.withLock { s in
            let before = s.table.countsByBroker.mapValues(\.online)
            let approved = s.table.approveQuietSwitches(at: at, after: switchApprovalAfter)
            for case .accountSwitch(let uuid, _, _, _) in approved { s.dirty.insert(uuid) }
            append(approved, to: &s)
            let events = s.table.expire(at: at, timeout: timeout)
            for case .offline(let uuid, _, _, _) in events { s.dirty.insert(uuid) }
            append(events, to: &s)
            return (events, before)
        }
    }

    private func append(_ events: [NodeEvent], to s: inout State) {
        s.events += events
        if s.events.count > maxPendingEvents {
            s.droppedEvents += s.events.count - maxPendingEvents
            s.events.removeFirst(s.events.count - maxPendingEvents)
        }
    }

    private func log(_ event: NodeEvent) {
        switch event {
        case .switchPending(let uuid, let pinned, let account, let server, let peer, let at):
            logger.warning(
                "account switch waits for approval",
                metadata: [
                    "bitten.node.uuid": "\(uuid)", "pinned_account": "\(pinned)", "account": "\(account)",
                    "server": "\(server)", "peer": "\(peer)",
                ])
            alerts?.raise(
                kind: "account_switch_pending", uuid: uuid,
                reason:
                    "account \(account) on \(server) from \(peer) claims \(uuid), pinned to \(pinned): no fires until `bitten node approve \(uuid)` (or dismiss)",
                at: at)
        case .duplicateEA(let uuid, let pinnedPeer, let peer, let account, let at):
            logger.warning(
                "second EA refused",
                metadata: [
                    "bitten.node.uuid": "\(uuid)", "pinned_peer": "\(pinnedPeer)", "peer": "\(peer)",
                    "account": "\(account)",
                ])
            alerts?.raise(
                kind: "duplicate_ea", uuid: uuid,
                reason:
                    "a second connection from \(peer) claims \(uuid) while the pinned EA at \(pinnedPeer) is alive: refused",
                at: at)
        case .accountSwitch(let uuid, let old, let new, _):
            logger.notice(
                "account switch",
                metadata: ["bitten.node.uuid": "\(uuid)", "old_account": "\(old)", "new_account": "\(new)"])
        case .offline(let uuid, _, let reason, _):
            logger.info("node offline", metadata: ["bitten.node.uuid": "\(uuid)", "reason": "\(reason)"])
        case .connected(let uuid, let nodeID, _, _, _, let reconnect):
            logger.debug(
                "node online",
                metadata: ["bitten.node.uuid": "\(uuid)", "node_id": "\(nodeID)", "reconnect": "\(reconnect)"])
        }
    }

    // MARK: reads

    /// One node.
    public func node(_ uuid: String) -> NodeRecord? { state.withLock { $0.table.nodes[uuid] } }
    /// Every known node.
    public var all: [NodeRecord] { state.withLock { Array($0.table.nodes.values) } }
    /// Online nodes.
    public var active: [NodeRecord] { state.withLock { $0.table.online } }
    /// (online, total) per broker.
    public var countsByBroker: [String: (online: Int, total: Int)] { state.withLock { $0.table.countsByBroker } }
    /// (online, total, fresh) where fresh means a heartbeat within 1.5 × its interval (or 45 s).
    public func counts(at time: Double? = nil) -> (online: Int, total: Int, fresh: Int) {
        let at = time ?? now()
        return state.withLock { s in
            var online = 0
            var fresh = 0
            for node in s.table.nodes.values where node.online {
                online += 1
                if at - node.lastHeartbeat <= 1.5 * max(node.heartbeatInterval ?? 30, 1) { fresh += 1 }
            }
            return (online, s.table.nodes.count, fresh)
        }
    }

    // MARK: persistence

    /// Loads persisted nodes, then flushes changes until shutdown (with a last flush on the way out).
    public func run() async throws {
        board.set(Self.name, .running)
        await restore()
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await flush()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.flushInterval) }
            }
        } onGracefulShutdown: {
        }
        await flush(all: true)
        board.set(Self.name, .stopped)
    }

    private func restore() async {
        for attempt in 0..<20 {
            do {
                // Shared connections, not a blocking one: on a cluster the hashes live on several primaries.
                let uuids =
                    try await redis.command(["SMEMBERS", RedisKeys.activeNodes]).array?.compactMap(\.string) ?? []
                let replies =
                    uuids.isEmpty ? [] : try await redis.pipeline(uuids.map { ["HGETALL", RedisKeys.node($0)] })
                let records = replies.compactMap { $0.hash.flatMap(NodeRecord.init(redisHash:)) }
                state.withLock { $0.table.restore(records) }
                if !records.isEmpty { logger.info("restored nodes", metadata: ["count": "\(records.count)"]) }
                return
            } catch {
                if attempt == 19 { logger.warning("could not restore nodes", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Writes every changed node and pending event in one pipeline. On failure they stay queued.
    /// Writes what changed; the heartbeat-only changes when `heartbeatWriteInterval` has passed (or `all`).
    public func flush(all: Bool = false) async {
        let started = now()
        let (records, events, counts): ([NodeRecord], [NodeEvent], [String: (online: Int, total: Int)]) = state.withLock
        { s in
            if all || started - s.lazyFlushedAt >= heartbeatWriteInterval {
                // A second of overlap: a message stamped just before the last write may have been applied
                // just after it (a node written twice is only compared twice: unchanged fields are not sent).
                let since = s.lazyFlushedAt - 1
                for (uuid, node) in s.table.nodes where node.lastSeen >= since { s.dirty.insert(uuid) }
                s.lazyFlushedAt = started
            }
            let records = s.dirty.compactMap { s.table.nodes[$0] }
            let events = s.events
            s.dirty.removeAll(keepingCapacity: true)
            s.events = []
            return (records, events, events.isEmpty ? [:] : s.table.countsByBroker)
        }
        onlineGauge.record(self.counts(at: now()).online)
        guard !records.isEmpty || !events.isEmpty else { return }
        let at = now()
        let (changes, _) = written.withLock { w in Self.changes(of: records, since: w, at: at) }
        let commands = commandsFor(changes: changes, events: events, counts: counts)
        guard !commands.isEmpty else { return }
        do {
            let replies = try await redis.pipeline(commands)
            if let failure = replies.first(where: { if case .error = $0 { true } else { false } }) {
                logger.error("node flush had an error reply", metadata: ["reply": "\(failure)"])
                // Whole hashes again next time: what the error left out is not known.
                written.withLock { w in for record in records { w[record.uuid] = nil } }
            } else {
                written.withLock { w in
                    if w.count > 200_000 { w.removeAll() }
                    for change in changes { w[change.uuid] = change.written }
                }
            }
            board.count(Self.name, out: records.count + events.count)
        } catch {
            state.withLock { s in
                for record in records { s.dirty.insert(record.uuid) }
                s.events = events + s.events
            }
            board.count(Self.name, errors: 1)
        }
    }

    /// What a node's flush writes: the fields that changed since the last write (all of them the first
    /// time and every `fullWriteInterval`), and the active-set update when its status changed.
    struct NodeChange {
        var uuid: String
        var fields: [(String, String)]
        var status: Bool?
        var written: WrittenNode
    }

    /// A node as last written. A class: reading one out of the map then costs one retain, not a copy
    /// of the 44-field record (10 000 of them a second at 10 000 EAs).
    final class WrittenNode: Sendable {
        let record: NodeRecord
        let fullAt: Double

        init(record: NodeRecord, fullAt: Double) {
            self.record = record
            self.fullAt = fullAt
        }
    }

    static func changes(of records: [NodeRecord], since written: [String: WrittenNode], at time: Double)
        -> ([NodeChange], Int)
    {
        var changes: [NodeChange] = []
        var unchanged = 0
        for record in records {
            guard let last = written[record.uuid], time - last.fullAt < fullWriteInterval else {
                changes.append(
                    NodeChange(
                        uuid: record.uuid, fields: record.redisFields, status: record.online,
                        written: WrittenNode(record: record, fullAt: time)))
                continue
            }
            let changed = record.redisFields(changedSince: last.record)
            let status: Bool? = last.record.online == record.online ? nil : record.online
            guard !changed.isEmpty || status != nil else {
                unchanged += 1
                continue
            }
            changes.append(
                NodeChange(
                    uuid: record.uuid, fields: changed, status: status,
                    written: WrittenNode(record: record, fullAt: last.fullAt)))
        }
        return (changes, unchanged)
    }

    private func commandsFor(changes: [NodeChange], events: [NodeEvent], counts: [String: (online: Int, total: Int)])
        -> [[String]]
    {
        var commands: [[String]] = []
        for change in changes {
            if !change.fields.isEmpty {
                commands.append(["HSET", RedisKeys.node(change.uuid)] + change.fields.flatMap { [$0.0, $0.1] })
            }
            if let online = change.status {
                commands.append([online ? "SADD" : "SREM", RedisKeys.activeNodes, change.uuid])
            }
        }
        var brokers: Set<String> = []
        for event in events {
            switch event {
            case .connected(let uuid, let nodeID, let account, let broker, let at, let reconnect):
                commands.append([
                    "LPUSH", RedisKeys.nodeHistory(uuid),
                    #"{"event":"\#(reconnect ? "reconnect" : "connect")","node_id":"\#(RedisKeys.safe(nodeID))","account":\#(account),"at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.nodeHistory(uuid), "0", String(historyLength - 1)])
                commands.append(["HINCRBY", RedisKeys.brokerStats(broker), "connections", "1"])
                commands.append(["HSET", RedisKeys.brokerStats(broker), "last_seen", String(Int(at))])
                brokers.insert(broker)
            case .accountSwitch(let uuid, let old, let new, let at):
                commands.append([
                    "LPUSH", RedisKeys.accountSwitches(uuid),
                    #"{"old_account":\#(old),"new_account":\#(new),"at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.accountSwitches(uuid), "0", String(historyLength - 1)])
            case .offline(let uuid, let broker, let reason, let at):
                commands.append([
                    "LPUSH", RedisKeys.nodeHistory(uuid),
                    #"{"event":"offline","reason":"\#(reason)","at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.nodeHistory(uuid), "0", String(historyLength - 1)])
                brokers.insert(broker)
            case .switchPending(let uuid, _, let account, _, _, let at):
                commands.append([
                    "LPUSH", RedisKeys.nodeHistory(uuid),
                    #"{"event":"switch_pending","account":\#(account),"at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.nodeHistory(uuid), "0", String(historyLength - 1)])
            case .duplicateEA(let uuid, _, _, let account, let at):
                commands.append([
                    "LPUSH", RedisKeys.nodeHistory(uuid),
                    #"{"event":"duplicate_refused","account":\#(account),"at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.nodeHistory(uuid), "0", String(historyLength - 1)])
            }
        }
        for broker in brokers {
            let count = counts[broker] ?? (0, 0)
            commands.append([
                "HSET", RedisKeys.brokerStats(broker), "nodes", String(count.total), "online", String(count.online),
            ])
        }
        return commands
    }
}
