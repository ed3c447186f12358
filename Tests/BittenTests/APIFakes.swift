import BittenCore
import Foundation
import Synchronization

@testable import BittenDashboard
@testable import BittenServices

/// In-memory fakes of the HTTP API's ports, for the handler tests.
final class FakeSystem: SystemStatus {
    let alertList: [AlertRecord]

    init(alerts: [AlertRecord] = []) { alertList = alerts }

    func health() async -> HealthReport {
        HealthReport(
            status: "healthy", version: "test", healthScore: 97, healthFactors: ["heartbeats": 1],
            redis: .init(reachable: true, state: "connected", pingMs: 0.2, usedMemoryBytes: 1024, mode: "single"),
            services: services, ports: [], nodes: .init(online: 1, total: 2),
            process: .init(pid: 1, uptimeSeconds: 5), notRunning: nil)
    }

    var services: [ServiceReport] {
        let board = ServiceBoard(now: { 1_800_000_000 })
        board.register("trade")
        board.set("trade", .running)
        return board.all
    }

    func metricsText() -> String { "bitten_test_total 1\n" }

    func alerts(source: String?, limit: Int) async -> [AlertRecord] {
        Array(alertList.filter { source == nil || $0.source == source }.prefix(limit))
    }
}

final class FakeNodes: NodeDirectory {
    private let nodes: Mutex<[String: NodeRecord]>

    init(count: Int) {
        var table: [String: NodeRecord] = [:]
        for index in 0..<count {
            let uuid = String(format: "user_%03d", index)
            table[uuid] = NodeRecord(
                uuid: uuid, nodeID: "node_\(index)", account: 70_000_000 + index,
                broker: index % 2 == 0 ? "Alpha" : "Beta", server: "Alpha-Live", company: "Alpha Ltd",
                currency: "USD", balance: Double(10_000 + index * 100), equity: Double(10_000 + index * 100),
                leverage: 500, margin: 0, freeMargin: 0, marginLevel: 0, symbols: 10, version: "2.05",
                gateway: "g1", firstSeen: 1_800_000_000, lastSeen: 1_800_000_000 + Double(index),
                lastHeartbeat: 1_800_000_000 + Double(index), heartbeatInterval: 30, heartbeatJitter: nil,
                latencyMs: Double(index), online: index % 5 != 0, offlineReason: index % 5 == 0 ? "silent" : nil,
                connectedSince: 1_800_000_000, reconnects: 0, accountSwitches: 0)
        }
        nodes = Mutex(table)
    }

    var all: [NodeRecord] { nodes.withLock { Array($0.values) } }
    func node(_ uuid: String) -> NodeRecord? { nodes.withLock { $0[uuid] } }
    func counts(at time: Double?) -> (online: Int, total: Int, fresh: Int) {
        let all = all
        let online = all.filter(\.online).count
        return (online, all.count, online)
    }
    var countsByBroker: [String: (online: Int, total: Int)] {
        Dictionary(grouping: all, by: \.broker).mapValues { ($0.filter(\.online).count, $0.count) }
    }
    func approveSwitch(_ uuid: String) -> Bool { false }
    func dismissSwitch(_ uuid: String) -> Bool { false }
    func unpin(_ uuid: String) -> Bool {
        nodes.withLock { table in
            guard table[uuid]?.pin != nil else { return false }
            table[uuid]?.pin = nil
            return true
        }
    }
}

/// A trade desk holding users and fires in memory; `refusal` makes every fire refused with it.
final class FakeTradeDesk: TradeDesk {
    private let state = Mutex<(users: [String: UserRecord], fires: [FireRecord])>(([:], []))
    let refusal: FireRefusal?

    init(refusal: FireRefusal? = nil) { self.refusal = refusal }

    var tiers: TierTable { .standard }
    var riskLimits: [Tier: RiskLimits] { [.captain: RiskLimits(dailyLossPercent: 5, tradesPerDay: 20)] }
    func user(_ uuid: String) async throws -> UserRecord? { state.withLock { $0.users[uuid] } }
    func users() async throws -> [UserRecord] { state.withLock { Array($0.users.values) } }
    func save(_ user: UserRecord) async throws { state.withLock { $0.users[user.uuid] = user } }
    func slotsUsed(_ uuid: String) async throws -> Int {
        state.withLock { s in s.fires.filter { $0.userUUID == uuid }.count }
    }

    func submitSignal(_ bytes: [UInt8]) async throws -> SignalRecord {
        let signal: Signal
        do {
            signal = try Signal.decode(bytes, now: 1_800_000_000, defaultTTL: 3600)
        } catch {
            throw SignalRejection(code: .invalid, message: "signal rejected: \(error)", wireError: error)
        }
        return SignalRecord(
            signal, score: ProtectionAssessment(score: 7, level: "PROTECTED", multiplier: 1, insights: []),
            receivedAt: 1_800_000_000)
    }

