import BittenCore
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// Why a command could not be handed to an EA.
public struct GatewayError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// No HELLO/HEARTBEAT from this UUID since the server started, or its connection is gone.
        case notConnected = "not_connected"
        /// The command cannot be written in a form the EA reads.
        case unencodable
        /// libzmq refused the send (queue full).
        case transport
    }

    public let code: Code
    public let message: String

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The EA command channel (ROUTER 5555). Learns each EA's identity frame from its HELLO and
/// HEARTBEAT (the frame is not the UUID: the EA drops its last character) and sends commands to
/// exactly that frame with ROUTER_MANDATORY.
public final class GatewayService: Service, Sendable {
    public static let name = "gateway"

    private let socket: LoopSocket
    private let registry: NodeRegistry
    private let board: ServiceBoard
    private let metrics: WireMetrics
    private let logger: Logger
    private let throttle = LogThrottle()
    private let pingInterval: Duration
    private let now: @Sendable () -> Double
    /// uuid → identity frame, identity frame → uuid, and uuid → the node id of the message that set the route.
    /// An EA's route: the routing id its DEALER speaks with, and the node id that last spoke on it.
    private struct Route {
        var identity: [UInt8]
        var nodeID: String?
    }
    private let routes = Mutex<(byUUID: [String: Route], byIdentity: [[UInt8]: String])>(([:], [:]))
    private let pingCounter = Atomic<Int>(0)

    private let limiter: Mutex<RateLimiter?>
    private let legacyText: Counter
    private let refused = Counter(label: "bitten_ea_intruder_messages_total")

    private let fireTimeout: Double
    private let quietWhenMarketClosed: Bool
    private let alerts: AlertQueue?

    /// Connection events of the command socket (accepted, disconnected), when it is monitored.
    private let monitor: LoopSocket?
    /// Seconds a link may stay silent from its accept before it counts as refused by libzmq.
    private let linkTimeout: Double
    private let localPort: Int
    private let links = Mutex(EALinks())
    /// When each host was last alerted about silent links (one alert per host per cooldown).
    private let silentAlerted = Mutex<[String: Double]>([:])
    private let droppedSilent = Counter(label: "bitten_ea_links_dropped_total", dimensions: [("reason", "silent")])
    private let droppedRestart = Counter(label: "bitten_ea_links_dropped_total", dimensions: [("reason", "restart")])
    private let droppedRefused = Counter(label: "bitten_ea_links_dropped_total", dimensions: [("reason", "refused")])
    private let droppedStale = Counter(label: "bitten_ea_links_dropped_total", dimensions: [("reason", "stale")])

    /// `fireTimeout`: how long an unanswered ping may wait before the node is marked `commands_unread`;
    /// `quietWhenMarketClosed`: no pings Friday 22:00 → Sunday 22:00 UTC; `monitor`: the command socket's
    /// connection events (see `EALinks`), with `linkTimeout` the seconds a new connection may stay silent.
    public init(
        socket: LoopSocket, registry: NodeRegistry, board: ServiceBoard, port: Int, pingInterval: Duration,
        logger: Logger, rateLimit: (rate: Double, burst: Double)? = nil, fireTimeout: Double = 30,
        quietWhenMarketClosed: Bool = true, alerts: AlertQueue? = nil, monitor: LoopSocket? = nil,
        linkTimeout: Double = 45,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.monitor = monitor
        self.linkTimeout = linkTimeout
        self.localPort = socket.boundPort ?? port
        self.fireTimeout = fireTimeout
        self.quietWhenMarketClosed = quietWhenMarketClosed
        self.alerts = alerts
        self.limiter = Mutex(rateLimit.map { RateLimiter(rate: $0.rate, burst: $0.burst) })
        self.legacyText = Counter(label: "bitten_legacy_text_messages_total", dimensions: [("port", String(port))])
        self.socket = socket
        self.registry = registry
        self.board = board
        self.metrics = WireMetrics(port: port)
        self.pingInterval = pingInterval
        self.logger = logger
        self.now = now
        board.register(Self.name)
    }

