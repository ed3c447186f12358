import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// A raised alert as stored in `system_alerts` and published on the alert PUB.
public struct SystemAlert: Sendable, Codable, Equatable {
    /// The alert's kind (`node_timeout`, `broker_silent`, `duplicate_ea`…).
    public var kind: String
    /// The node concerned, if one.
    public var uuid: String?
    /// The broker concerned, if one.
    public var broker: String?
    /// How many nodes it concerns.
    public var count: Int
    /// Why.
    public var reason: String
    /// When (epoch seconds).
    public var at: Double
}

/// Alerts raised by other services (an EA that reads no command, a position running without its
/// stop): queued here and published by the heartbeat monitor with its own, on 5565 and in
/// `system_alerts`. Bounded: with no monitor in the process the oldest are dropped.
public final class AlertQueue: Sendable {
    private let pending = Mutex<[SystemAlert]>([])
    private let counter = Counter(label: "bitten_alerts_total")

    /// An empty queue.
    public init() {}

    /// Queues an alert.
    public func raise(kind: String, uuid: String? = nil, broker: String? = nil, reason: String, at: Double) {
        counter.increment()
        pending.withLock { queue in
            queue.append(SystemAlert(kind: kind, uuid: uuid, broker: broker, count: 1, reason: reason, at: at))
            if queue.count > 10_000 { queue.removeFirst(queue.count - 10_000) }
        }
    }

    /// Takes every queued alert.
    public func drain() -> [SystemAlert] {
        pending.withLock { queue in
            defer { queue = [] }
            return queue
        }
    }
}