    func recentSignals(limit: Int) async throws -> [SignalRecord] { [] }
    func signal(_ id: String) async throws -> SignalRecord? { nil }

    func fire(signalID: String, userUUID: String) async throws(FireRefusal) -> FireRecord {
        if let refusal { throw refusal }
        return state.withLock { s in
            if var earlier = s.fires.first(where: { $0.signalID == signalID && $0.userUUID == userUUID }) {
                earlier.duplicate = true
                return earlier
            }
            let record = Self.record(
                id: "F-20261205-00-\(String(format: "%06d", s.fires.count + 1))", signalID, userUUID)
            s.fires.insert(record, at: 0)
            return record
        }
    }

    /// A fire record with every field set (so a schema that forgets one is caught).
    static func record(id: String, _ signalID: String, _ userUUID: String) -> FireRecord {
        var record = FireRecord(hash: [
            "fire_id": id, "kind": "fire", "state": "sent", "signal_id": signalID, "user_uuid": userUUID,
            "symbol": "EURUSD", "direction": "BUY", "entry": "1.085", "sl": "1.08", "tp": "1.095", "lot": "0.1",
            "risk_percent": "2", "risk_amount": "200", "tier": "COMMANDER", "citadel_multiplier": "1",
            "created_at": "1800000000", "sent_at": "1800000000.1", "deadline": "1800000030",
            "confirmed_at": "1800000001", "ticket": "5001", "fill_price": "1.0851", "ea_message": "done",
            "reason": "none", "late": "0", "broker_symbol": "EURUSD.r", "tick_value": "1", "conversion": "USD",
            "sl_dropped": "0", "tp_dropped": "0",
        ])!
        record.slDropped = false
        record.tpDropped = false
        return record
    }

    func close(ticket: Int) async throws(FireRefusal) -> FireRecord {
        throw FireRefusal(.positionNotFound, "no open position \(ticket)")
    }

    func closeAll(userUUID: String) async throws(FireRefusal) -> [FireRecord] { [] }

    func restrictedUsers() async throws -> [UserRecord] {
        state.withLock { s in s.users.values.filter { ($0.trading?.state ?? .active) != .active } }
    }

    func setTrading(userUUID: String, control: TradingControl) async throws(FireRefusal) -> [FireRecord] {
        let known = state.withLock { s in
            guard s.users[userUUID] != nil else { return false }
            s.users[userUUID]?.trading = control
            return true
        }
        guard known else { throw FireRefusal(.userNotFound, "no user \(userUUID)") }
        return []
    }

    func recentFires(limit: Int) async throws -> [FireRecord] { state.withLock { Array($0.fires.prefix(limit)) } }
    func fireRecord(_ id: String) async throws -> FireRecord? { state.withLock { $0.fires.first { $0.fireID == id } } }
    func position(_ ticket: Int) async throws -> PositionRecord? { nil }

    func openPositions(user: String?) async throws -> PositionTracker.Snapshot {
        .init(positions: [], exposure: [], unrealizedProfit: 0, asOf: 1_800_000_000)
    }

    func trades(list: String, limit: Int) async throws -> [[String: String]] { [] }
    func stats(_ key: String) async throws -> TradeStats { TradeStats(hash: [:]) }
}

/// The system's trading state in memory; every change is acknowledged at once by `processes`.
final class FakeControl: SystemControl {
    private let state = Mutex(TradingControl.active)
    let processes: [String]

    init(processes: [String] = ["bitten/test/1"]) { self.processes = processes }

    func read() async throws -> TradingControl { state.withLock { $0 } }

    func set(_ control: TradingControl) async throws -> TradingControl {
        state.withLock { current in
            var stored = control
            stored.version = current.version + 1
            current = stored
            return stored
        }
    }

    func acknowledgements() async throws -> [TradingControlStore.Acknowledgement] {
        let version = state.withLock { $0.version }
        return processes.map { .init(process: $0, version: version, at: 1_800_000_000) }
    }

    func awaitAcknowledgements(of version: Int, timeout: Double) async -> (acknowledged: [String], waiting: [String]) {
        (processes, [])
    }
}

/// Traces in memory: one signal with an intake and two fires.
final class FakeTraces: TraceSource {
    func fire(_ fireID: String) async throws -> [TraceReader.Entry] {
        guard fireID.hasPrefix("F-1") else { return [] }
        return [
            .init(step: "checks", at: 1, data: ["signal_id": "SIG_T", "lot": "0.5"]),
            .init(step: "sent", at: 2, data: ["command": "{}"]),
        ]
    }

    func signal(_ signalID: String, limit: Int, offset: Int) async throws -> (
        steps: [TraceReader.Entry], fires: [String], totalFires: Int
    ) {
        guard signalID == "SIG_T" else { return ([], [], 0) }
        let fires = ["F-10", "F-11"]
        return (
            [.init(step: "intake", at: 0, data: ["raw": "{}"])], Array(fires.dropFirst(offset).prefix(limit)),
            fires.count
        )
    }
}
