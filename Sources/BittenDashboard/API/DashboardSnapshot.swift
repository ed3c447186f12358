import BittenCore
import BittenServices
import Foundation

/// Everything the dashboard shows, in one object: what `/snapshot` answers and `/events` streams.
struct DashboardSnapshot: Encodable {
    struct Nodes: Encodable {
        var online: Int
        var total: Int
        var brokers: [Broker]
        var recent: [Components.Schemas.Node]
    }
    struct Broker: Encodable {
        var broker: String
        var online: Int
        var total: Int
    }
    struct Positions: Encodable {
        var count: Int
        var unrealizedProfit: Double
        var positions: [PositionRecord]
    }
    struct SymbolStats: Encodable {
        var symbol: String
        var total: Int
        var winRate: Double
        var net: Double
    }
    struct Signal: Encodable {
        var signalId: String
        var symbol: String
        var direction: String
        var entry: Double
        var protectionScore: Double
        var riskLevel: String
        var receivedAt: Double
    }

    /// The system's trading state and the users not trading normally (the dashboard's banner).
    struct Trading: Encodable {
        var state: String
        var reason: String
        var by: String
        var at: Double
        var version: Int
        var closeAll: Bool
        var processes: Int
        var users: [UserState]
    }
    struct UserState: Encodable {
        var uuid: String
        var state: String
        var reason: String
        var by: String
        var at: Double
        var until: Double?
    }

    var at: Double
    var health: HealthReport
    var trading: Trading?
    var nodes: Nodes?
    var positions: Positions?
    var stats: TradeStats?
    var symbols: [SymbolStats]
    var signals: [Signal]
    var alerts: [AlertRecord]

    /// The trading state, nil when it cannot be read.
    static func trading(_ ports: APIPorts) async -> Trading? {
        guard let control = ports.control, let system = try? await control.read() else { return nil }
        let processes = (try? await control.acknowledgements())?.count ?? 0
        var users: [UserState] = []
        if let all = try? await ports.trade?.restrictedUsers() {
            for user in all {
                guard let trading = user.trading, trading.effective(at: Date().timeIntervalSince1970) != .active else {
                    continue
                }
                users.append(
                    .init(
                        uuid: user.uuid, state: trading.state.rawValue, reason: trading.reason, by: trading.by,
                        at: trading.at, until: trading.until))
            }
        }
        return Trading(
            state: system.state.rawValue, reason: system.reason, by: system.by, at: system.at, version: system.version,
            closeAll: system.closeAll, processes: processes, users: Array(users.prefix(50)))
    }

    /// The snapshot at `now`, from the ports (a part whose service is not running, or fails, is left out).
    static func build(_ ports: APIPorts, now: Double) async -> DashboardSnapshot {
        let health = await ports.system.health()
        var nodes: Nodes?
        if let registry = ports.nodes {
            let counts = registry.counts(at: now)
            let brokers = registry.countsByBroker.map {
                Broker(broker: $0.key, online: $0.value.online, total: $0.value.total)
            }
            .sorted { $0.total > $1.total }
            let recent = registry.all.sorted { $0.lastHeartbeat > $1.lastHeartbeat }.prefix(100).map {
                BittenAPI.node($0, now: now)
            }
            nodes = .init(
                online: counts.online, total: counts.total, brokers: Array(brokers.prefix(20)), recent: Array(recent))
        }
        var positions: Positions?
        var stats: TradeStats?
        var symbols: [SymbolStats] = []
        var signals: [Signal] = []
        if let trade = ports.trade {
            if let open = try? await trade.openPositions(user: nil) {
                positions = .init(
                    count: open.positions.count, unrealizedProfit: open.unrealizedProfit,
                    positions: Array(open.positions.prefix(50)))
            }
            stats = try? await trade.stats("global_trade_stats")
            var names = Set(positions?.positions.map(\.symbol) ?? [])
            names.formUnion(["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"])
            for symbol in names.sorted() {
                if let s = try? await trade.stats("symbol_stats:\(symbol)"), s.total > 0 {
                    symbols.append(.init(symbol: symbol, total: s.total, winRate: s.winRate, net: s.net))
                }
            }
            signals = ((try? await trade.recentSignals(limit: 10)) ?? []).map {
                .init(
                    signalId: $0.signalID, symbol: $0.symbol, direction: $0.direction, entry: $0.entry,
                    protectionScore: $0.protectionScore, riskLevel: $0.riskLevel, receivedAt: $0.receivedAt)
            }
        }
        let alerts = await ports.system.alerts(source: nil, limit: 20)
        return DashboardSnapshot(
            at: now, health: health, trading: await trading(ports), nodes: nodes, positions: positions, stats: stats,
            symbols: symbols,
            signals: signals, alerts: alerts)
    }
}
