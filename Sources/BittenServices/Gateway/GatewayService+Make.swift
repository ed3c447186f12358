import Logging
import ServiceLifecycle

extension GatewayService {
    /// The composition root's factory: the EA command channel on 5555, and its inbox of commands for these EAs from
    /// other processes (scale-out, on a connection of its own).
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        guard let socket = parts.sockets.command else { return [] }
        let gateway = GatewayService(
            socket: socket, registry: try parts.requireRegistry(name), board: parts.board, port: config.commandPort,
            pingInterval: .milliseconds(Int64(config.pingInterval * 1000)), logger: Logger(label: "bitten.\(name)"),
            rateLimit: config.eaRateLimitBucket, fireTimeout: config.fireTimeout,
            quietWhenMarketClosed: config.suppressAlertsWhenMarketClosed, alerts: parts.alerts,
            monitor: parts.sockets.commandMonitor, linkTimeout: config.eaLinkTimeout)
        parts.gateway = gateway
        let inboxRedis = parts.backend.client(poolSize: 1, label: "bitten.redis.\(GatewayInbox.name)")
        let inbox = GatewayInbox(
            gateway: gateway, gatewayID: config.gatewayID, redis: inboxRedis, board: parts.board,
            logger: Logger(label: "bitten.\(GatewayInbox.name)"))
        return [gateway, inboxRedis, inbox]
    }
}
