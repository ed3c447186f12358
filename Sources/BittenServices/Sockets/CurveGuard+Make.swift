import Logging
import ServiceLifecycle

extension CurveGuard {
    /// The composition root's factory: the ZAP handler that admits EAs by CURVE key and source network, when the
    /// sockets have one.
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        guard let zap = parts.sockets.zap else { return [] }
        return [
            CurveGuard(
                zap: zap, allowList: parts.curveAllowList, networks: parts.networks, dataDir: config.dataDir,
                redis: parts.redis, board: parts.board, logger: Logger(label: "bitten.\(name)"))
        ]
    }
}
