import Foundation
import Logging
import ServiceLifecycle

extension ConfirmationService {
    /// The composition root's factory: trade confirmations in on 5558, appended to the confirmation ledger; what
    /// this process appends, its trade engine applies at once (when it owns the shard).
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        guard let socket = parts.sockets.confirm else { return [] }
        return [
            ConfirmationService(
                input: socket, registry: try parts.requireRegistry(name), redis: parts.redis, board: parts.board,
                port: config.confirmPort, logger: Logger(label: "bitten.\(name)"),
                spoolDirectory: (config.dataDir as NSString).appendingPathComponent("spool"),
                writerID: config.gatewayID, valuation: parts.telemetry,
                ledgerOff: parts.notRunning["confirmation_ledger"], shards: config.tradeShards,
                handOver: parts.engine)
        ]
    }
}
