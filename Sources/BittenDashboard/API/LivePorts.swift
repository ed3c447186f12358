import BittenCore
import BittenServices
import Foundation
import Redis

extension APIPorts {
    /// The ports of a running system: its registry, trade path, CITADEL and the process itself.
    init(_ deps: DashboardDependencies) {
        self.init(
            system: LiveSystem(deps: deps), nodes: deps.registry, trade: deps.trade.map(LiveTradeDesk.init),
            citadel: deps.citadel, control: deps.redis.map { TradingControlStore(redis: $0) },
            traces: deps.redis.map { TraceReader(redis: $0) }, links: deps.redis.map { TelegramStore(redis: $0) },
            notRunning: deps.notRunning)
    }
}

/// The process: `/health` from its parts, the service board, metrics, alerts from Redis.
struct LiveSystem: SystemStatus {
    let deps: DashboardDependencies

    func health() async -> HealthReport { await deps.healthReport() }

    var services: [ServiceReport] { deps.board.all }

    func metricsText() -> String { deps.metricsText() }

    /// System alerts (`system_alerts`) and CITADEL alerts (`citadel:alerts`), newest first.
    func alerts(source: String?, limit: Int) async -> [AlertRecord] {
        guard let redis = deps.redis, limit > 0 else { return [] }
        var lists: [(String, String)] = []
        if source == nil || source == "system" { lists.append(("system", RedisKeys.systemAlerts)) }
        if source == nil || source == "citadel" { lists.append(("citadel", RedisKeys.citadelAlerts)) }
        guard let replies = try? await redis.pipeline(lists.map { ["LRANGE", $0.1, "0", String(limit - 1)] }) else {
            return []
        }
        var alerts: [AlertRecord] = []
        for ((name, _), reply) in zip(lists, replies) {
            for item in reply.array ?? [] {
                guard let text = item.string,
                    let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                else { continue }
                let time = (object["timestamp"] as? Double) ?? (object["at"] as? Double) ?? 0
                alerts.append(
                    AlertRecord(
                        source: name, kind: object["kind"] as? String ?? "unknown", symbol: object["symbol"] as? String,
                        uuid: object["uuid"] as? String,
                        message: (object["message"] as? String) ?? (object["reason"] as? String) ?? "",
                        timestamp: time))
            }
        }
        return Array(alerts.sorted { $0.timestamp > $1.timestamp }.prefix(limit))
    }
}

/// What the trade routes need; nil in a process that does not run the trade path.
public struct TradeDependencies: Sendable {
    /// The trade store (users, signals, fires, positions, statistics).
    public var store: TradeStore
    /// The fire desk (fire, close, close-all).
    public var desk: FireDesk
    /// Signal intake, when CITADEL runs here.
    public var intake: SignalIntake?
    /// Open positions priced at the latest quotes.
    public var tracker: PositionTracker

    /// The trade path's parts.
    public init(store: TradeStore, desk: FireDesk, intake: SignalIntake?, tracker: PositionTracker) {
        self.store = store
        self.desk = desk
        self.intake = intake
        self.tracker = tracker
    }
}

/// The trade path of this process: its store, fire desk, signal intake and position tracker.
struct LiveTradeDesk: TradeDesk {
    let parts: TradeDependencies

    init(_ parts: TradeDependencies) { self.parts = parts }

    var tiers: TierTable { parts.desk.tradeSettings.tiers }
    var riskLimits: [Tier: RiskLimits] { parts.desk.tradeSettings.riskLimits }
    func user(_ uuid: String) async throws -> UserRecord? { try await parts.store.user(uuid) }
    func users() async throws -> [UserRecord] { try await parts.store.users() }
    func restrictedUsers() async throws -> [UserRecord] { try await parts.store.restrictedUsers() }
    func save(_ user: UserRecord) async throws { try await parts.store.save(user) }
    func slotsUsed(_ uuid: String) async throws -> Int { try await parts.store.slotsUsed(uuid) }

    func submitSignal(_ bytes: [UInt8]) async throws -> SignalRecord {
        guard let intake = parts.intake else {
            throw APIError(.serviceUnavailable, code: "unavailable", "signal intake is not running in this process")
        }
        return try await intake.submit(bytes)
    }

    func recentSignals(limit: Int) async throws -> [SignalRecord] { try await parts.store.recentSignals(limit: limit) }
    func signal(_ id: String) async throws -> SignalRecord? { try await parts.store.signal(id) }

    func fire(signalID: String, userUUID: String) async throws(FireRefusal) -> FireRecord {
        try await parts.desk.fire(signalID: signalID, userUUID: userUUID)
    }

    func close(ticket: Int) async throws(FireRefusal) -> FireRecord { try await parts.desk.close(ticket: ticket) }

    func closeAll(userUUID: String) async throws(FireRefusal) -> [FireRecord] {
        try await parts.desk.closeAll(userUUID: userUUID)
    }

    func setTrading(userUUID: String, control: TradingControl) async throws(FireRefusal) -> [FireRecord] {
        try await parts.desk.setTrading(userUUID: userUUID, control: control)
    }

    func recentFires(limit: Int) async throws -> [FireRecord] { try await parts.store.recentFires(limit: limit) }
    func fireRecord(_ id: String) async throws -> FireRecord? { try await parts.store.fire(id) }
    func position(_ ticket: Int) async throws -> PositionRecord? { try await parts.store.position(ticket) }

    func openPositions(user: String?) async throws -> PositionTracker.Snapshot {
        try await parts.tracker.snapshot(user: user)
    }

    func trades(list: String, limit: Int) async throws -> [[String: String]] {
        try await parts.store.trades(list: list, limit: limit)
    }

    func stats(_ key: String) async throws -> TradeStats { try await parts.store.stats(key) }
}
