import ArgumentParser
import BittenServices
import Foundation
import Yams

/// Options shared by every command that reads the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(help: "YAML configuration file (default: $BITTEN_CONFIG).") var config: String?
    @Option(help: "Redis URL redis://[:password@]host:port[/db] (default: a managed local redis-server).") var redisURL: String?
    @Option(help: "Data directory for the managed Redis, logs and spool.") var dataDir: String?
    @Option(help: "Address to bind (EA-facing ZeroMQ and, if given, HTTP).") var bindHost: String?
    @Option(help: "HTTP port of the API and dashboard.") var httpPort: String?
    @Option(help: "ROUTER port of the EA command channel.") var commandPort: String?
    @Option(help: "PULL port of EA market data.") var marketPort: String?
    @Option(help: "PULL port of confirmations.") var confirmPort: String?
    @Option(help: "PUB port of the market-data relay.") var relayPort: String?
    @Option(help: "Seconds without a heartbeat before a node is dead.") var heartbeatTimeout: String?
    @Option(help: "Log format.") var logFormat: LogFormat = .text
    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical).") var logLevel: String = "info"

    enum LogFormat: String, ExpressibleByArgument {
        case text, json
    }

    /// The command-line layer, keyed by setting name.
    var optionLayer: [String: String] {
        var layer: [String: String] = [:]
        layer["BITTEN_REDIS_URL"] = redisURL
        layer["BITTEN_DATA_DIR"] = dataDir
        layer["BITTEN_BIND_HOST"] = bindHost
        layer["BITTEN_HTTP_PORT"] = httpPort
        layer["BITTEN_COMMAND_PORT"] = commandPort
        layer["BITTEN_MARKET_PORT"] = marketPort
        layer["BITTEN_CONFIRM_PORT"] = confirmPort
        layer["BITTEN_RELAY_PORT"] = relayPort
        layer["BITTEN_HEARTBEAT_TIMEOUT"] = heartbeatTimeout
        return layer
    }

    /// Resolves the configuration: options, then environment, then the YAML file, then defaults.
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> BittenConfig {
        let path = config ?? environment["BITTEN_CONFIG"]
        let fileLayer = try path.map { try Self.loadFile($0) } ?? [:]
        return try ConfigLoader.resolve(options: optionLayer, environment: environment, file: fileLayer)
    }

    /// Reads a flat YAML mapping of settings (`http_port: 5567`).
    static func loadFile(_ path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(setting: "BITTEN_CONFIG", message: "cannot read config file \(path)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(setting: "BITTEN_CONFIG", message: "\(path) is not valid YAML: \(error)")
        }
        guard let node else { return [:] }
        guard let mapping = node.mapping else {
            throw ConfigError(setting: "BITTEN_CONFIG", message: "\(path) must be a mapping of setting: value")
        }
        var values: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = key.string, let scalar = value.scalar?.string else {
                throw ConfigError(setting: "BITTEN_CONFIG", message: "\(path): every value must be a scalar (key \(key.string ?? "?"))")
            }
            values[name] = scalar
        }
        return try ConfigLoader.fileLayer(values)
    }
}
