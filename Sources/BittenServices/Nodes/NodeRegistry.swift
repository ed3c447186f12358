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
        /// The nodes whose figures that write found due, oldest first from `lazyCursor`: a flush writes
        /// `lazyShare` of them, so that the write of thousands of nodes is spread over several flushes instead of
        /// holding this lock and a thread of the pool for all of them at once (at 5 000 EAs that one flush took
        /// ~40 ms of CPU every 5 s, while every heartbeat waited for this lock).
        var lazyDue: [String] = []
        var lazyCursor = 0
        var lazyShare = 0
        var events: [NodeEvent] = []
        var droppedEvents = 0
    }

    let state: Mutex<State>
    /// What the last successful flush wrote of each node (the record as written) and
    /// when it last wrote the whole hash: a flush sends only the fields that changed.
    let written = Mutex<[String: WrittenNode]>([:])
    /// Seconds after which a node's whole hash is written again (heals a hash lost in Redis).
    static let fullWriteInterval = 60.0
    /// The fewest due nodes a flush writes of a heartbeat write (`State.lazyDue`).
    static let minLazyShare = 100
    let redis: RedisClient
    let board: ServiceBoard
    let logger: Logger
    let now: @Sendable () -> Double
    let flushInterval: Duration
    let heartbeatWriteInterval: Double
    let onlineGauge = Gauge(label: "bitten_nodes_online")
    let historyLength = 100
    let maxPendingEvents = 50_000
    /// The service name on the board.
    public static let name = "nodes"

    let alerts: AlertQueue?
    let switchApprovalAfter: Double
    let refusedCounter = Counter(label: "bitten_ea_messages_refused_total")

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
                    "bitten.node.uuid": "\(message.userUUID)", "bitten.reason": "\(reason)",
                    "bitten.node.peer": "\(peer ?? "")",
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

    func append(_ events: [NodeEvent], to s: inout State) {
        s.events += events
        if s.events.count > maxPendingEvents {
            s.droppedEvents += s.events.count - maxPendingEvents
            s.events.removeFirst(s.events.count - maxPendingEvents)
        }
    }

    func log(_ event: NodeEvent) {
        switch event {
        case .switchPending(let uuid, let pinned, let account, let server, let peer, let at):
            logger.warning(
                "account switch waits for approval",
                metadata: [
                    "bitten.node.uuid": "\(uuid)", "bitten.node.pinned_account": "\(pinned)",
                    "bitten.node.account": "\(account)",
                    "bitten.node.server": "\(server)", "bitten.node.peer": "\(peer)",
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
                    "bitten.node.uuid": "\(uuid)", "bitten.node.pinned_peer": "\(pinnedPeer)",
                    "bitten.node.peer": "\(peer)",
                    "bitten.node.account": "\(account)",
                ])
            alerts?.raise(
                kind: "duplicate_ea", uuid: uuid,
                reason:
                    "a second connection from \(peer) claims \(uuid) while the pinned EA at \(pinnedPeer) is alive: refused",
                at: at)
        case .accountSwitch(let uuid, let old, let new, _):
            logger.notice(
                "account switch",
                metadata: [
                    "bitten.node.uuid": "\(uuid)", "bitten.node.old_account": "\(old)",
                    "bitten.node.new_account": "\(new)",
                ])
        case .offline(let uuid, _, let reason, _):
            logger.info("node offline", metadata: ["bitten.node.uuid": "\(uuid)", "bitten.reason": "\(reason)"])
        case .connected(let uuid, let nodeID, _, _, _, let reconnect):
            logger.debug(
                "node online",
                metadata: [
                    "bitten.node.uuid": "\(uuid)", "bitten.node.id": "\(nodeID)",
                    "bitten.redis.reconnect": "\(reconnect)",
                ])
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
}
