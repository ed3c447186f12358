import Logging
import ServiceLifecycle

extension FlightRecorder {
    /// The composition root's factory: the recorder, before the services that record (signal intake, the trade
    /// engine, the fire desk); none when `BITTEN_FLIGHT_RECORDER=off`. It writes on the shared Redis client, not on
    /// the trade path's connections.
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        guard config.flightRecorder else { return [] }
        let recorder = FlightRecorder(
            redis: parts.redis, board: parts.board, logger: Logger(label: "bitten.\(name)"))
        parts.recorder = recorder
        return [recorder]
    }
}
