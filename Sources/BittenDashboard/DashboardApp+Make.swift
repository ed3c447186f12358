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
        if let store = parts.store, let desk = parts.desk, let tracker = parts.tracker {
            trade = TradeDependencies(store: store, desk: desk, intake: parts.intake, tracker: tracker)
        }
        var deps = DashboardDependencies(
            board: parts.board, redis: parts.redis, registry: parts.registry, monitor: parts.monitor,
            sockets: parts.sockets, dataDir: config.dataDir, version: parts.version, trade: trade,
            citadel: parts.citadel, apiToken: config.apiToken, metricsText: parts.metricsText)
        deps.protectReads = config.protectReads
        deps.notRunning = parts.notRunning
        let logger = Logger(label: "bitten.\(name)")
        let host = config.httpHost
        return [
            try make(deps, host: host, port: config.httpPort, logger: logger) { port in
                logger.notice("HTTP API listening", metadata: ["bitten.url": "http://\(host):\(port)/health"])
            }
        ]
    }
}
