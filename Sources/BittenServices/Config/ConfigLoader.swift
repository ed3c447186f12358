import BittenCore
import Redis

/// A configuration value that could not be used; the message names the setting and where it came from.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The environment-variable name of the setting.
    public let setting: String
    /// A one-line explanation.
    public let message: String

    /// A setting and what is wrong with its value.
    public init(setting: String, message: String) {
        self.setting = setting
        self.message = message
    }

    /// The setting and the reason.
    public var description: String { "invalid \(setting): \(message)" }
}

/// Resolves settings from command-line options, then the environment, then the YAML file, then
/// the defaults. Every layer is keyed by the environment-variable name (`BITTEN_HTTP_PORT`).
public enum ConfigLoader {
    /// Where a value came from.
    public enum Source: String, Sendable {
        case option = "command-line option"
        case environment
        case file = "config file"
    }

    /// All settings, by environment name.
    public static let settings: [String] = [
        "BITTEN_REDIS_URL", "BITTEN_REDIS_CLUSTER", "BITTEN_DATA_DIR", "BITTEN_BIND_HOST", "BITTEN_HTTP_HOST",
        "BITTEN_COMMAND_PORT",
        "BITTEN_MARKET_PORT", "BITTEN_SIGNAL_PORT", "BITTEN_CONFIRM_PORT", "BITTEN_SIGNAL_IN_PORT",
        "BITTEN_RELAY_PORT", "BITTEN_ALERT_PORT", "BITTEN_QUERY_PORT", "BITTEN_HTTP_PORT",
        "BITTEN_HEARTBEAT_TIMEOUT", "BITTEN_ALERT_COOLDOWN", "BITTEN_PING_INTERVAL", "BITTEN_RELAY_FORMAT",
        "BITTEN_API_TOKEN", "BITTEN_MARKET_CLOSED_SILENCE", "BITTEN_FIRE_TIMEOUT", "BITTEN_BASE_RISK",
        "BITTEN_NO_STOP_RISK", "BITTEN_FLIGHT_RECORDER", "BITTEN_MAX_LOTS_PER_SYMBOL", "BITTEN_MAX_LOTS_PER_SIGNAL",
        "BITTEN_SIGNAL_TTL", "BITTEN_WEBHOOK_URL", "BITTEN_CITADEL_MULTIPLIERS", "BITTEN_CITADEL_SWEEP_PIPS",
        "BITTEN_CITADEL_ALERT_COOLDOWN", "BITTEN_PROTECT_READS", "BITTEN_EA_RATE_LIMIT", "BITTEN_CURVE",
        "BITTEN_GATEWAY_ID",
        "BITTEN_MALLOC_MMAP_THRESHOLD", "BITTEN_EA_PEER_CHECK", "BITTEN_SWITCH_APPROVE_AFTER", "BITTEN_EA_NETWORKS",
        "BITTEN_TRADE_SHARDS", "BITTEN_TRADE_APPLY_AHEAD", "BITTEN_LEDGER_RETENTION_DAYS", "BITTEN_FAULT_INJECT",
        "BITTEN_SOCKET_COALESCE_MS",
        "BITTEN_TELEGRAM_TOKEN",
        "BITTEN_TELEGRAM_API", "BITTEN_TELEGRAM_OPERATORS", "BITTEN_TELEGRAM_CHANNEL", "BITTEN_TELEGRAM_BITTEN_URL",
    ]

    /// The YAML key of a setting: `BITTEN_HTTP_PORT` → `http_port`.
    public static func fileKey(_ setting: String) -> String {
        String(setting.dropFirst("BITTEN_".count)).lowercased()
    }

    /// Maps a flat YAML dictionary (`http_port: 5567`) to setting names; unknown keys are an error.
    public static func fileLayer(_ values: [String: String]) throws(ConfigError) -> [String: String] {
        var layer: [String: String] = [:]
        for (key, value) in values {
            let setting = "BITTEN_" + key.uppercased()
            guard settings.contains(setting) else {
                throw ConfigError(
                    setting: key,
                    message:
                        "unknown setting in the config file (known: \(settings.map(fileKey).joined(separator: ", ")))")
            }
            layer[setting] = value
        }
        return layer
    }

