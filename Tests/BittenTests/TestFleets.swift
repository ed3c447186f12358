import BittenTestSupport
import EASimulator
import Foundation
import Logging

/// A running fleet of simulated EAs connected to one `bitten` process.
struct RunningFleet {
    let fleet: Fleet
    let task: Task<Void, any Error>
    var uuids: [String] { fleet.uuids }
    func stop() { task.cancel() }
}

/// Starts `count` EURUSD-only EAs (1 s heartbeats, a tick every 500 ms, no OHLC) against `bitten`
/// and waits until its API shows them all online.
func startFleet(_ count: Int, for bitten: BittenProcess, prefix: String = "user_sim_", account: Int = 70_000_000)
    async throws -> RunningFleet
{
    var config = FleetConfiguration(
        count: count, commandPort: bitten.commandPort, marketPort: bitten.marketPort,
        confirmPort: bitten.confirmPort, heartbeatInterval: .seconds(1),
        tickInterval: .milliseconds(500))
    config.uuidPrefix = prefix
    config.accountBase = account
    config.symbols = ["EURUSD"]
    config.sendOHLC = false
    let fleet = try Fleet(configuration: config, logger: Logger(label: "bitten.test"))
    let task = Task { try await fleet.run() }
    let online = try await eventually {
        let (_, health) = try await HTTP.json(bitten.httpBase + "/health")
        return ((health["nodes"] as? [String: Any])?["online"] as? Int ?? 0) >= count
    }
    if !online { throw TestSupportError("\(count) EAs did not come online:\n\(bitten.logTail())") }
    return RunningFleet(fleet: fleet, task: task)
}

/// Runs `bitten ARGS` to completion with `environment` (the caller's BITTEN_ settings removed first);
/// returns its exit code and combined output.
func runBitten(_ arguments: [String], environment: [String: String]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: BittenProcess.binary)
    process.arguments = arguments
    var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("BITTEN_") }
    merged["SWIFT_BACKTRACE"] = "enable=no"
    for (key, value) in environment { merged[key] = value }
    process.environment = merged
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
