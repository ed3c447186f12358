import ArgumentParser
import BittenServices
import Foundation
import Yams

/// Options shared by every command that reads the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(help: "YAML configuration file (default: $BITTEN_CONFIG).") var config: String?
    @Option(
        help:
            "Redis URL redis://[:password@]host:port[/db] or redis-cluster://host:port[,host:port…] (default: a managed local redis-server)."
    ) var redisURL: String?
    @Flag(
        help:
            "With no Redis URL: a managed local Redis Cluster (three primaries, one replica each) instead of one redis-server."
    ) var redisCluster = false
    @Option(help: "Data directory for the managed Redis, logs and spool.") var dataDir: String?
    @Option(help: "Address to bind (EA-facing ZeroMQ and, if given, HTTP).") var bindHost: String?
    @Option(help: "HTTP port of the API and dashboard.") var httpPort: String?
    @Option(help: "ROUTER port of the EA command channel.") var commandPort: String?
    @Option(help: "PULL port of EA market data.") var marketPort: String?
    @Option(help: "PULL port of confirmations.") var confirmPort: String?
    @Option(help: "PUB port of the market-data relay.") var relayPort: String?
    @Option(help: "Seconds without a heartbeat before a node is dead.") var heartbeatTimeout: String?
    @Option(help: "This process's gateway id when several gateways share one Redis (scale-out).") var gatewayId: String?
    @Option(help: "Log format.") var logFormat: LogFormat = .text
    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical).") var logLevel: String = "info"

    enum LogFormat: String, ExpressibleByArgument {
        case text, json
    }

    /// The command-line layer, keyed by setting name.
    var optionLayer: [String: String] {
        var layer: [String: String] = [:]
        layer["BITTEN_REDIS_URL"] = redisURL
        if redisCluster { layer["BITTEN_REDIS_CLUSTER"] = "on" }
        layer["BITTEN_DATA_DIR"] = dataDir
        layer["BITTEN_BIND_HOST"] = bindHost
        layer["BITTEN_HTTP_PORT"] = httpPort
        layer["BITTEN_COMMAND_PORT"] = commandPort
        layer["BITTEN_MARKET_PORT"] = marketPort
        layer["BITTEN_CONFIRM_PORT"] = confirmPort
        layer["BITTEN_RELAY_PORT"] = relayPort
        layer["BITTEN_HEARTBEAT_TIMEOUT"] = heartbeatTimeout
        layer["BITTEN_GATEWAY_ID"] = gatewayId
        return layer
    }

    /// Resolves the configuration: options, then environment, then the YAML file, then defaults.
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> BittenConfig {
        let path = config ?? environment["BITTEN_CONFIG"]
        let file = try path.map { try Self.loadFile($0) } ?? ConfigFile()
        var resolved = try ConfigLoader.resolve(options: optionLayer, environment: environment, file: file.settings)
        try ConfigLoader.applyTrading(instruments: file.instruments, tiers: file.tiers, to: &resolved)
        try ConfigLoader.applySymbolAliases(file.symbolAliases, to: &resolved)
        return resolved
    }

    /// What the YAML file holds: flat settings (`http_port: 5567`) and the `instruments:` and
    /// `tiers:` sections (name → field → value).
    struct ConfigFile {
        var settings: [String: String] = [:]
        var instruments: [String: [String: String]] = [:]
        var tiers: [String: [String: String]] = [:]
        var symbolAliases: [String: String] = [:]
    }

    /// Reads the YAML configuration file.
    static func loadFile(_ path: String) throws -> ConfigFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(setting: "BITTEN_CONFIG", message: "cannot read config file \(path)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(setting: "BITTEN_CONFIG", message: "\(path) is not valid YAML: \(error)")
        }
        guard let node else { return ConfigFile() }
        guard let mapping = node.mapping else {
            throw ConfigError(setting: "BITTEN_CONFIG", message: "\(path) must be a mapping of setting: value")
        }
        var file = ConfigFile()
        var values: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = key.string else { continue }
            if name == "symbol_aliases" {
                guard let aliases = value.mapping else {
                    throw ConfigError(
                        setting: name,
                        message: "\(path): symbol_aliases must be a mapping of broker name: canonical symbol")
                }
                for (alias, target) in aliases {
                    guard let from = alias.string, let to = target.scalar?.string else {
                        throw ConfigError(
                            setting: name, message: "\(path): every symbol alias must be a name: symbol pair")
                    }
                    file.symbolAliases[from] = to
                }
                continue
            }
            if name == "instruments" || name == "tiers" {
                let sections = try Self.sections(value, name: name, path: path)
                if name == "instruments" { file.instruments = sections } else { file.tiers = sections }
                continue
            }
            guard let scalar = value.scalar?.string else {
                throw ConfigError(
                    setting: "BITTEN_CONFIG", message: "\(path): every value must be a scalar (key \(name))")
            }
            values[name] = scalar
        }
        file.settings = try ConfigLoader.fileLayer(values)
        return file
    }

    /// A mapping of name → mapping of scalar fields.
    private static func sections(_ node: Node, name: String, path: String) throws -> [String: [String: String]] {
        guard let mapping = node.mapping else {
            throw ConfigError(setting: name, message: "\(path): \(name) must be a mapping of name: {field: value}")
        }
        var sections: [String: [String: String]] = [:]
        for (key, value) in mapping {
            guard let entry = key.string, let fields = value.mapping else {
                throw ConfigError(
                    setting: name, message: "\(path): \(name).\(key.string ?? "?") must be a mapping of field: value")
            }
            var section: [String: String] = [:]
            for (field, scalar) in fields {
                guard let fieldName = field.string, let text = scalar.scalar?.string else {
                    throw ConfigError(setting: "\(name).\(entry)", message: "\(path): every field must be a scalar")
                }
                section[fieldName] = text
            }
            sections[entry] = section
        }
        return sections
    }
}
