import Logging
import ZeroMQ

/// The server's ZeroMQ sockets, bound once at start-up so that a busy port fails fast with a clear
/// error. The EA command and confirmation sockets share one loop thread; market data (5556) and its
/// relay (5560) have a thread of their own, where telemetry decodes and republishes inline; the
/// rest share a third.
public final class ServerSockets: Sendable {
    /// Which sockets to bind.
    public struct Selection: OptionSet, Sendable {
        /// The sockets' bits.
        public let rawValue: Int
        /// A selection from its bits.
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// 5555.
        public static let command = Selection(rawValue: 1 << 0)
        /// 5556.
        public static let market = Selection(rawValue: 1 << 1)
        /// 5558.
        public static let confirm = Selection(rawValue: 1 << 2)
        /// 5560.
        public static let relay = Selection(rawValue: 1 << 3)
        /// 5557.
        public static let signals = Selection(rawValue: 1 << 4)
        /// 5559.
        public static let signalIn = Selection(rawValue: 1 << 5)
        /// 5565.
        public static let alerts = Selection(rawValue: 1 << 6)
        /// 5566.
        public static let query = Selection(rawValue: 1 << 7)
        /// Every socket.
        public static let all: Selection = [.command, .market, .confirm, .relay, .signals, .signalIn, .alerts, .query]
    }

    /// The ZeroMQ context of every socket.
    public let context: Context
    /// The loop thread of the EA command and confirmation sockets.
    public let eaLoop: SocketLoop
    /// The loop thread of market data and its relay.
    public let marketLoop: SocketLoop
    /// The loop thread of signals, alerts and queries.
    public let auxLoop: SocketLoop
    /// 5555, when selected.
    public let command: LoopSocket?
    /// The command socket's connection events (accepted, disconnected), read by the gateway.
    public let commandMonitor: LoopSocket?
    /// 5556, when selected.
    public let market: LoopSocket?
    /// 5558, when selected.
    public let confirm: LoopSocket?
    /// 5560, when selected.
    public let relay: LoopSocket?
    /// 5557, when selected.
    public let signals: LoopSocket?
    /// 5559, when selected.
    public let signalIn: LoopSocket?
    /// 5565, when selected.
    public let alerts: LoopSocket?
    /// 5566, when selected.
    public let query: LoopSocket?
    /// The ZAP handler when CURVE is on (served by `CurveGuard`).
    public let zap: ZAPHandler?

    /// The largest frame libzmq accepts from a peer before dropping its connection; smaller frames
    /// that break the wire limits reach the decoders and are rejected with a counted reason.
    public static let maxFrameBytes = 2 * 1024 * 1024

