import BittenCore
import BittenDashboard
import BittenServices
import EASimulator
import Foundation
import Hummingbird
import Logging
import Redis
import ServiceLifecycle
import ZeroMQ

/// The composition root: Redis (managed or configured), the bound sockets, the services and the
/// HTTP API in one `ServiceGroup`, stopped gracefully on SIGTERM/SIGINT.
struct SystemRunner {
    let config: BittenConfig
    let services: Set<ServiceName>
    let demoEAs: Int
    /// `bitten up` on a Redis Cluster leaves the trade path out (and says so); `bitten run trade` there is refused.

    func run() async throws {
        let logger = Logger(label: "bitten")
        MemoryTuning.apply(mmapThreshold: config.mallocMmapThreshold, logger: logger)
        try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
        Context.raiseFileDescriptorLimit()

        var managed: LocalRedisServer?
        var managedCluster: LocalRedisCluster?
        let backend: RedisBackend
        if let cluster = config.redisCluster {
            backend = .cluster(cluster)
        } else if let configured = config.redisURL {
            backend = .single(configured)
        } else if config.managedCluster {
            // Six servers started and joined: seconds of blocking waits, on a thread of their own.
            let dataDir = config.dataDir
            let cluster = try await withCheckedThrowingContinuation { continuation in
                Thread {
                    continuation.resume(with: Result { try ManagedCluster.start(dataDir: dataDir, logger: logger) })
                }.start()
            }
            managedCluster = cluster
            backend = .cluster(ManagedCluster.url(cluster))
        } else {
            do {
                let server = try ManagedRedis.start(dataDir: config.dataDir, logger: logger)
                managed = server
                backend = .single(server.url)
            } catch let error as RedisError {
                throw StartupError(error.message)
            }
        }
        let pidFile = (config.dataDir as NSString).appendingPathComponent("bitten.pid")
        try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(atPath: pidFile)
            if let managed { ManagedRedis.stop(managed, dataDir: config.dataDir, logger: logger) }
            if let managedCluster { ManagedCluster.stop(managedCluster, dataDir: config.dataDir, logger: logger) }
        }

        // Everything runs on one Redis and on a Redis Cluster alike (the trade engine's keys are per shard,
        // each shard's in one slot).
        let services = self.services
        // What is not started here, and why (shown in /health and on the dashboard; nothing today).
        let notRunning: [String: String] = [:]

        var selection: ServerSockets.Selection = []
        if services.contains(.gateway) { selection.insert(.command) }
        if services.contains(.telemetry) { selection.formUnion([.market, .relay]) }
        if services.contains(.confirmations) { selection.insert(.confirm) }
        if services.contains(.monitor) || services.contains(.citadel) { selection.insert(.alerts) }
        if services.contains(.citadel) { selection.insert(.query) }
        if services.contains(.citadel) && notRunning["signal_intake"] == nil {
            selection.formUnion([.signals, .signalIn])
        }
        var curve: (secretKey: String, allowList: CurveAllowList)?
        if config.curve {
            let allowList = CurveAllowList()
            allowList.replace(
                CurveFiles.parseAllowList(
                    (try? String(contentsOfFile: CurveFiles.allowList(config.dataDir), encoding: .utf8)) ?? ""))
            curve = (try CurveFiles.loadSecret(config.dataDir), allowList)
            logger.notice("CURVE on for 5555, 5556, 5558", metadata: ["allowed_keys": "\(allowList.count)"])
        }
        let networks = config.eaNetworks.map { NetworkGate(configured: $0) }
        if let networks {
            logger.notice(
                "EA sockets accept only allowed networks", metadata: ["networks": "\(networks.configured.networks)"])
        }
        let sockets = try await ServerSockets.bind(
            config, selection: selection, curve: curve, networks: networks, logger: logger)

