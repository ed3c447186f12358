import BittenCore
import Foundation
import Logging
import ServiceLifecycle

extension FireDesk {
    /// The composition root's factory: the fire desk, the inbox of the shards owned here, the watcher that infers
    /// stop-loss and take-profit hits from the market (the EA never reports them), and the event webhook. Needs the
    /// trade engine (`TradeEngine.make`, earlier in the list).
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        guard let engine = parts.engine else { throw StartupError("the fire desk needs the trade engine") }
        let logger = Logger(label: "bitten.\(name)")
        var settings = TradeSettings()
        settings.confirmationTimeout = config.fireTimeout
        settings.sizer = PositionSizer(baseRiskPercent: config.baseRiskPercent)
        settings.tiers = config.tiers
        settings.instruments = config.instruments
        settings.riskLimits = config.riskLimits
        settings.noStopRiskPercent = config.noStopRiskPercent
        settings.concentration = config.concentration
        let store = parts.tradeStore(config)
        let controlStore = TradingControlStore(redis: parts.tradeRedis)
        let control = TradingSwitch(
            store: controlStore, instance: config.gatewayID, board: parts.board,
            logger: Logger(label: "bitten.\(TradingSwitch.name)"))
        let desk = FireDesk(
            store: store, engine: engine,
            channel: RoutedCommandChannel(local: parts.gateway, redis: parts.tradeRedis),
            registry: parts.registry, quotes: parts.telemetry, settings: settings, board: parts.board, logger: logger,
            router: store.router, control: control, recorder: parts.recorder)
        control.onCloseAll { [weak desk] (state: TradingControl) in
            await desk?.closeAllOwned(state, store: controlStore, process: control.process)
        }
        parts.desk = desk
        var services: [any Service] = [control, desk]
        // The inboxes of the shards owned here (a client of its own: the pop blocks a connection).
        let inboxRedis = parts.backend.client(poolSize: 1, label: "bitten.redis.\(ShardInbox.name)")
        if !parts.backend.isCluster { services.append(inboxRedis) }
        services.append(
            ShardInbox(
                desk: desk, store: store, engine: engine, redis: inboxRedis, board: parts.board,
                logger: Logger(label: "bitten.\(ShardInbox.name)")))
        if let telemetry = parts.telemetry {
            // The watcher's own client: its re-reads of every open position (pipelines of 500 HGETALLs, every 2 s
            // under load) would otherwise queue the fire path's commands on the trade client's connections behind
            // them, for tens of milliseconds each time.
            let watcherRedis = parts.backend.client(poolSize: 1, label: "bitten.redis.\(PositionWatcher.name)")
            if !parts.backend.isCluster { services.append(watcherRedis) }
            services.append(
                PositionWatcher(
                    store: TradeStore(redis: watcherRedis, shards: config.tradeShards), redis: watcherRedis,
                    quotes: telemetry, registry: parts.registry,
                    board: parts.board, logger: Logger(label: "bitten.\(PositionWatcher.name)"),
                    onAppended: { engine.wake() }))
        } else {
            logger.notice(
                "no telemetry in this process: stop-loss and take-profit hits are not inferred here (run trade next to telemetry)"
            )
        }
        if let webhook = config.webhookURL, let url = URL(string: webhook) {
            if case .single(let redisURL) = parts.backend {
                services.append(
                    EventWebhook(
                        url: url, redisURL: redisURL, board: parts.board,
                        logger: Logger(label: "bitten.\(EventWebhook.name)")))
            } else {
                logger.warning(
                    "BITTEN_WEBHOOK_URL is not served on a Redis Cluster yet: its subscriber reads bitten:events from one server"
                )
            }
        }
        return services
    }
}
