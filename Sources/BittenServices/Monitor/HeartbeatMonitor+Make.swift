import Logging
import ServiceLifecycle

extension HeartbeatMonitor {
    /// The composition root's factory: heartbeat timeouts, alerts on 5570, the health score.
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        let monitor = HeartbeatMonitor(
            registry: try parts.requireRegistry(name), redis: parts.redis, board: parts.board,
            alertSocket: parts.sockets.alerts, timeout: config.heartbeatTimeout, cooldown: config.alertCooldown,
            suppressWhenMarketClosed: config.suppressAlertsWhenMarketClosed, logger: Logger(label: "bitten.\(name)"),
            queue: parts.alerts)
        parts.monitor = monitor
        return [monitor]
    }
}