    /// Whether a route to `uuid` is known and current.
    public func isConnected(_ uuid: String) -> Bool { (try? route(uuid)) != nil }

    /// The identity frame for `uuid`. A route set by an earlier start of the EA than the one the node now
    /// knows (its market data and confirmations already come from a new node id) is stale: the new start's
    /// command connection has not spoken yet — its old connection may still hold the routing id, dead — so
    /// nothing is sent until it does.
    private func route(_ uuid: String) throws(GatewayError) -> [UInt8] {
        let route = routes.withLock { $0.byUUID[uuid] }
        let (identity, routeNode) = (route?.identity, route?.nodeID)
        guard let identity else {
            throw GatewayError(
                code: .notConnected, message: "EA \(uuid) is not connected (no HELLO or HEARTBEAT received)")
        }
        if let routeNode, let current = registry.node(uuid)?.nodeID, !current.isEmpty, current != routeNode {
            throw GatewayError(
                code: .notConnected,
                message:
                    "EA \(uuid) restarted as \(current) and its command connection has not spoken since (the route is \(routeNode)'s)"
            )
        }
        return identity
    }

    /// UUIDs with a known route.
    public var connectedUUIDs: [String] { routes.withLock { Array($0.byUUID.keys) } }

    /// Sends `command` to the EA of its target UUID only.
    public func send(_ command: EACommand) async throws(GatewayError) {
        let uuid = command.targetUUID
        let payload: [UInt8]
        do {
            payload = try CommandEncoder.encode(command)
        } catch {
            throw GatewayError(code: .unencodable, message: error.description)
        }
        let identity = try route(uuid)
        do {
            try await socket.send(Message([identity, payload]))
            if case .ping = command {} else { registry.commandSent(uuid: uuid) }
            metrics.sentMessages(1)
            board.count(Self.name, out: 1)
        } catch let error as ZMQError where error.hostUnreachable {
            forget(uuid: uuid, identity: identity)
            throw GatewayError(code: .notConnected, message: "EA \(uuid) is no longer connected")
        } catch {
            board.count(Self.name, errors: 1)
            throw GatewayError(code: .transport, message: "\(error)")
        }
    }

    private func forget(uuid: String, identity: [UInt8]) {
        routes.withLock { r in
            if r.byUUID[uuid]?.identity == identity { r.byUUID[uuid] = nil }
            if r.byIdentity[identity] == uuid { r.byIdentity[identity] = nil }
        }
    }

    private func learn(uuid: String, identity: [UInt8], nodeID: String?) {
        let displaced: String? = routes.withLock { r in
            // Every heartbeat comes here: a route that is already what it says is left alone (one lookup, no write).
            let known = r.byUUID[uuid]
            if let known, known.identity == identity, nodeID == nil || nodeID!.isEmpty || known.nodeID == nodeID {
                return nil
            }
            var displaced: String?
            if let owner = r.byIdentity[identity], owner != uuid {
                // Two UUIDs that differ only in their last character share a frame: never let a
                // command for one reach the other.
                r.byUUID[owner] = nil
                displaced = owner
            }
            if let old = known?.identity, old != identity { r.byIdentity[old] = nil }
            var route = r.byUUID[uuid] ?? Route(identity: identity, nodeID: nil)
            route.identity = identity
            if let nodeID, !nodeID.isEmpty { route.nodeID = nodeID }
            r.byUUID[uuid] = route
            r.byIdentity[identity] = uuid
            return displaced
        }
        if let displaced {
            logger.warning(
                "identity frame collision: route removed",
                metadata: ["bitten.node.uuid": "\(uuid)", "displaced_uuid": "\(displaced)"])
        }
    }

