/// The inputs of the system health score, gathered by the heartbeat monitor.
public struct HealthInputs: Sendable, Equatable {
    /// Registered nodes (online or offline) seen within the retention window.
    public var totalNodes: Int
    /// Nodes marked online.
    public var onlineNodes: Int
    /// Online nodes whose last heartbeat is younger than 1.5 × the expected interval.
    public var freshNodes: Int
    /// Redis round trip of the last PING; nil when Redis did not answer.
    public var redisLatency: Duration?
    /// Services in the running state.
    public var servicesRunning: Int
    /// Services that should be running.
    public var servicesTotal: Int
    /// Alerts raised in the last 10 minutes.
    public var recentAlerts: Int

    /// A score.
    public init(
        totalNodes: Int, onlineNodes: Int, freshNodes: Int, redisLatency: Duration?, servicesRunning: Int,
        servicesTotal: Int, recentAlerts: Int
    ) {
        self.totalNodes = totalNodes
        self.onlineNodes = onlineNodes
        self.freshNodes = freshNodes
        self.redisLatency = redisLatency
        self.servicesRunning = servicesRunning
        self.servicesTotal = servicesTotal
        self.recentAlerts = recentAlerts
    }
}

/// The system health score 0–100 with the factors that made it.
///
/// `score = round(100 × (0.30·online + 0.20·fresh + 0.20·redis + 0.20·services + 0.10·alerts))`, where
/// - `online` = online nodes ÷ registered nodes (1 with no nodes),
/// - `fresh` = online nodes with a heartbeat younger than 1.5 × the interval ÷ online nodes (1 with none online),
/// - `redis` = 1 up to 5 ms PING, falling linearly to 0 at 100 ms, and 0 when Redis does not answer,
/// - `services` = running services ÷ services that should run,
/// - `alerts` = 1 − alerts in the last 10 minutes ÷ 20, floored at 0.
/// Status: `healthy` ≥ 80, `degraded` ≥ 50, else `critical`; Redis unreachable is never better than `degraded`.
public struct HealthScore: Sendable, Equatable, Codable {
    /// Overall status words.
    public enum Status: String, Sendable, Codable {
        case healthy, degraded, critical
    }

    /// 0–100.
    public let score: Int
    /// The status the score maps to.
    public let status: Status
    /// Each factor in 0…1, by name.
    public let factors: [String: Double]

    /// Weights of the factors (sum 1).
    public static let weights: [String: Double] = [
        "nodes_online": 0.30, "heartbeat_freshness": 0.20, "redis": 0.20, "services": 0.20, "alert_rate": 0.10,
    ]

    /// Computes the score.
    public init(_ input: HealthInputs) {
        let online = input.totalNodes == 0 ? 1.0 : Double(input.onlineNodes) / Double(input.totalNodes)
        let fresh = input.onlineNodes == 0 ? 1.0 : Double(input.freshNodes) / Double(input.onlineNodes)
        let redis: Double
        if let latency = input.redisLatency {
            let ms = Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15
            redis = ms <= 5 ? 1 : max(0, 1 - (ms - 5) / 95)
        } else {
            redis = 0
        }
        let services = input.servicesTotal == 0 ? 1.0 : Double(input.servicesRunning) / Double(input.servicesTotal)
        let alerts = max(0, 1 - Double(input.recentAlerts) / 20)
        let factors = [
            "nodes_online": clamp(online), "heartbeat_freshness": clamp(fresh), "redis": redis,
            "services": clamp(services), "alert_rate": alerts,
        ]
        let total = factors.reduce(0.0) { $0 + $1.value * (HealthScore.weights[$1.key] ?? 0) }
        let score = Int((total * 100).rounded())
        var status: Status = score >= 80 ? .healthy : score >= 50 ? .degraded : .critical
        if input.redisLatency == nil && status == .healthy { status = .degraded }
        self.score = score
        self.status = status
        self.factors = factors
    }
}

private func clamp(_ value: Double) -> Double { min(1, max(0, value)) }