    /// Resolves every setting: option beats environment beats file beats default.
    public static func resolve(
        options: [String: String], environment: [String: String], file: [String: String]
    ) throws(ConfigError) -> BittenConfig {
        func lookup(_ setting: String) -> (String, Source)? {
            if let value = options[setting] { return (value, .option) }
            if let value = environment[setting], !value.isEmpty { return (value, .environment) }
            if let value = file[setting] { return (value, .file) }
            return nil
        }
        var config = BittenConfig()
        func port(_ setting: String, _ keyPath: WritableKeyPath<BittenConfig, Int>) throws(ConfigError) {
            guard let (text, source) = lookup(setting) else { return }
            guard let value = Int(text.trimmingSpaces), (1...65535).contains(value) else {
                throw ConfigError(
                    setting: setting, message: "'\(text)' from the \(source.rawValue) is not a port (1-65535)")
            }
            config[keyPath: keyPath] = value
        }
        func seconds(_ setting: String, _ keyPath: WritableKeyPath<BittenConfig, Double>) throws(ConfigError) {
            guard let (text, source) = lookup(setting) else { return }
            guard let value = Double(text.trimmingSpaces), value.isFinite, value > 0, value <= 86_400 else {
                throw ConfigError(
                    setting: setting,
                    message: "'\(text)' from the \(source.rawValue) is not a number of seconds (0-86400)")
            }
            config[keyPath: keyPath] = value
        }
        func count(
            _ setting: String, _ keyPath: WritableKeyPath<BittenConfig, Int>, _ range: ClosedRange<Int>, of what: String
        ) throws(ConfigError) {
            guard let (text, source) = lookup(setting) else { return }
            guard let value = Int(text.trimmingSpaces), range.contains(value) else {
                throw ConfigError(
                    setting: setting,
                    message:
                        "'\(text)' from the \(source.rawValue) is not a \(what) from \(range.lowerBound) to \(range.upperBound)"
                )
            }
            config[keyPath: keyPath] = value
        }
        if let (text, source) = lookup("BITTEN_REDIS_URL") {
            if text.hasPrefix("redis-cluster://") {
                do { config.redisCluster = try RedisClusterURL(parsing: text) } catch {
                    throw ConfigError(
                        setting: "BITTEN_REDIS_URL", message: "from the \(source.rawValue): \(error.message)")
                }
            } else {
                do {
                    config.redisURL = try RedisURL(parsing: text)
                } catch {
                    throw ConfigError(
                        setting: "BITTEN_REDIS_URL", message: "from the \(source.rawValue): \(error.message)")
                }
            }
        }
        if let (text, source) = lookup("BITTEN_REDIS_CLUSTER") {
            switch text.lowercased() {
            case "1", "true", "yes", "on": config.managedCluster = true
            case "0", "false", "no", "off": config.managedCluster = false
            default:
                throw ConfigError(
                    setting: "BITTEN_REDIS_CLUSTER", message: "'\(text)' from the \(source.rawValue) is not on or off")
            }
        }
        if let (text, _) = lookup("BITTEN_DATA_DIR") { config.dataDir = text }
        if let (text, _) = lookup("BITTEN_BIND_HOST") {
            config.zmqHost = text
            config.httpHost = text == "*" ? "0.0.0.0" : text
        }
        if let (text, _) = lookup("BITTEN_HTTP_HOST") { config.httpHost = text }
        try port("BITTEN_COMMAND_PORT", \.commandPort)
        try port("BITTEN_MARKET_PORT", \.marketPort)
        try port("BITTEN_SIGNAL_PORT", \.signalPort)
        try port("BITTEN_CONFIRM_PORT", \.confirmPort)
        try port("BITTEN_SIGNAL_IN_PORT", \.signalInPort)
        try port("BITTEN_RELAY_PORT", \.relayPort)
        try port("BITTEN_ALERT_PORT", \.alertPort)
        try port("BITTEN_QUERY_PORT", \.queryPort)
        try port("BITTEN_HTTP_PORT", \.httpPort)
        try seconds("BITTEN_HEARTBEAT_TIMEOUT", \.heartbeatTimeout)
        try seconds("BITTEN_ALERT_COOLDOWN", \.alertCooldown)
        try seconds("BITTEN_PING_INTERVAL", \.pingInterval)
        try seconds("BITTEN_EA_LINK_TIMEOUT", \.eaLinkTimeout)
        if let (text, source) = lookup("BITTEN_SOCKET_COALESCE_MS") {
            guard let value = Double(text.trimmingSpaces), value.isFinite, value >= 0, value <= 100 else {
                throw ConfigError(
                    setting: "BITTEN_SOCKET_COALESCE_MS",
                    message: "'\(text)' from the \(source.rawValue) is not a number of milliseconds (0-100, 0 = off)")
            }
            config.socketCoalesceMilliseconds = value
        }
        if let (text, source) = lookup("BITTEN_RELAY_FORMAT") {
            guard let format = BittenConfig.RelayFormat(rawValue: text) else {
                throw ConfigError(
                    setting: "BITTEN_RELAY_FORMAT",
                    message: "'\(text)' from the \(source.rawValue) is neither topic nor legacy")
            }
            config.relayFormat = format
        }
        if let (text, _) = lookup("BITTEN_API_TOKEN") { config.apiToken = text }
        if let (text, source) = lookup("BITTEN_EA_PEER_CHECK") {
            guard let match = PeerMatch(rawValue: text.trimmingSpaces.replacingOccurrences(of: "/", with: "")) else {
                throw ConfigError(
                    setting: "BITTEN_EA_PEER_CHECK",
                    message: "'\(text)' from the \(source.rawValue) is not exact, /24 or off")
            }
            config.eaPeerCheck = match
        }
        if let (text, source) = lookup("BITTEN_EA_NETWORKS") {
            let (list, invalid) = NetworkAllowList.parse(text)
            guard invalid.isEmpty, !list.networks.isEmpty else {
                throw ConfigError(
                    setting: "BITTEN_EA_NETWORKS",
                    message:
                        "'\(invalid.first ?? text)' from the \(source.rawValue) is not a network (CIDR such as 10.0.0.0/8, comma-separated)"
                )
            }
            config.eaNetworks = list
        }
        if let (text, source) = lookup("BITTEN_SWITCH_APPROVE_AFTER") {
            guard let value = Double(text.trimmingSpaces), value.isFinite, value >= 0, value <= 30 * 86_400 else {
                throw ConfigError(
                    setting: "BITTEN_SWITCH_APPROVE_AFTER",
                    message:
                        "'\(text)' from the \(source.rawValue) is not a number of seconds (0 = off, at most 30 days)")
            }
            config.switchApprovalAfter = value
        }
        try seconds("BITTEN_FIRE_TIMEOUT", \.fireTimeout)
        try seconds("BITTEN_SIGNAL_TTL", \.signalTTL)
        try count("BITTEN_TRADE_SHARDS", \.tradeShards, 1...1024, of: "shard count")
        try count("BITTEN_TRADE_APPLY_AHEAD", \.tradeApplyAhead, 1...100_000, of: "number of messages")
        if let (text, source) = lookup("BITTEN_LEDGER_RETENTION_DAYS") {
            guard let value = Double(text.trimmingSpaces), value.isFinite, value >= 0, value <= 3_650 else {
                throw ConfigError(
                    setting: "BITTEN_LEDGER_RETENTION_DAYS",
                    message:
                        "'\(text)' from the \(source.rawValue) is not a number of days from 0 (kept for ever) to 3650")
            }
            config.ledgerRetentionDays = value
        }
        if let (text, source) = lookup("BITTEN_BASE_RISK") {
            guard let value = Double(text.trimmingSpaces), value >= 1, value <= 2 else {
                throw ConfigError(
                    setting: "BITTEN_BASE_RISK",
                    message: "'\(text)' from the \(source.rawValue) is not a percent from 1 to 2")
            }
            config.baseRiskPercent = value
        }
        if let (text, source) = lookup("BITTEN_MAX_LOTS_PER_SYMBOL") {
            guard let parsed = ConcentrationLimits.parseSymbols(text) else {
                throw ConfigError(
                    setting: "BITTEN_MAX_LOTS_PER_SYMBOL",
                    message:
                        "'\(text)' from the \(source.rawValue) is not lots (100) or SYMBOL=lots pairs (EURUSD=200,*=100)"
                )
            }
            config.concentration.perSymbol = parsed.perSymbol
            config.concentration.anySymbol = parsed.any
        }
        if let (text, source) = lookup("BITTEN_MAX_LOTS_PER_SIGNAL") {
            guard let value = Double(text.trimmingSpaces), value.isFinite, value > 0 else {
                throw ConfigError(
                    setting: "BITTEN_MAX_LOTS_PER_SIGNAL",
                    message: "'\(text)' from the \(source.rawValue) is not a number of lots above 0")
            }
            config.concentration.perSignal = value
        }
        if let (text, source) = lookup("BITTEN_FLIGHT_RECORDER") {
            switch text.trimmingSpaces.lowercased() {
            case "on", "true", "1", "yes": config.flightRecorder = true
            case "off", "false", "0", "no": config.flightRecorder = false
            default:
                throw ConfigError(
                    setting: "BITTEN_FLIGHT_RECORDER", message: "'\(text)' from the \(source.rawValue) is not on or off"
                )
            }
        }
        if let (text, source) = lookup("BITTEN_NO_STOP_RISK") {
            guard let value = Double(text.trimmingSpaces), value > 0, value <= 100 else {
                throw ConfigError(
                    setting: "BITTEN_NO_STOP_RISK",
                    message: "'\(text)' from the \(source.rawValue) is not a percent above 0, at most 100")
            }
            config.noStopRiskPercent = value
        }
        if let (text, source) = lookup("BITTEN_WEBHOOK_URL") {
            guard text.hasPrefix("http://") || text.hasPrefix("https://") else {
                throw ConfigError(
                    setting: "BITTEN_WEBHOOK_URL",
                    message: "'\(text)' from the \(source.rawValue) is not an http(s) URL")
            }
            config.webhookURL = text
        }
        if let (text, source) = lookup("BITTEN_FAULT_INJECT") {
            guard let fault = TradeEngine.Fault(rawValue: text) else {
                throw ConfigError(
                    setting: "BITTEN_FAULT_INJECT",
                    message: "'\(text)' from the \(source.rawValue) is not one of "
                        + TradeEngine.Fault.allCases.map(\.rawValue).joined(separator: ", "))
            }
            config.faultInjection = fault
        }
        if let (text, source) = lookup("BITTEN_CITADEL_MULTIPLIERS") {
            // "DANGER=0.25,HIGH_RISK=0.5,CAUTION=0.75,PROTECTED=1,FORTRESS=1.25"; levels not named keep their default.
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
                guard parts.count == 2, let level = RiskLevel(rawValue: parts[0].uppercased()),
                    let value = Double(parts[1]), value >= 0, value <= 3
                else {
                    throw ConfigError(
                        setting: "BITTEN_CITADEL_MULTIPLIERS",
                        message:
                            "'\(pair)' from the \(source.rawValue) is not LEVEL=multiplier (levels \(RiskLevel.allCases.map(\.rawValue).joined(separator: ", ")), multiplier 0-3)"
                    )
                }
                config.citadel.multipliers[level] = value
            }
        }
        if let (text, source) = lookup("BITTEN_CITADEL_SWEEP_PIPS") {
            guard let value = Double(text.trimmingSpaces), value > 0, value <= 1000 else {
                throw ConfigError(
                    setting: "BITTEN_CITADEL_SWEEP_PIPS",
                    message: "'\(text)' from the \(source.rawValue) is not a number of pips (0-1000)")
            }
            config.citadel.sweepThresholdPips = value
        }
        if let (text, source) = lookup("BITTEN_CITADEL_ALERT_COOLDOWN") {
            guard let value = Double(text.trimmingSpaces), value.isFinite, value >= 0, value <= 86_400 else {
                throw ConfigError(
                    setting: "BITTEN_CITADEL_ALERT_COOLDOWN",
                    message: "'\(text)' from the \(source.rawValue) is not a number of seconds (0-86400)")
            }
            config.citadel.alertCooldown = value
        }
        if let (text, source) = lookup("BITTEN_MARKET_CLOSED_SILENCE") {
            switch text.lowercased() {
            case "1", "true", "yes", "on": config.suppressAlertsWhenMarketClosed = true
            case "0", "false", "no", "off": config.suppressAlertsWhenMarketClosed = false
            default:
                throw ConfigError(
                    setting: "BITTEN_MARKET_CLOSED_SILENCE",
                    message: "'\(text)' from the \(source.rawValue) is not true or false")
            }
        }
        if let (text, source) = lookup("BITTEN_PROTECT_READS") {
            switch text.lowercased() {
            case "1", "true", "yes", "on": config.protectReads = true
            case "0", "false", "no", "off": config.protectReads = false
            default:
                throw ConfigError(
                    setting: "BITTEN_PROTECT_READS",
                    message: "'\(text)' from the \(source.rawValue) is not true or false")
            }
        }
        if let (text, source) = lookup("BITTEN_GATEWAY_ID") {
            guard (1...32).contains(text.count),
                text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else {
                throw ConfigError(
                    setting: "BITTEN_GATEWAY_ID",
                    message: "'\(text)' from the \(source.rawValue) is not 1-32 letters, digits, - or _")
            }
            config.gatewayID = text
        }
        if let (text, source) = lookup("BITTEN_CURVE") {
            switch text.lowercased() {
            case "1", "true", "yes", "on": config.curve = true
            case "0", "false", "no", "off": config.curve = false
            default:
                throw ConfigError(
                    setting: "BITTEN_CURVE", message: "'\(text)' from the \(source.rawValue) is not on or off")
            }
        }
        if let (text, source) = lookup("BITTEN_EA_RATE_LIMIT") {
            guard let value = Double(text.trimmingSpaces), value.isFinite, value >= 0 else {
                throw ConfigError(
                    setting: "BITTEN_EA_RATE_LIMIT",
                    message:
                        "'\(text)' from the \(source.rawValue) is not a number of messages per second (0 = no limit)")
            }
            config.eaRateLimit = value
        }
        if let (text, source) = lookup("BITTEN_MALLOC_MMAP_THRESHOLD") {
            guard let value = Int(text.trimmingSpaces), value >= 0, value <= 32 * 1024 * 1024 else {
                throw ConfigError(
                    setting: "BITTEN_MALLOC_MMAP_THRESHOLD",
                    message:
                        "'\(text)' from the \(source.rawValue) is not a size in bytes from 0 (glibc's default) to 33554432"
                )
            }
            config.mallocMmapThreshold = value
        }
        // Anyone who can reach the API can trade: it only leaves the machine with a token.
        let loopback = ["127.0.0.1", "localhost", "::1"].contains(config.httpHost) || config.httpHost.hasPrefix("127.")
        if !loopback && (config.apiToken ?? "").isEmpty {
            throw ConfigError(
                setting: "BITTEN_HTTP_HOST",
                message:
                    "refusing to serve the HTTP API on \(config.httpHost) without BITTEN_API_TOKEN (set a token, or bind 127.0.0.1)"
            )
        }
        if config.protectReads && (config.apiToken ?? "").isEmpty {
            throw ConfigError(setting: "BITTEN_PROTECT_READS", message: "needs BITTEN_API_TOKEN")
        }
        let ports = [
            config.commandPort, config.marketPort, config.signalPort, config.confirmPort, config.signalInPort,
            config.relayPort, config.alertPort, config.queryPort, config.httpPort,
        ]
        try applyTelegram(lookup, to: &config)
        if Set(ports).count != ports.count {
            throw ConfigError(setting: "ports", message: "two services are configured on the same port")
        }
        return config
    }
}

extension String {
    var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}
