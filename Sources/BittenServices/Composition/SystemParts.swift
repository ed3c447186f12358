import Foundation
import Logging
import Redis
import ServiceLifecycle

/// What the services of one process share while the composition root (`bitten up`, `bitten run`) builds them: the
/// configuration, the Redis clients, the bound sockets, the service board, and the services built so far.
///
/// Each service folder has a factory, `make(config, parts) -> [any Service]`, that reads what earlier factories
/// made (the registry, the trade engine, telemetry…) and records what it makes, in the order the root calls them.
public final class SystemParts {
    /// One Redis server or a cluster.
    public let backend: RedisBackend
    /// The bound ZeroMQ sockets and their loops.
    public let sockets: ServerSockets
    /// What `/services` shows.
    public let board = ServiceBoard()
    /// Alerts the services raise, published by the heartbeat monitor.
    public let alerts = AlertQueue()
    /// The shared Redis client (registry, monitor, confirmations, CITADEL).
    public let redis: RedisClient
    /// The trade path's own connections: a fire must not queue behind the registry's bulk writes of thousands of
    /// heartbeats on the shared pool.
    public let tradeRedis: RedisClient
    /// The version `/health` shows, and every metric as Prometheus text.
    public let version: String
    /// Every metric as Prometheus text.
    public let metricsText: @Sendable () -> String
    /// The CURVE allow-list when CURVE is on (the guard reloads it).
    public let curveAllowList: CurveAllowList?
    /// The source networks allowed on the EA sockets, when configured.
    public let networks: NetworkGate?

    /// The registry of EA nodes.
    public var registry: NodeRegistry?
    /// The EA command channel (5555).
    public var gateway: GatewayService?
    /// Market data in and relayed (5556, 5560).
    public var telemetry: TelemetryService?
    /// The heartbeat monitor.
    public var monitor: HeartbeatMonitor?
    /// The trade state's one writer.
    public var engine: TradeEngine?
    /// CITADEL.
    public var citadel: CitadelService?
    /// Signal intake (5559 in, 5557 out).
    public var intake: SignalIntake?
    /// The trade path's parts for the HTTP API, when this process runs it.
    public var store: TradeStore?
    /// The fire desk.
    public var desk: FireDesk?
    /// The flight recorder (signal and fire traces), when on.
    public var recorder: FlightRecorder?
    /// Services this process does not run, and why (shown by `/health`).
    public var notRunning: [String: String] = [:]

    /// The parts every process has; the services are added by the factories.
    public init(
        backend: RedisBackend, sockets: ServerSockets, version: String, curveAllowList: CurveAllowList?,
        networks: NetworkGate?, metricsText: @escaping @Sendable () -> String
    ) {
        self.backend = backend
        self.sockets = sockets
        self.version = version
        self.curveAllowList = curveAllowList
        self.networks = networks
        self.metricsText = metricsText
        redis = backend.client(poolSize: 4, label: "bitten.redis")
        tradeRedis = backend.client(poolSize: 12, label: "bitten.redis.trade")
    }

    /// The clients that run as services, first in the group (last down): on a cluster the trade client shares the
    /// cluster's connections and has no workers of its own.
    public var redisServices: [any Service] { backend.isCluster ? [redis] : [redis, tradeRedis] }

    /// The registry, which the EA-facing services need (the root builds it first when any of them runs).
    func requireRegistry(_ service: String) throws -> NodeRegistry {
        guard let registry else { throw StartupError("\(service) needs the node registry, which was not built") }
        return registry
    }
}

/// Where the services keep their state: one Redis server, or a Redis Cluster.
public enum RedisBackend: CustomStringConvertible, Sendable {
    case single(RedisURL)
    case cluster(RedisClusterURL)

    /// Whether this is a Redis Cluster.
    public var isCluster: Bool { if case .cluster = self { true } else { false } }

    /// A client of its own; on a cluster `poolSize` is not used (no blocking workers there).
    public func client(poolSize: Int, label: String) -> RedisClient {
        switch self {
        case .single(let url): RedisClient(url: url, poolSize: poolSize, logger: Logger(label: label))
        case .cluster(let url): RedisClient(cluster: url, logger: Logger(label: label))
        }
    }

    /// The URL.
    public var description: String {
        switch self {
        case .single(let url): "\(url)"
        case .cluster(let url): "\(url)"
        }
    }
}

extension ServerSockets: Service {
    /// The sockets stay open until the group shuts down; they close after every service that uses them (they are
    /// near the front of the group, which stops in reverse order).
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}
