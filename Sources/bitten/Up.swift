import ArgumentParser
import BittenServices
import Foundation

/// `bitten up`: every service in one process.
struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start every service (and a managed Redis when none is configured).")

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Also run the EA simulator (25 EAs) so the system has live data.") var demo = false
    @Option(help: "Number of simulated EAs with --demo.") var demoEAs = 25

    func run() async throws {
        let config = try resolveOrExit(options)
        Observability.bootstrap(
            format: options.logFormat, level: options.logLevel,
            logDirectory: (config.dataDir as NSString).appendingPathComponent("logs"))
        try await SystemRunner(config: config, services: Set(ServiceName.allCases), demoEAs: demo ? demoEAs : 0).run()
    }
}

/// `bitten run SERVICE…`: a chosen subset.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start only the named services.")

    @OptionGroup var options: ConfigOptions
    @Argument(help: "Services: \(ServiceName.allCases.map(\.rawValue).joined(separator: ", ")).") var services:
        [ServiceName]

    func run() async throws {
        let config = try resolveOrExit(options)
        Observability.bootstrap(
            format: options.logFormat, level: options.logLevel,
            logDirectory: (config.dataDir as NSString).appendingPathComponent("logs"))
        try await SystemRunner(config: config, services: Set(services), demoEAs: 0).run()
    }
}

/// Resolves the configuration, or exits with a one-line error naming the setting.
func resolveOrExit(_ options: ConfigOptions) throws -> BittenConfig {
    do {
        return try options.resolve()
    } catch let error as ConfigError {
        throw ValidationError(error.description)
    }
}
