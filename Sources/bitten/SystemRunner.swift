import BittenCore
import BittenDashboard
import BittenServices
import BittenTelegram
import EASimulator
import Foundation
import Logging
import Redis
import ServiceLifecycle
import ZeroMQ

/// The composition root: `bitten up` and `bitten run` are a list of the service folders' factories, run in order
/// into one `ServiceGroup` behind the managed Redis (first up, last down), the bound sockets and the Redis clients;
/// stopped gracefully on SIGTERM/SIGINT, in reverse order.
struct SystemRunner {
    let config: BittenConfig
    let services: Set<ServiceName>
    let demoEAs: Int

    /// A service folder's factory: what it builds from the configuration and the parts built so far.
    typealias Factory = (BittenConfig, SystemParts) throws -> [any Service]

    /// The factories this process runs, in the order they build (each may read what an earlier one made).
    var factories: [Factory] {
        let needsRegistry = !services.isDisjoint(with: [.gateway, .telemetry, .confirmations, .nodes, .monitor])
        let list: [(Bool, Factory)] = [
            (true, CurveGuard.make),
            (needsRegistry, NodeRegistry.make),
            (services.contains(.trade) || services.contains(.citadel), FlightRecorder.make),
            (services.contains(.trade), TradeEngine.make),
            (services.contains(.gateway), GatewayService.make),
            (services.contains(.telemetry), TelemetryService.make),
            (services.contains(.confirmations), ConfirmationService.make),
            (services.contains(.monitor), HeartbeatMonitor.make),
            (services.contains(.citadel), CitadelService.make),
            (services.contains(.trade), FireDesk.make),
            (services.contains(.http), DashboardApp.make),
            // The Telegram front, when BITTEN_TELEGRAM_TOKEN is set (it builds nothing otherwise).
            (services.contains(.telegram), TelegramService.make),
            (demoEAs > 0, { config, parts in try DemoSystem.make(config, parts, count: demoEAs) }),
        ]
        return list.filter(\.0).map(\.1)
    }

    func run() async throws {
        let logger = Logger(label: "bitten")
        MemoryTuning.apply(mmapThreshold: config.mallocMmapThreshold, logger: logger)
        try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
        Context.raiseFileDescriptorLimit()

        let (backend, managed) = try await redisBackend(logger: logger)
        let pidFile = (config.dataDir as NSString).appendingPathComponent("bitten.pid")
        try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(atPath: pidFile)
            managed?.stop()
        }

        let (curve, networks) = try accessControl(logger: logger)
        let sockets = try await ServerSockets.bind(
            config, selection: socketSelection, curve: curve, networks: networks, logger: logger)
        let parts = SystemParts(
            backend: backend, sockets: sockets, version: Bitten.version, curveAllowList: curve?.allowList,
            networks: networks, metricsText: { Observability.metricsText() })
        var group: [any Service] = managed.map { [$0] } ?? []
        group.append(sockets)
        group += parts.redisServices
        do {
            for factory in factories { group += try factory(config, parts) }
        } catch {
            await sockets.shutdown()
            throw error
        }
        logger.notice(
            "bitten starting",
            metadata: [
                "bitten.process.services": "\(services.map(\.rawValue).sorted().joined(separator: ","))",
                "bitten.redis.url": "\(backend)",
                "bitten.socket.ports": "\(sockets.bound.map { "\($0.name)=\($0.port)" }.joined(separator: " "))",
            ])
        let serviceGroup = ServiceGroup(
            configuration: .init(services: group, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("service group failed", metadata: ["bitten.error": "\(error)"])
            throw error
        }
        logger.notice("bitten stopped")
    }

    /// The sockets the selected services use.
    var socketSelection: ServerSockets.Selection {
        var selection: ServerSockets.Selection = []
        if services.contains(.gateway) { selection.insert(.command) }
        if services.contains(.telemetry) { selection.formUnion([.market, .relay]) }
        if services.contains(.confirmations) { selection.insert(.confirm) }
        if services.contains(.monitor) || services.contains(.citadel) { selection.insert(.alerts) }
        if services.contains(.citadel) { selection.formUnion([.query, .signals, .signalIn]) }
        return selection
    }

    /// The configured Redis, or a managed one started here (one server, or a local cluster).
    func redisBackend(logger: Logger) async throws -> (RedisBackend, ManagedRedisService?) {
        if let cluster = config.redisCluster { return (.cluster(cluster), nil) }
        if let configured = config.redisURL { return (.single(configured), nil) }
        if config.managedCluster {
            // Six servers started and joined: seconds of blocking waits, on a thread of their own.
            let dataDir = config.dataDir
            let cluster = try await withCheckedThrowingContinuation { continuation in
                Thread {
                    continuation.resume(with: Result { try ManagedCluster.start(dataDir: dataDir, logger: logger) })
                }.start()
            }
            return (
                .cluster(ManagedCluster.url(cluster)),
                ManagedRedisService(.cluster(cluster), dataDir: dataDir, logger: logger)
            )
        }
        do {
            let server = try ManagedRedis.start(dataDir: config.dataDir, logger: logger)
            return (.single(server.url), ManagedRedisService(.server(server), dataDir: config.dataDir, logger: logger))
        } catch let error as RedisError {
            throw StartupError(error.message)
        }
    }

    /// CURVE keys and the allowed source networks of the EA sockets, when configured.
    func accessControl(logger: Logger) throws -> ((secretKey: String, allowList: CurveAllowList)?, NetworkGate?) {
        var curve: (secretKey: String, allowList: CurveAllowList)?
        if config.curve {
            let allowList = CurveAllowList()
            allowList.replace(
                CurveFiles.parseAllowList(
                    (try? String(contentsOfFile: CurveFiles.allowList(config.dataDir), encoding: .utf8)) ?? ""))
            curve = (try CurveFiles.loadSecret(config.dataDir), allowList)
            logger.notice(
                "CURVE on for 5555, 5556, 5558", metadata: ["bitten.curve.allowed_keys": "\(allowList.count)"])
        }
        let networks = config.eaNetworks.map { NetworkGate(configured: $0) }
        if let networks {
            logger.notice(
                "EA sockets accept only allowed networks",
                metadata: ["bitten.socket.networks": "\(networks.configured.networks)"])
        }
        return (curve, networks)
    }
}
