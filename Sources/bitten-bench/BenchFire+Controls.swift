import Foundation

/// The fire bench's operator controls: the environment and config file of a server with them on.
extension Bench.FireLatency {
    /// The config file of the servers with the controls on (their tiers' risk limits).
    static var controlsFile: String { NSTemporaryDirectory() + "bitten-bench-controls-\(getpid()).yaml" }

    /// The environment of a server with every control on: the flight recorder (on by default), each risk limit
    /// on the bench's tier and both concentration limits, generous enough that none refuses (so every check runs
    /// in full).
    func controlsEnvironment(_ on: Bool, only: Controls? = nil) throws -> [String: String] {
        guard on else { return ["BITTEN_FLIGHT_RECORDER": "off"] }
        switch only {
        case .recorder?: return ["BITTEN_FLIGHT_RECORDER": "on"]
        case .concentration?:
            return [
                "BITTEN_FLIGHT_RECORDER": "off", "BITTEN_MAX_LOTS_PER_SYMBOL": "1000000",
                "BITTEN_MAX_LOTS_PER_SIGNAL": "1000000",
            ]
        default: break
        }
        let path = Self.controlsFile
        try """
        tiers:
          COMMANDER: {daily_loss: 90, drawdown: 90, open_risk: 100, exposure_lots: 1000000, trades_per_day: 1000000,
                      loss_streak: 1000, cooldown_minutes: 1}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        if only == .limits { return ["BITTEN_FLIGHT_RECORDER": "off", "BITTEN_CONFIG": path] }
        return [
            "BITTEN_FLIGHT_RECORDER": "on", "BITTEN_CONFIG": path, "BITTEN_MAX_LOTS_PER_SYMBOL": "1000000",
            "BITTEN_MAX_LOTS_PER_SIGNAL": "1000000",
        ]
    }
}
