import ArgumentParser
import EASimulator
import Foundation
import Logging
import ServiceLifecycle

/// `bitten simulate`: a fleet of simulated EAs against a running server.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run N simulated EAs against a running bitten.")

    @OptionGroup var options: ConfigOptions
    @Option(help: "Number of EAs.") var eas = 25
    @Option(help: "TICKs per second per EA per symbol.") var tickRate: Double = 1
    @Option(help: "Seconds between heartbeats.") var heartbeat: Double = 30
    @Option(help: "Stop after this many seconds (default: run until Ctrl-C).") var duration: Double?
    @Option(help: "Share of fires answered with a failure (0-1).") var failureRate: Double = 0
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "UUID prefix (several simulators side by side need different ones).") var uuidPrefix = "user_sim_"
    @Option(help: "First account number.") var accountBase = 70_000_000
    @Option(
        help:
            "PUSH sockets shared by all EAs for market data and confirmations (default: three sockets per EA, like the real EA)."
    )
    var sharedPushSockets: Int?
    @Option(help: "Appended to every symbol to make the broker's name (e.g. .r, m, -ECN).") var symbolSuffix = ""
    @Option(help: "The accounts' currency.") var currency = "USD"
    @Flag(
        help:
            "Idealised EAs (every command answered at once, real close prices) instead of the EA v2.05's behaviour; for load tests only."
    )
    var idealised = false

    func run() async throws {
        let config = try resolveOrExit(options)
        Observability.bootstrap(format: options.logFormat, level: options.logLevel)
        guard eas > 0, tickRate >= 0, heartbeat > 0, (0...1).contains(failureRate) else {
            throw ValidationError("--eas must be > 0, --tick-rate >= 0, --heartbeat > 0, --failure-rate in 0...1")
        }
        var fleetConfig = FleetConfiguration(
            count: eas, host: host, commandPort: config.commandPort, marketPort: config.marketPort,
            confirmPort: config.confirmPort, heartbeatInterval: .milliseconds(Int64(heartbeat * 1000)),
            tickInterval: tickRate > 0 ? .milliseconds(Int64(1000 / tickRate)) : nil)
        fleetConfig.failureRate = failureRate
        // Independent terminals do not beat in step: spread the heartbeats over each interval.
        fleetConfig.heartbeatPhases = min(eas, 10)
        fleetConfig.uuidPrefix = uuidPrefix
        fleetConfig.accountBase = accountBase
        fleetConfig.sharedPushSockets = sharedPushSockets
        fleetConfig.symbolSuffix = symbolSuffix
        fleetConfig.currency = currency
        fleetConfig.fidelity = idealised ? .idealised : .v205
        let logger = Logger(label: "bitten.simulate")
        let fleet = try Fleet(configuration: fleetConfig, logger: logger)
        let progress = Progress(fleet: fleet, duration: duration)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: fleet),
                    .init(service: progress, successTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        let s = fleet.stats
        print(
            "done: \(s.connected) EAs, \(s.sent) messages sent (\(s.ticksSent) ticks, \(s.heartbeatsSent) heartbeats), \(s.firesReceived) fires answered, \(s.pongsSent) pongs"
        )
    }

    /// Prints a progress line every second; ends the run after `duration`.
    struct Progress: Service {
        let fleet: Fleet
        let duration: Double?

        func run() async throws {
            let start = ContinuousClock.now
            var last = fleet.stats.sent
            while !Task.isShuttingDownGracefully {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                let s = fleet.stats
                let elapsed = ContinuousClock.now - start
                print(
                    "[\(elapsed.components.seconds)s] EAs \(s.connected)  sent \(s.sent) (+\(s.sent - last)/s)  ticks \(s.ticksSent)  heartbeats \(s.heartbeatsSent)  commands \(s.commandsReceived)  confirmations \(s.confirmationsSent)"
                )
                last = s.sent
                if let duration, elapsed >= .milliseconds(Int64(duration * 1000)) { return }
            }
        }
    }
}