    /// Binds the selected sockets; throws naming the port that could not be bound.
    /// With `curve` (the server's secret key and the allow-list), the EA-facing sockets (5555, 5556,
    /// 5558) require CURVE and every client key is checked through ZAP against the allow-list.
    /// With `networks`, the same sockets accept connections only from those source networks (ZAP is
    /// asked about every connection, CURVE or not, once the sockets have a ZAP domain).
    public static func bind(
        _ config: BittenConfig, selection: Selection = .all,
        curve: (secretKey: String, allowList: CurveAllowList)? = nil,
        networks: NetworkGate? = nil, logger: Logger
    ) async throws -> ServerSockets {
        let context = try Context(ioThreads: 2, maxSockets: 4096)
        // The EA-facing loops read a busy socket at most once per BITTEN_SOCKET_COALESCE_MS (1 ms; see
        // SocketLoop.init): sends are never held back, received messages at most that long.
        let coalesce = Duration.microseconds(Int64(config.socketCoalesceMilliseconds * 1000))
        let eaLoop = try SocketLoop(context: context, name: "zmq-ea", coalesce: coalesce, logger: logger)
        let marketLoop = try SocketLoop(
            context: context, name: "zmq-market", coalesce: coalesce, logger: logger)
        let auxLoop = try SocketLoop(context: context, name: "zmq-aux", logger: logger)
        // The ZAP endpoint must exist before a CURVE socket accepts its first connection.
        var zap: ZAPHandler?
        if curve != nil || networks != nil {
            let allowList = curve?.allowList
            let zapLogger = logger
            let refusals = LogThrottle()
            zap = try await ZAPHandler(loop: auxLoop) { request in
                let key = request.curvePublicKey ?? ""
                let keyAllowed = allowList?.contains(key) ?? true
                let networkAllowed = networks?.allows(request.address) ?? true
                if !(keyAllowed && networkAllowed), let suppressed = refusals.allow() {
                    let why =
                        networkAllowed
                        ? "CURVE client refused: key not in the allow-list"
                        : "EA connection refused: source address outside BITTEN_EA_NETWORKS"
                    zapLogger.warning(
                        "\(why)",
                        metadata: [
                            "bitten.socket.address": "\(request.address)", "bitten.node.client_key": "\(key)",
                            "bitten.log.suppressed": "\(suppressed)",
                        ])
                }
                if !networkAllowed { networks?.refused() }
                return keyAllowed && networkAllowed
            }
        }
        let curveSecret = curve?.secretKey
        let guarded = zap != nil
        func open(
            _ loop: SocketLoop, _ type: SocketType, _ port: Int, _ name: String, _ wanted: Selection,
            host: String? = nil, secure: Bool = false, configure: @escaping @Sendable (Socket) throws -> Void = { _ in }
        ) async throws
            -> LoopSocket?
        {
            guard selection.contains(wanted) else { return nil }
            let endpoint = "tcp://\(host ?? config.zmqHost):\(port)"
            do {
                return try await loop.open(type) { socket in
                    try socket.setMaxMessageSize(ServerSockets.maxFrameBytes)
                    if secure, let curveSecret { try socket.setCurveServer(secretKey: curveSecret) }
                    if secure, guarded { try socket.setZAPDomain("bitten") }
                    try configure(socket)
                    try socket.bind(endpoint)
                }
            } catch {
                throw StartupError("cannot bind \(name) (\(type.rawValue)) on \(endpoint): \(error)")
            }
        }
        do {
            // The monitor's PAIR connects first (inproc allows it), so that no accept is missed.
            let monitorEndpoint = "inproc://bitten-command-links"
            let commandMonitor =
                selection.contains(.command) ? try await eaLoop.open(.pair) { try $0.connect(monitorEndpoint) } : nil
            let linkTimeout = Duration.milliseconds(Int64(config.eaLinkTimeout * 1000))
            let command = try await open(eaLoop, .router, config.commandPort, "command channel", .command, secure: true)
            { socket in
                try socket.setRouterMandatory(true)
                // No handover: a second connection with a routing id that a live connection holds gets no
                // route (libzmq drops what it sends), so knowing a UUID is not enough to take its commands.
                // Dead connections are closed by TCP keepalive; silent, refused and stale ones by the gateway (EALinks).
                try socket.setRouterHandover(false)
                // No ZMTP heartbeats: libzmq 4.3 pays for each answered PING with a linear scan of every
                // connection's timers, a cost that grows with the square of the EAs (15–20 % of a core at
                // 10 000 EAs even with one PING per link timeout). A dead TCP peer (power loss, dead NAT
                // path) is closed by the kernel's keepalive, which costs libzmq nothing; a path that still
                // ACKs but carries nothing is dropped by the gateway (`sweepStaleLinks`).
                try socket.setTCPKeepalive(idle: linkTimeout / 3, interval: .seconds(5), count: 6)
                try socket.startMonitor(monitorEndpoint, events: [.accepted, .disconnected])
                try socket.setSendHighWaterMark(1000)
                // Which machine each EA message came from: pins and trust checks compare it.
                socket.capturesPeerAddress = true
            }
            let market = try await open(marketLoop, .pull, config.marketPort, "market data", .market, secure: true) {
                try $0.setReceiveHighWaterMark(100_000)
            }
            let confirm = try await open(eaLoop, .pull, config.confirmPort, "confirmations", .confirm, secure: true) {
                $0.capturesPeerAddress = true
            }
            let relay = try await open(marketLoop, .pub, config.relayPort, "market relay", .relay) {
                try $0.setSendHighWaterMark(100_000)
            }
            let signals = try await open(auxLoop, .pub, config.signalPort, "shielded signals", .signals)
            let signalIn = try await open(auxLoop, .pull, config.signalInPort, "signal intake", .signalIn)
            let alerts = try await open(auxLoop, .pub, config.alertPort, "alerts", .alerts)
            let query = try await open(auxLoop, .rep, config.queryPort, "protection queries", .query)
            return ServerSockets(
                context: context, eaLoop: eaLoop, marketLoop: marketLoop, auxLoop: auxLoop, command: command,
                commandMonitor: commandMonitor, market: market,
                confirm: confirm, relay: relay, signals: signals, signalIn: signalIn, alerts: alerts,
                query: query, zap: zap)
        } catch {
            await eaLoop.shutdown()
            await marketLoop.shutdown()
            await auxLoop.shutdown()
            throw error
        }
    }

    private init(
        context: Context, eaLoop: SocketLoop, marketLoop: SocketLoop, auxLoop: SocketLoop, command: LoopSocket?,
        commandMonitor: LoopSocket?, market: LoopSocket?,
        confirm: LoopSocket?, relay: LoopSocket?, signals: LoopSocket?, signalIn: LoopSocket?,
        alerts: LoopSocket?, query: LoopSocket?, zap: ZAPHandler?
    ) {
        self.context = context
        self.eaLoop = eaLoop
        self.marketLoop = marketLoop
        self.auxLoop = auxLoop
        self.command = command
        self.commandMonitor = commandMonitor
        self.market = market
        self.confirm = confirm
        self.relay = relay
        self.signals = signals
        self.signalIn = signalIn
        self.alerts = alerts
        self.query = query
        self.zap = zap
    }

    /// Bound sockets with their port numbers, for `/health`.
    public var bound: [(name: String, port: Int, type: String, stats: SocketStats)] {
        let all: [(String, LoopSocket?)] = [
            ("command", command), ("market", market), ("confirm", confirm), ("relay", relay), ("signals", signals),
            ("signal_in", signalIn), ("alerts", alerts), ("query", query),
        ]
        return all.compactMap { name, socket in
            guard let socket, let port = socket.boundPort else { return nil }
            return (name, port, socket.type.rawValue, socket.stats)
        }
    }

    /// Closes every socket and stops the loop threads.
    public func shutdown() async {
        await eaLoop.shutdown()
        await marketLoop.shutdown()
        await auxLoop.shutdown()
    }
}

/// A start-up failure with a one-line reason.
public struct StartupError: Error, CustomStringConvertible, Sendable {
    /// What failed, in one line.
    public let description: String
    /// A failure with its reason.
    public init(_ description: String) { self.description = description }
}