    public func run() async throws {
        board.set(Self.name, .running)
        // Received batches are handled on the socket's loop thread (the handler only takes locks and posts):
        // no hand-off to a task per batch, which at 10 000 heartbeating EAs cost more than the handling.
        await socket.handleInline { [self] batch in handle(batch) }
        await withDiscardingTaskGroup { group in
            // Batches received before the switch still go through the stream.
            group.addTask { await self.receiveLoop() }
            group.addTask { await self.pingLoop() }
            if let monitor = self.monitor {
                group.addTask { await self.monitorLoop(monitor) }
                group.addTask { await self.sweepLoop() }
            }
        }
        await socket.stopInlineHandling()
        board.set(Self.name, .stopped)
    }

    private func receiveLoop() async {
        await withGracefulShutdownHandler {
            for await batch in socket.messages.cancelOnGracefulShutdown() {
                handle(batch)
            }
        } onGracefulShutdown: {
        }
    }

    func handle(_ batch: [Message]) {
        let at = now()
        metrics.receivedMessages(batch.count)
        var rejected = 0
        for message in batch {
            let frames = message.frames
            let fd = message.sourceDescriptor
            // Whatever it is, the message shows that its connection is not one libzmq refused (see EALinks).
            guard frames.count == 2 || (frames.count == 3 && frames[1].isEmpty) else {
                if let fd { noteLink(fd, uuid: nil, peer: message.peerAddress, at: at) }
                rejected += 1
                reject(
                    WireError(.malformed, "expected identity and one JSON frame, got \(frames.count) frames"),
                    identity: frames.first)
                continue
            }
            if !limiter.withLock({ $0 == nil || $0!.allow(String(decoding: frames[0], as: UTF8.self), at: at) }) {
                if let fd { noteLink(fd, uuid: nil, peer: message.peerAddress, at: at) }
                rejected += 1
                reject(WireError(.rateLimited, "identity over its message rate"), identity: frames[0])
                continue
            }
            do {
                // The EA's plain heartbeat in one pass; anything else (or anything odd) through the decoder.
                let decoded: EAMessage
                if let scanned = message.payload.withUnsafeBytes({ HeartbeatScanner.scan($0, channel: .command) }) {
                    decoded = scanned
                } else {
                    let (full, legacy) = try EAMessage.decodeNoting(message.payload, channel: .command)
                    if legacy { legacyText.increment() }
                    decoded = full
                }
                // Only a message that fits the node's pin may set its route.
                if let fd { noteLink(fd, uuid: decoded.userUUID, peer: message.peerAddress, at: at) }
                switch registry.handle(decoded, at: at, peer: message.peerAddress) {
                case .accepted:
                    learn(uuid: decoded.userUUID, identity: frames[0], nodeID: Self.nodeID(of: decoded))
                case .refused(let reason):
                    rejected += 1
                    refused.increment()
                    forget(uuid: decoded.userUUID, identity: frames[0])
                    // A refused connection that holds the routing id would keep the pinned EA out (libzmq gives
                    // the id to one connection at a time): drop it, unless it is an account switch waiting for
                    // an operator, who may approve it.
                    if let fd, registry.node(decoded.userUUID)?.pendingSwitch == nil, dropLink(fd) {
                        droppedRefused.increment()
                    }
                    if let suppressed = throttle.allow() {
                        logger.warning(
                            "EA message refused: it does not fit the node's pin",
                            metadata: [
                                "bitten.node.uuid": "\(decoded.userUUID)", "peer": "\(message.peerAddress ?? "")",
                                "reason": "\(reason)",
                                "suppressed_since_last": "\(suppressed)",
                            ])
                    }
                }
            } catch {
                if let fd { noteLink(fd, uuid: nil, peer: message.peerAddress, at: at) }
                rejected += 1
                reject(error, identity: frames[0])
            }
        }
        board.count(Self.name, in: batch.count - rejected, errors: rejected)
    }

