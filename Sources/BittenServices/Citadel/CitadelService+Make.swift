import Logging
import ServiceLifecycle

extension CitadelService {
    /// The composition root's factory: CITADEL (market analysis from telemetry, queries on 5559) and the signal
    /// intake it scores (5557 in, signals published on 5557's PUB side).
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        let citadel = CitadelService(
            settings: config.citadel, instruments: config.instruments, query: parts.sockets.query,
            queryPort: config.queryPort, alerts: parts.sockets.alerts, redis: parts.redis, board: parts.board,
            logger: Logger(label: "bitten.\(name)"))
        if let telemetry = parts.telemetry { citadel.attach(to: telemetry) }
        parts.citadel = citadel
        guard parts.notRunning["signal_intake"] == nil else { return [citadel] }
        let intake = SignalIntake(
            input: parts.sockets.signalIn, publisher: parts.sockets.signals, store: parts.tradeStore(config),
            scorer: citadel, defaultTTL: config.signalTTL, board: parts.board, port: config.signalInPort,
            logger: Logger(label: "bitten.\(SignalIntake.name)"), recorder: parts.recorder)
        parts.intake = intake
        return [citadel, intake]
    }
}