        let board = ServiceBoard()
        let redis = backend.client(poolSize: 4, label: "bitten.redis")
        let needsRegistry = !services.isDisjoint(with: [.gateway, .telemetry, .confirmations, .nodes, .monitor])
        let alerts = AlertQueue()
        let registry =
            needsRegistry
            ? NodeRegistry(
                redis: redis, board: board, gateway: config.gatewayID, canon: config.symbolCanon,
                peerMatch: config.eaPeerCheck,
                switchApprovalAfter: config.switchApprovalAfter, alerts: alerts, logger: Logger(label: "bitten.nodes"))
            : nil
        var group: [any Service] = [redis]
        if let zap = sockets.zap {
            group.append(
                CurveGuard(
                    zap: zap, allowList: curve?.allowList, networks: networks, dataDir: config.dataDir, redis: redis,
                    board: board, logger: Logger(label: "bitten.curve")))
        }
        if let registry { group.append(registry) }
        var monitor: HeartbeatMonitor?
        var gateway: GatewayService?
        var telemetry: TelemetryService?
        // The trade path gets connections of its own: a fire must not queue behind the registry's bulk
        // writes of thousands of heartbeats on the shared pool.
        let tradeRedis = backend.client(poolSize: 12, label: "bitten.redis.trade")
        if !backend.isCluster { group.append(tradeRedis) }
        // The trade state's one writer: it owns the trade shards, applies fires and the confirmation ledger
        // in memory and stores them in group commits.
        var engine: TradeEngine?
        if services.contains(.trade) {
            var settings = TradeEngine.Settings()
            settings.shards = config.tradeShards
            settings.instance = config.gatewayID
            settings.fault = config.faultInjection
            let owner = TradeEngine(
                redis: tradeRedis, settings: settings, board: board, logger: Logger(label: "bitten.trade"),
                alerts: alerts)
            engine = owner
            group.append(owner)
        }
        let rateLimit: (rate: Double, burst: Double)? =
            config.eaRateLimit > 0 ? (config.eaRateLimit, 2 * config.eaRateLimit) : nil
        if let registry {
            if services.contains(.gateway), let socket = sockets.command {
                let service = GatewayService(
                    socket: socket, registry: registry, board: board, port: config.commandPort,
                    pingInterval: .milliseconds(Int64(config.pingInterval * 1000)),
                    logger: Logger(label: "bitten.gateway"), rateLimit: rateLimit,
                    fireTimeout: config.fireTimeout,
                    quietWhenMarketClosed: config.suppressAlertsWhenMarketClosed, alerts: alerts,
                    monitor: sockets.commandMonitor, linkTimeout: config.eaLinkTimeout)
                gateway = service
                group.append(service)
                // Commands for this gateway's EAs from other processes (scale-out), on a connection of its own.
                let inboxRedis = backend.client(poolSize: 1, label: "bitten.redis.inbox")
                group.append(inboxRedis)
                group.append(
                    GatewayInbox(
                        gateway: service, gatewayID: config.gatewayID, redis: inboxRedis, board: board,
                        logger: Logger(label: "bitten.gateway")))
            }
            if services.contains(.telemetry), let socket = sockets.market {
                let service = TelemetryService(
                    input: socket, relay: sockets.relay, registry: registry, board: board,
                    inputPort: config.marketPort, relayPort: config.relayPort,
                    format: config.relayFormat, logger: Logger(label: "bitten.telemetry"),
                    rateLimit: rateLimit)
                telemetry = service
                group.append(service)
            }
            if services.contains(.confirmations), let socket = sockets.confirm {
                // What this process appends, its engine applies at once (when it owns the shard).
                var handoff: ConfirmationService.Handoff?
                var appliedCursor: ConfirmationService.AppliedCursor?
                if let engine {
                    handoff = { shard, id, previous, messages, events in
                        engine.appended(shard: shard, id: id, after: previous, messages: messages, events: events)
                    }
                    appliedCursor = { engine.appliedCursor($0) }
                }
                group.append(
                    ConfirmationService(
                        input: socket, registry: registry, redis: redis, board: board,
                        port: config.confirmPort, logger: Logger(label: "bitten.confirmations"),
                        spoolDirectory: (config.dataDir as NSString).appendingPathComponent("spool"),
                        writerID: config.gatewayID, valuation: telemetry, ledgerOff: notRunning["confirmation_ledger"],
                        shards: config.tradeShards, handoff: handoff, appliedCursor: appliedCursor,
                        onAppended: { [engine] in engine?.wake() }))
            }
            if services.contains(.monitor) {
                let heartbeat = HeartbeatMonitor(
                    registry: registry, redis: redis, board: board, alertSocket: sockets.alerts,
                    timeout: config.heartbeatTimeout, cooldown: config.alertCooldown,
                    suppressWhenMarketClosed: config.suppressAlertsWhenMarketClosed,
                    logger: Logger(label: "bitten.monitor"), queue: alerts)
                monitor = heartbeat
                group.append(heartbeat)
            }
        }
        // Fires, closes and user saves for users of shards another process owns go to that process's inbox.
        let router = ShardRouter(redis: tradeRedis, instance: config.gatewayID, shards: config.tradeShards)
        let store = TradeStore(redis: tradeRedis, shards: config.tradeShards, engine: engine, router: router)
        var intake: SignalIntake?
        var citadel: CitadelService?
        if services.contains(.citadel) {
            let analysis = CitadelService(
                settings: config.citadel, instruments: config.instruments, query: sockets.query,
                queryPort: config.queryPort,
                alerts: sockets.alerts, redis: redis, board: board,
                logger: Logger(label: "bitten.citadel"))
            if let telemetry { analysis.attach(to: telemetry) }
            citadel = analysis
            group.append(analysis)
        }
        if services.contains(.citadel), let analysis = citadel, notRunning["signal_intake"] == nil {
            let service = SignalIntake(
                input: sockets.signalIn, publisher: sockets.signals, store: store, scorer: analysis,
                defaultTTL: config.signalTTL, board: board, port: config.signalInPort,
                logger: Logger(label: "bitten.signals"))
            intake = service
            group.append(service)
        }
        var trade: TradeDependencies?
        if services.contains(.trade), let engine {
            var settings = TradeSettings()
            settings.confirmationTimeout = config.fireTimeout
            settings.sizer = PositionSizer(baseRiskPercent: config.baseRiskPercent)
            settings.tiers = config.tiers
            settings.instruments = config.instruments
            let desk = FireDesk(
                store: store, engine: engine, channel: RoutedCommandChannel(local: gateway, redis: tradeRedis),
                registry: registry, quotes: telemetry, settings: settings,
                board: board, logger: Logger(label: "bitten.trade"), router: router)
            group.append(desk)
            // The inboxes of the shards owned here (a client of its own: the pop blocks a connection).
            let shardInboxRedis = backend.client(poolSize: 1, label: "bitten.redis.trade_inbox")
            if !backend.isCluster { group.append(shardInboxRedis) }
            group.append(
                ShardInbox(
                    desk: desk, store: store, engine: engine, redis: shardInboxRedis, board: board,
                    logger: Logger(label: "bitten.trade")))
            if let telemetry {
                // The EA never reports a stop loss or take profit hit: the market says when one was.
                group.append(
                    PositionWatcher(
                        store: store, redis: tradeRedis, quotes: telemetry, registry: registry, board: board,
                        logger: Logger(label: "bitten.trade"), onAppended: { [engine] in engine.wake() }))
            } else {
                logger.notice(
                    "no telemetry in this process: stop-loss and take-profit hits are not inferred here (run trade next to telemetry)"
                )
            }
            trade = TradeDependencies(
                store: store, desk: desk, intake: intake,
                tracker: PositionTracker(store: store, quotes: telemetry))
            if let webhook = config.webhookURL, let url = URL(string: webhook) {
                if case .single(let redisURL) = backend {
                    group.append(
                        EventWebhook(
                            url: url, redisURL: redisURL, board: board, logger: Logger(label: "bitten.webhook")))
                } else {
                    logger.warning(
                        "BITTEN_WEBHOOK_URL is not served on a Redis Cluster yet: its subscriber reads bitten:events from one server"
                    )
                }
            }
        }
        if services.contains(.http) {
            var deps = DashboardDependencies(
                board: board, redis: redis, registry: registry, monitor: monitor, sockets: sockets,
                dataDir: config.dataDir, version: Bitten.version, trade: trade, citadel: citadel,
                apiToken: config.apiToken, metricsText: { Observability.metricsText() })
            deps.protectReads = config.protectReads
            deps.notRunning = notRunning
            let httpLogger = Logger(label: "bitten.http")
            group.append(
                try DashboardApp.make(deps, host: config.httpHost, port: config.httpPort, logger: httpLogger) { port in
                    httpLogger.notice(
                        "HTTP API listening", metadata: ["url": "http://\(config.httpHost):\(port)/health"])
                })
        }
        if demoEAs > 0 {
            let host = config.zmqHost == "*" ? "127.0.0.1" : config.zmqHost
            // Faithful to the EA v2.05, on a broker that decorates its names (`EURUSD.r`, `GOLD`).
            var demo = FleetConfiguration(
                count: demoEAs, host: host, commandPort: config.commandPort, marketPort: config.marketPort,
                confirmPort: config.confirmPort, heartbeatInterval: .seconds(5), tickInterval: .seconds(1))
            demo.symbolSuffix = ".r"
            demo.brokerSymbols = ["XAUUSD": "GOLD"]
            demo.marketWatch = ["EURJPY", "GBPJPY", "AUDUSD", "USDCHF"]
            let simulator = try Fleet(configuration: demo, logger: Logger(label: "bitten.demo"))
            group.append(simulator)
            if let trade, let intake = trade.intake, let telemetry {
                group.append(
                    DemoTrader(
                        fleet: simulator, intake: intake, desk: trade.desk, store: trade.store, quotes: telemetry,
                        interval: .seconds(10), logger: Logger(label: "bitten.demo")))
            }
        }
        logger.notice(
            "bitten starting",
            metadata: [
                "services": "\(services.map(\.rawValue).sorted().joined(separator: ","))", "redis": "\(backend)",
                "ports": "\(sockets.bound.map { "\($0.name)=\($0.port)" }.joined(separator: " "))",
            ])
        let serviceGroup = ServiceGroup(
            configuration: .init(services: group, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("service group failed", metadata: ["error": "\(error)"])
            await sockets.shutdown()
            throw error
        }
        await sockets.shutdown()
        logger.notice("bitten stopped")
    }
}

/// Where the services keep their state: one Redis server, or a Redis Cluster.
enum RedisBackend: CustomStringConvertible {
    case single(RedisURL)
    case cluster(RedisClusterURL)

    var isCluster: Bool { if case .cluster = self { true } else { false } }

    /// A client of its own; on a cluster `poolSize` is not used (no blocking workers there).
    func client(poolSize: Int, label: String) -> RedisClient {
        switch self {
        case .single(let url): RedisClient(url: url, poolSize: poolSize, logger: Logger(label: label))
        case .cluster(let url): RedisClient(cluster: url, logger: Logger(label: label))
        }
    }

    var description: String {
        switch self {
        case .single(let url): "\(url)"
        case .cluster(let url): "\(url)"
        }
    }
}