    private func reject(_ error: WireError, identity: [UInt8]?) {
        metrics.rejected(error)
        if let suppressed = throttle.allow() {
            logger.warning(
                "message rejected",
                metadata: [
                    "port": "command", "reason": "\(error)",
                    "identity": "\(String(decoding: (identity ?? []).prefix(64), as: UTF8.self))",
                    "suppressed_since_last": "\(suppressed)",
                ])
        }
    }

    private static func nodeID(of message: EAMessage) -> String? {
        switch message {
        case .hello(let m): m.nodeID
        case .heartbeat(let m): m.nodeID
        default: nil
        }
    }

    // MARK: links (see EALinks)

    private func noteLink(_ fd: Int32, uuid: String?, peer: String?, at: Double) {
        links.withLock { table in
            // A link whose accept was not seen (rare): learn its far end now, so that a drop can check it.
            if table.links[fd] == nil, let remote = TCPLink.remoteEndpoint(fd) {
                table.opened(fd, host: remote.host, port: remote.port, at: at)
            }
            table.delivered(fd, uuid: uuid, peerAddress: peer, at: at)
        }
    }

    /// Shuts the link down (its DEALER reconnects by itself) if it still is the connection we know.
    @discardableResult
    private func dropLink(_ fd: Int32) -> Bool {
        guard
            let link = links.withLock({ table -> EALinks.Link? in
                defer { table.forget(fd) }
                return table.links[fd]
            })
        else { return false }
        return drop(fd, link)
    }

    private func drop(_ fd: Int32, _ link: EALinks.Link) -> Bool {
        guard let port = link.port else { return false }
        return TCPLink.drop(fd, remote: (link.host, port), localPort: localPort)
    }

    private func monitorLoop(_ monitor: LoopSocket) async {
        await withGracefulShutdownHandler {
            for await batch in monitor.messages.cancelOnGracefulShutdown() {
                for message in batch {
                    guard let event = MonitorEvent(message) else { continue }
                    linkEvent(event, at: now())
                }
            }
        } onGracefulShutdown: {
        }
    }

    func linkEvent(_ event: MonitorEvent, at: Double) {
        let fd = Int32(bitPattern: event.value)
        switch event.kind {
        case .accepted:
            guard let remote = TCPLink.remoteEndpoint(fd) else { return }
            links.withLock { $0.opened(fd, host: remote.host, port: remote.port, at: at) }
        case .disconnected:
            let waiting = links.withLock { $0.closed(fd) }
            for (fd, link) in waiting where drop(fd, link) {
                droppedRestart.increment()
                logger.info(
                    "EA connection closed: a silent connection from the same host (the EA restarted while its old connection still held the routing id) was dropped so that it reconnects and takes the route",
                    metadata: ["peer": "\(link.host):\(link.port ?? 0)"])
            }
        default: break
        }
    }

