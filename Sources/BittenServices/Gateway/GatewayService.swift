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
    /// uuid → identity frame, and identity frame → uuid.
    private let routes = Mutex<(byUUID: [String: [UInt8]], byIdentity: [[UInt8]: String])>(([:], [:]))
    private let pingCounter = Atomic<Int>(0)

    private let limiter: Mutex<RateLimiter?>
    private let legacyText: Counter
    private let refused = Counter(label: "bitten_ea_intruder_messages_total")

    private let fireTimeout: Double
    private let quietWhenMarketClosed: Bool
    private let alerts: AlertQueue?

    /// `fireTimeout`: how long an unanswered ping may wait before the node is marked `commands_unread`;
    /// `quietWhenMarketClosed`: no pings Friday 22:00 → Sunday 22:00 UTC.
    public init(socket: LoopSocket, registry: NodeRegistry, board: ServiceBoard, port: Int, pingInterval: Duration,
                logger: Logger, rateLimit: (rate: Double, burst: Double)? = nil, fireTimeout: Double = 30,
                quietWhenMarketClosed: Bool = true, alerts: AlertQueue? = nil,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
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

    /// Whether a route to `uuid` is known.
    public func isConnected(_ uuid: String) -> Bool { routes.withLock { $0.byUUID[uuid] != nil } }

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
        guard let identity = routes.withLock({ $0.byUUID[uuid] }) else {
            throw GatewayError(code: .notConnected, message: "EA \(uuid) is not connected (no HELLO or HEARTBEAT received)")
        }
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
            if r.byUUID[uuid] == identity { r.byUUID[uuid] = nil }
            if r.byIdentity[identity] == uuid { r.byIdentity[identity] = nil }
        }
    }

    private func learn(uuid: String, identity: [UInt8]) {
        let displaced: String? = routes.withLock { r in
            var displaced: String?
            if let owner = r.byIdentity[identity], owner != uuid {
                // Two UUIDs that differ only in their last character share a frame: never let a
                // command for one reach the other.
                r.byUUID[owner] = nil
                displaced = owner
            }
            if let old = r.byUUID[uuid], old != identity { r.byIdentity[old] = nil }
            r.byUUID[uuid] = identity
            r.byIdentity[identity] = uuid
            return displaced
        }
        if let displaced {
            logger.warning("identity frame collision: route removed",
                           metadata: ["bitten.node.uuid": "\(uuid)", "displaced_uuid": "\(displaced)"])
        }
    }

    public func run() async throws {
        board.set(Self.name, .running)
        await withDiscardingTaskGroup { group in
            group.addTask { await self.receiveLoop() }
            group.addTask { await self.pingLoop() }
        }
        board.set(Self.name, .stopped)
    }

    private func receiveLoop() async {
        await withGracefulShutdownHandler {
            for await batch in socket.messages.cancelOnGracefulShutdown() {
                handle(batch)
            }
        } onGracefulShutdown: {}
    }

    func handle(_ batch: [Message]) {
        let at = now()
        metrics.receivedMessages(batch.count)
        var rejected = 0
        for message in batch {
            let frames = message.frames
            guard frames.count == 2 || (frames.count == 3 && frames[1].isEmpty) else {
                rejected += 1
                reject(WireError(.malformed, "expected identity and one JSON frame, got \(frames.count) frames"), identity: frames.first)
                continue
            }
            if !limiter.withLock({ $0 == nil || $0!.allow(String(decoding: frames[0], as: UTF8.self), at: at) }) {
                rejected += 1
                reject(WireError(.rateLimited, "identity over its message rate"), identity: frames[0])
                continue
            }
            do {
                let (decoded, legacy) = try EAMessage.decodeNoting(message.payload, channel: .command)
                if legacy { legacyText.increment() }
                // Only a message that fits the node's pin may set its route. ROUTER_HANDOVER gives the
                // newest connection the identity frame and renames the old one's: a refused newcomer that
                // now holds the frame loses the route, and the pinned EA's next message (from its renamed
                // frame) takes it back.
                switch registry.handle(decoded, at: at, peer: message.peerAddress) {
                case .accepted:
                    learn(uuid: decoded.userUUID, identity: frames[0])
                case .refused(let reason):
                    rejected += 1
                    refused.increment()
                    forget(uuid: decoded.userUUID, identity: frames[0])
                    if let suppressed = throttle.allow() {
                        logger.warning("EA message refused: it does not fit the node's pin", metadata: [
                            "bitten.node.uuid": "\(decoded.userUUID)", "peer": "\(message.peerAddress ?? "")", "reason": "\(reason)",
                            "suppressed_since_last": "\(suppressed)",
                        ])
                    }
                }
            } catch {
                rejected += 1
                reject(error, identity: frames[0])
            }
        }
        board.count(Self.name, in: batch.count - rejected, errors: rejected)
    }

    private func reject(_ error: WireError, identity: [UInt8]?) {
        metrics.rejected(error)
        if let suppressed = throttle.allow() {
            logger.warning("message rejected", metadata: [
                "port": "command", "reason": "\(error)", "identity": "\(String(decoding: (identity ?? []).prefix(64), as: UTF8.self))",
                "suppressed_since_last": "\(suppressed)",
            ])
        }
    }

    /// Pings measure latency without ever delaying a fire: the EA reads one command per tick of its
    /// chart symbol, so a ping waits for the previous pong and for every other command's answer, and
    /// none goes to an offline node or while the market is closed. A ping unanswered past the fire
    /// timeout marks the node `commands_unread` and raises one alert.
    private func pingLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.pingInterval) } } catch { return }
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
                logger.warning("EA reads no command: a ping is unanswered", metadata: [
                    "bitten.node.uuid": "\(uuid)", "waited_seconds": "\(Int(fireTimeout))",
                ])
                alerts?.raise(kind: "commands_unread", uuid: uuid, broker: registry.node(uuid)?.broker,
                              reason: "no answer to a ping for \(Int(fireTimeout)) s: the EA's chart symbol is quiet or the EA is stuck, so commands to it wait",
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
