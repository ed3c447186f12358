import Logging
import ServiceLifecycle

extension NodeRegistry {
    /// The composition root's factory: the registry of EA nodes (the gateway, telemetry, confirmations and the
    /// monitor read it).
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        let registry = NodeRegistry(
            redis: parts.redis, board: parts.board, gateway: config.gatewayID, canon: config.symbolCanon,
            peerMatch: config.eaPeerCheck, switchApprovalAfter: config.switchApprovalAfter, alerts: parts.alerts,
            logger: Logger(label: "bitten.\(name)"))
        parts.registry = registry
        return [registry]
    }
}
