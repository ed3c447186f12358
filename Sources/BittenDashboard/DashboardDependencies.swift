import BittenCore
import BittenServices
import Redis

/// What the HTTP API reads from the running system.
public struct DashboardDependencies: Sendable {
    /// The services board (`/services`, `/health`).
    public var board: ServiceBoard
    /// The shared Redis client (health and alerts).
    public var redis: RedisClient?
    /// The node registry, when this process runs it.
    public var registry: NodeRegistry?
    /// The heartbeat monitor (health score), when this process runs it.
    public var monitor: HeartbeatMonitor?
    /// The bound sockets (ports and their counters).
    public var sockets: ServerSockets?
    /// The data directory (free space in `/health`).
    public var dataDir: String
    /// The version `/health` shows.
    public var version: String
    /// The trade path, when this process runs it.
    public var trade: TradeDependencies?
    /// CITADEL, when this process runs it.
    public var citadel: CitadelService?
    /// Bearer token required on mutating calls, when set.
    public var apiToken: String?
    /// When true (and a token is set), read-only calls need the token too (header, or `access_token`
    /// in the query for the dashboard's page and event stream); `/health` stays open.
    public var protectReads = false
    /// Services this process does not run, and why (shown by `/health` and in the 503 of their routes).
    public var notRunning: [String: String] = [:]
    /// Prometheus text of every metric.
    public var metricsText: @Sendable () -> String

    /// What the API reads, from the running system.
    public init(
        board: ServiceBoard, redis: RedisClient?, registry: NodeRegistry?, monitor: HeartbeatMonitor?,
        sockets: ServerSockets?, dataDir: String, version: String, trade: TradeDependencies? = nil,
        citadel: CitadelService? = nil, apiToken: String? = nil, metricsText: @escaping @Sendable () -> String
    ) {
        self.trade = trade
        self.citadel = citadel
        self.apiToken = apiToken
        self.board = board
        self.redis = redis
        self.registry = registry
        self.monitor = monitor
        self.sockets = sockets
        self.dataDir = dataDir
        self.version = version
        self.metricsText = metricsText
    }
}
