import Logging
import ServiceLifecycle

extension TradeEngine {
    /// The composition root's factory: the trade state's one writer (it owns the trade shards, applies fires and
    /// the confirmation ledger in memory and stores them in group commits). Built before the confirmations, which
    /// hand it what they append.
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        var settings = Settings()
        settings.shards = config.tradeShards
        settings.maxUncommitted = config.tradeApplyAhead
        settings.ledgerRetention = config.ledgerRetentionDays * 86_400
        settings.instance = config.gatewayID
        settings.fault = config.faultInjection
        let engine = TradeEngine(
            redis: parts.tradeRedis, settings: settings, board: parts.board, logger: Logger(label: "bitten.\(name)"),
            alerts: parts.alerts, recorder: parts.recorder)
        parts.engine = engine
        return [engine]
    }
}

extension SystemParts {
    /// The trade store (with the router to other processes' shards), built once: signal intake needs it even in a
    /// process without the trade path.
    public func tradeStore(_ config: BittenConfig) -> TradeStore {
        if let store { return store }
        let router = ShardRouter(redis: tradeRedis, instance: config.gatewayID, shards: config.tradeShards)
        let built = TradeStore(redis: tradeRedis, shards: config.tradeShards, engine: engine, router: router)
        store = built
        return built
    }
}
