import BittenCore
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// Why a command could not be handed to an EA.
public struct GatewayError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Why a command was not sent.
    public enum Code: String, Sendable {
        /// No HELLO/HEARTBEAT from this UUID since the server started, or its connection is gone.
        case notConnected = "not_connected"
        /// The command cannot be written in a form the EA reads.
        case unencodable
        /// libzmq refused the send (queue full).
        case transport
    }

    /// Why.
    public let code: Code
    /// What happened, for a person.
    public let message: String

    /// The code and the message.
    public var description: String { "\(code.rawValue): \(message)" }
}

/// The EA command channel (ROUTER 5555). Learns each EA's identity frame from its HELLO and
/// HEARTBEAT (the frame is not the UUID: the EA drops its last character) and sends commands to
/// exactly that frame with ROUTER_MANDATORY.
public final class GatewayService: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "gateway"

    let socket: LoopSocket
    let registry: NodeRegistry
    let board: ServiceBoard
    let metrics: WireMetrics
    let logger: Logger
    let throttle = LogThrottle()
    let pingInterval: Duration
    let now: @Sendable () -> Double
    /// uuid → identity frame, identity frame → uuid, and uuid → the node id of the message that set the route.
    /// An EA's route: the routing id its DEALER speaks with, and the node id that last spoke on it.
    struct Route {
        var identity: [UInt8]
        var nodeID: String?
    }
    let routes = Mutex<(byUUID: [String: Route], byIdentity: [[UInt8]: String])>(([:], [:]))
    let pingCounter = Atomic<Int>(0)

    let limiter: Mutex<RateLimiter?>
    let legacyText: Counter
    let refused = Counter(label: "bitten_ea_intruder_messages_total")

    let fireTimeout: Double
    let quietWhenMarketClosed: Bool
    let alerts: AlertQueue?

    /// Connection events of the command socket (accepted, disconnected), when it is monitored.
    let monitor: LoopSocket?
    /// Seconds a link may stay silent from its accept before it counts as refused by libzmq.
    let linkTimeout: Double
    let localPort: Int
    let links = Mutex(EALinks())
    /// When each host was last alerted about silent links (one alert per host per cooldown).
    let silentAlerted = Mutex<[String: Double]>([:])
    let droppedSilent = Counter(label: "bitten_ea_links_dropped_total", dimensions: [("reason", "silent")])
    let droppedRestart = Counter(label: "bitten_ea_links_dropped_total", dimensions: [("reason", "restart")])
    let droppedRefused = Counter(label: "bitten_ea_links_dropped_total", dimensions: [("reason", "refused")])
    let droppedStale = Counter(label: "bitten_ea_links_dropped_total", dimensions: [("reason", "stale")])

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
    func route(_ uuid: String) throws(GatewayError) -> [UInt8] {
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

    func forget(uuid: String, identity: [UInt8]) {
        routes.withLock { r in
            if r.byUUID[uuid]?.identity == identity { r.byUUID[uuid] = nil }
            if r.byIdentity[identity] == uuid { r.byIdentity[identity] = nil }
        }
    }

    func learn(uuid: String, identity: [UInt8], nodeID: String?) {
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
                metadata: ["bitten.node.uuid": "\(uuid)", "bitten.node.displaced_uuid": "\(displaced)"])
        }
    }

    /// Handles EA messages on 5555 and pings silent links until shutdown.
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

    func receiveLoop() async {
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
                    throttle.log(
                        logger, .warning,
                        "EA message refused: it does not fit the node's pin",
                        metadata: [
                            "bitten.node.uuid": "\(decoded.userUUID)",
                            "bitten.node.peer": "\(message.peerAddress ?? "")",
                            "bitten.reason": "\(reason)",
                        ])
                }
            } catch {
                if let fd { noteLink(fd, uuid: nil, peer: message.peerAddress, at: at) }
                rejected += 1
                reject(error, identity: frames[0])
            }
        }
        board.count(Self.name, in: batch.count - rejected, errors: rejected)
    }

    func reject(_ error: WireError, identity: [UInt8]?) {
        metrics.rejected(error)
        throttle.log(
            logger, .warning,
            "message rejected",
            metadata: [
                "bitten.socket.port": "command", "bitten.reason": "\(error)",
                "bitten.node.identity": "\(String(decoding: (identity ?? []).prefix(64), as: UTF8.self))",
            ])
    }

    static func nodeID(of message: EAMessage) -> String? {
        switch message {
        case .hello(let m): m.nodeID
        case .heartbeat(let m): m.nodeID
        default: nil
        }
    }
}
