/// Decides which node-offline events become alerts: a cooldown per node, silence while the market
/// is closed, and one broker-wide alert instead of a storm when most of a broker's nodes go quiet together.
public struct AlertPolicy: Sendable {
    /// Seconds between two alerts about the same node.
    public var cooldown: Double
    /// A broker-wide event needs at least this many nodes going offline in one sweep…
    public var brokerWideMinimum: Int = 5
    /// …and at least this share of that broker's online nodes.
    public var brokerWideShare: Double = 0.5
    /// Whether the Friday 22:00 → Sunday 22:00 UTC window silences alerts.
    public var suppressWhenMarketClosed: Bool = true
    private var lastAlert: [String: Double] = [:]

    /// A policy with a `cooldown` per alert key.
    public init(cooldown: Double = 300, suppressWhenMarketClosed: Bool = true) {
        self.cooldown = cooldown
        self.suppressWhenMarketClosed = suppressWhenMarketClosed
    }

    /// An alert to raise.
    public struct Alert: Sendable, Equatable {
        /// What kind it is.
        public var kind: String
        /// The user's UUID (the EA's `target_uuid`).
        public var uuid: String?
        /// The broker's company name.
        public var broker: String?
        /// How many.
        public var count: Int
        /// Why.
        public var reason: String
        /// When (epoch seconds).
        public var at: Double
    }

    /// True from Friday 22:00 to Sunday 22:00 UTC, when heartbeats stop because the market is closed.
    public static func marketClosed(at epochSeconds: Double) -> Bool {
        let seconds = Int(epochSeconds)
        let weekday = ((seconds / 86_400) + 4) % 7  // 0 = Sunday (1970-01-01 was a Thursday)
        let hour = (seconds % 86_400) / 3600
        switch weekday {
        case 5: return hour >= 22
        case 6: return true
        case 0: return hour < 22
        default: return false
        }
    }

    /// Turns one sweep's offline events into alerts. `onlineBefore` is each broker's online count before the sweep.
    public mutating func alerts(for events: [NodeEvent], onlineBefore: [String: Int], at now: Double) -> [Alert] {
        if suppressWhenMarketClosed && AlertPolicy.marketClosed(at: now) { return [] }
        var byBroker: [String: [(String, String)]] = [:]
        // A DISCONNECT is a deliberate stop, not an incident: only silent nodes raise alerts.
        for case .offline(let uuid, let broker, let reason, _) in events where reason == "timeout" {
            byBroker[broker, default: []].append((uuid, reason))
        }
        var alerts: [Alert] = []
        for (broker, nodes) in byBroker.sorted(by: { $0.key < $1.key }) {
            let online = max(onlineBefore[broker] ?? nodes.count, nodes.count)
            if nodes.count >= brokerWideMinimum && Double(nodes.count) >= brokerWideShare * Double(online) {
                let key = "broker:" + broker
                if let last = lastAlert[key], now - last < cooldown { continue }
                lastAlert[key] = now
                for (uuid, _) in nodes { lastAlert[uuid] = now }
                alerts.append(
                    Alert(
                        kind: "broker_silent", uuid: nil, broker: broker, count: nodes.count,
                        reason: "\(nodes.count) of \(online) nodes went quiet together", at: now))
                continue
            }
            for (uuid, reason) in nodes {
                if let last = lastAlert[uuid], now - last < cooldown { continue }
                lastAlert[uuid] = now
                alerts.append(
                    Alert(
                        kind: "node_timeout", uuid: uuid,
                        broker: broker, count: 1, reason: reason, at: now))
            }
        }
        return alerts
    }
}
