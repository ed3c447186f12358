import BittenServices
import Logging
import ServiceLifecycle

extension DashboardApp {
    /// The board name of the HTTP API.
    public static let name = "http"

    /// The composition root's factory: the HTTP API and dashboard over what the earlier factories built (a part
    /// this process does not run answers 503 with the reason).
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        var trade: TradeDependencies?
        var services: [any Service] = []
        if let store = parts.store, let desk = parts.desk {
            // The API's trade reads and writes on a client of their own: the dashboard's snapshot reads every open
            // position once a second (pipelines of 500 HGETALLs), and on the trade path's client a fire's commands
            // would queue behind them for as long as they take.
            let redis = parts.backend.client(poolSize: 2, label: "bitten.redis.\(name)")
            if !parts.backend.isCluster { services.append(redis) }
            let apiStore = TradeStore(redis: redis, shards: store.shards, engine: store.engine, router: store.router)
            trade = TradeDependencies(
                store: apiStore, desk: desk, intake: parts.intake,
                tracker: PositionTracker(store: apiStore, quotes: parts.telemetry))
        }
        var deps = DashboardDependencies(
            board: parts.board, redis: parts.redis, registry: parts.registry, monitor: parts.monitor,
            sockets: parts.sockets, dataDir: config.dataDir, version: parts.version, trade: trade,
            citadel: parts.citadel, apiToken: config.apiToken, metricsText: parts.metricsText)
        deps.protectReads = config.protectReads
        deps.notRunning = parts.notRunning
        let logger = Logger(label: "bitten.\(name)")
        let host = config.httpHost
        return services + [
            try make(deps, host: host, port: config.httpPort, logger: logger) { port in
                logger.notice("HTTP API listening", metadata: ["bitten.url": "http://\(host):\(port)/health"])
            }
        ]
    }
}
