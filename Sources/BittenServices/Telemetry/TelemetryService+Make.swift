import Logging
import ServiceLifecycle

extension TelemetryService {
    /// The composition root's factory: market data in on 5556, relayed on 5560.
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        guard let socket = parts.sockets.market else { return [] }
        let telemetry = TelemetryService(
            input: socket, relay: parts.sockets.relay, registry: try parts.requireRegistry(name), board: parts.board,
            inputPort: config.marketPort, relayPort: config.relayPort, format: config.relayFormat,
            logger: Logger(label: "bitten.\(name)"), rateLimit: config.eaRateLimitBucket)
        parts.telemetry = telemetry
        return [telemetry]
    }
}