/// Declares silent nodes dead, raises alerts (with cooldowns, market-hours silence and broker-wide
/// grouping) and computes the system health score every `checkInterval`.
public final class HeartbeatMonitor: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "monitor"

    private let registry: NodeRegistry
    private let redis: RedisClient
    private let board: ServiceBoard
    private let alertSocket: LoopSocket?
    private let timeout: Double
    private let checkInterval: Duration
    private let logger: Logger
    private let now: @Sendable () -> Double
    private let policy: Mutex<AlertPolicy>
    private let recent = Mutex<[Double]>([])
    private let latest = Mutex<HealthScore?>(nil)
    private let pendingAlerts = Mutex<[SystemAlert]>([])
    private let healthGauge = Gauge(label: "bitten_health_score")
    private let alertCounter = Counter(label: "bitten_alerts_total")
    private let maxAlerts = 1000
    private let queue: AlertQueue?

    /// The monitor over `registry`, publishing on `alertSocket`.
    public init(
        registry: NodeRegistry, redis: RedisClient, board: ServiceBoard, alertSocket: LoopSocket?, timeout: Double,
        cooldown: Double, suppressWhenMarketClosed: Bool = true, checkInterval: Duration? = nil, logger: Logger,
        queue: AlertQueue? = nil, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.queue = queue
        self.registry = registry
        self.redis = redis
        self.board = board
        self.alertSocket = alertSocket
        self.timeout = timeout
        self.checkInterval = checkInterval ?? .milliseconds(Int64(min(5, max(0.2, timeout / 4)) * 1000))
        self.logger = logger
        self.now = now
        self.policy = Mutex(AlertPolicy(cooldown: cooldown, suppressWhenMarketClosed: suppressWhenMarketClosed))
        board.register(Self.name)
    }

    /// The last computed health score.
    public var health: HealthScore? { latest.withLock { $0 } }

    private let lastTrim = Mutex<Double>(0)
    private let lastRelease = Mutex<MemoryRelease?>(nil)

    /// When freed memory was last handed back to the system, and the resident size right after.
    public struct MemoryRelease: Sendable, Equatable {
        /// When memory was last handed back.
        public var at: Double
        /// The RSS right after.
        public var rssBytes: Int
    }

    /// The latest memory release (nil before the first): the RSS right after it is the process's
    /// live footprint, without the freed heap that RSS carries between releases.
    public var memoryRelease: MemoryRelease? { lastRelease.withLock { $0 } }

    /// Times out silent nodes, raises alerts and scores health until shutdown.
    public func run() async throws {
        board.set(Self.name, .running)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await sweep()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.checkInterval) }
            }
        } onGracefulShutdown: {
        }
        board.set(Self.name, .stopped)
    }

    /// One pass: expire silent nodes, raise alerts, compute and publish health.
    public func sweep() async {
        let at = now()
        let (events, onlineBefore) = registry.expire(timeout: timeout)
        let raised = policy.withLock { $0.alerts(for: events, onlineBefore: onlineBefore, at: at) }.map {
            SystemAlert(kind: $0.kind, uuid: $0.uuid, broker: $0.broker, count: $0.count, reason: $0.reason, at: $0.at)
        }
        let others = queue?.drain() ?? []
        if !raised.isEmpty || !others.isEmpty {
            recent.withLock { $0 += (raised + others).map(\.at) }
            pendingAlerts.withLock { $0 += raised + others }
            alertCounter.increment(by: raised.count)
            for alert in raised + others {
                logger.warning(
                    "alert",
                    metadata: [
                        "bitten.kind": "\(alert.kind)", "bitten.node.uuid": "\(alert.uuid ?? "")",
                        "bitten.reason": "\(alert.reason)",
                    ])
            }
        }
        board.count(Self.name, in: events.count, out: raised.count)
        let latency = try? await redis.ping()
        let score = computeHealth(at: at, redisLatency: latency)
        latest.withLock { $0 = score }
        healthGauge.record(score.score)
        await publish(score: score, at: at)
        releaseFreedMemory(at: at)
    }

    /// glibc keeps freed heap (after a burst of messages or a wave of EA connections) unless asked to
    /// give it back; every 30 s the free pages go back to the system so RSS follows the live data.
    private func releaseFreedMemory(at: Double) {
        let due = lastTrim.withLock { last in
            guard at - last >= 30 else { return false }
            last = at
            return true
        }
        guard due else { return }
        MemoryTuning.releaseFreedMemory()
        if let rss = MemoryTuning.residentBytes { lastRelease.withLock { $0 = MemoryRelease(at: at, rssBytes: rss) } }
    }

    private func computeHealth(at: Double, redisLatency latency: Duration?) -> HealthScore {
        let counts = registry.counts(at: at)
        let recentCount = recent.withLock { r in
            r.removeAll { at - $0 > 600 }
            return r.count
        }
        let services = board.all
        return HealthScore(
            HealthInputs(
                totalNodes: counts.total, onlineNodes: counts.online, freshNodes: counts.fresh, redisLatency: latency,
                servicesRunning: services.filter { $0.state == .running }.count, servicesTotal: services.count,
                recentAlerts: recentCount))
    }

    private func publish(score: HealthScore, at: Double) async {
        let alerts = pendingAlerts.withLock { a in
            defer { a = [] }
            return a
        }
        let encoder = JSONEncoder()
        var commands: [[String]] = []
        var messages: [Message] = []
        for alert in alerts {
            guard let data = try? encoder.encode(alert) else { continue }
            let json = String(decoding: data, as: UTF8.self)
            commands.append(["LPUSH", RedisKeys.systemAlerts, json])
            messages.append(Message(strings: ["SYSTEM_ALERT " + json]))
        }
        if !commands.isEmpty { commands.append(["LTRIM", RedisKeys.systemAlerts, "0", String(maxAlerts - 1)]) }
        if let data = try? encoder.encode(score) {
            let json = String(decoding: data, as: UTF8.self)
            commands.append(["SET", RedisKeys.health, json])
            messages.append(Message(strings: ["SYSTEM_HEALTH " + json]))
        }
        alertSocket?.post(messages)
        do {
            _ = try await redis.pipeline(commands)
        } catch {
            // Keep the alerts for the next sweep; the health line is recomputed anyway.
            pendingAlerts.withLock { $0 = alerts + $0 }
        }
    }
}