    private func sweepLoop() async {
        let every = Duration.milliseconds(Int64(max(0.1, linkTimeout / 4) * 1000))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: every) } } catch { return }
            // Stale first: dropping a restarted EA's old connection releases its new one as a restart,
            // not as a duplicate.
            sweepStaleLinks(at: now())
            sweepSilentLinks(at: now())
        }
    }

    /// Drops a node's link that has been silent longer than the link timeout while the node is heard on
    /// its other channels within it: that path is stuck, or it is the old connection of a restarted EA,
    /// and it holds the routing id that the EA's live connection needs. (This is what ZMTP heartbeats did;
    /// their timers cost libzmq 4.3 a linear scan of every connection per answered PING.)
    func sweepStaleLinks(at: Double) {
        let candidates = links.withLock { $0.stale(longerThan: linkTimeout, at: at) }
        for (fd, link) in candidates {
            guard let uuid = link.uuid, let node = registry.node(uuid), node.online, at - node.lastSeen <= linkTimeout
            else { continue }
            // Taken out as if closed: the silent connections of its host (a restarted EA held off by it) are
            // released at once, as when the monitor reports a close.
            let released = links.withLock { table -> [(fd: Int32, link: EALinks.Link)]? in
                guard let current = table.links[fd], current.lastMessageAt == link.lastMessageAt else { return nil }
                return table.closed(fd)
            }
            guard let released, drop(fd, link) else { continue }
            droppedStale.increment()
            logger.warning(
                "EA connection dropped: silent past the link timeout while its EA is heard on its other channels",
                metadata: [
                    "bitten.node.uuid": "\(uuid)", "peer": "\(link.host):\(link.port ?? 0)",
                    "silent_seconds": "\(Int(at - (link.lastMessageAt ?? at)))",
                ])
            for (fd, link) in released where drop(fd, link) { droppedRestart.increment() }
        }
    }

    /// Drops links that have sent nothing since they opened, longer than the link timeout: libzmq gave
    /// them no route because another live connection holds their routing id, and drops all they send.
    func sweepSilentLinks(at: Double) {
        let silent = links.withLock { $0.silent(longerThan: linkTimeout, at: at) }
        for (fd, link) in silent {
            _ = drop(fd, link)
            droppedSilent.increment()
            let candidates = links.withLock { $0.uuids(from: link.host) }
            let alert: Bool = silentAlerted.withLock { last in
                if let previous = last[link.host], at - previous < 600 { return false }
                last[link.host] = at
                return true
            }
            let peer = "\(link.host):\(link.port ?? 0)"
            let which =
                candidates.isEmpty
                ? "an EA with the UUID of a connected node, from a host no connected node uses"
                : "a second EA on the host of \(candidates.joined(separator: ", "))"
            logger.warning(
                "EA connection dropped: silent since it connected, its routing id is held by another live connection",
                metadata: [
                    "peer": "\(peer)", "silent_seconds": "\(Int(at - link.openedAt))",
                    "same_host_nodes": "\(candidates)",
                ])
            if alert {
                alerts?.raise(
                    kind: "duplicate_ea", uuid: candidates.count == 1 ? candidates[0] : nil, broker: nil,
                    reason:
                        "a connection from \(link.host) sent nothing for \(Int(linkTimeout)) s: another live connection holds its routing id (\(which)), so libzmq gives it no route and drops what it sends; it was closed and is refused again each time it reconnects while the first one lives",
                    at: at)
            }
        }
    }

    /// Pings measure latency without ever delaying a fire: the EA reads one command per tick of its
    /// chart symbol, so a ping waits for the previous pong and for every other command's answer, and
    /// none goes to an offline node or while the market is closed. A ping unanswered past the fire
    /// timeout marks the node `commands_unread` and raises one alert.
    private func pingLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.pingInterval) } } catch {
                return
            }
            await pingRound()
        }
    }

    /// One round of the ping loop.
    func pingRound() async {
        let at = now()
        let time = MetaTraderTime(epochSeconds: Int(at))
        let closed = quietWhenMarketClosed && AlertPolicy.marketClosed(at: at)
        for (uuid, decision) in registry.pingDecisions(connectedUUIDs, fireTimeout: fireTimeout, marketClosed: closed) {
            switch decision {
            case .wait: continue
            case .unread:
                logger.warning(
                    "EA reads no command: a ping is unanswered",
                    metadata: [
                        "bitten.node.uuid": "\(uuid)", "waited_seconds": "\(Int(fireTimeout))",
                    ])
                alerts?.raise(
                    kind: "commands_unread", uuid: uuid, broker: registry.node(uuid)?.broker,
                    reason:
                        "no answer to a ping for \(Int(fireTimeout)) s: the EA's chart symbol is quiet or the EA is stuck, so commands to it wait",
                    at: at)
            case .send:
                let id = "P-\(pingCounter.add(1, ordering: .relaxed).newValue)"
                registry.pingSent(uuid: uuid, pingID: id)
                do {
                    try await send(.ping(targetUUID: uuid, pingID: id, timestamp: time))
                } catch {
                    logger.debug("ping not sent", metadata: ["bitten.node.uuid": "\(uuid)", "error": "\(error)"])
                }
            }
        }
    }
}
