/// The Redis key schema (see architecture.md).
public enum RedisKeys {
    public static func node(_ uuid: String) -> String { "node:\(uuid)" }
    public static let activeNodes = "active_nodes"
    public static func nodeHistory(_ uuid: String) -> String { "node_history:\(uuid)" }
    public static func accountSwitches(_ uuid: String) -> String { "account_switches:\(uuid)" }
    public static func brokerStats(_ broker: String) -> String { "broker_stats:\(safe(broker))" }
    public static let systemAlerts = "system_alerts"
    /// CITADEL alerts, newest first, bounded.
    public static let citadelAlerts = "citadel:alerts"
    public static let services = "bitten:services"
    public static let health = "bitten:health"

    /// A free-text name (a broker) made safe to embed in a key: anything outside `[A-Za-z0-9._-]` becomes `_`.
    public static func safe(_ text: String) -> String {
        let mapped = text.unicodeScalars.prefix(64).map { scalar -> Character in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": Character(scalar)
            default: "_"
            }
        }
        return mapped.isEmpty ? "_" : String(mapped)
    }
}
