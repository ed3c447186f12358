import BittenCore
import BittenServices
import Foundation
import Hummingbird
import Synchronization

/// The dashboard page, its live stream, `/alerts` and `/openapi.yaml`.
///
/// The live stream (`GET /events`, Server-Sent Events) sends one `snapshot` event per interval. The
/// snapshot is built at most once a second and shared by every open dashboard, so 20 dashboards
/// cost the server about what one does.
enum LiveRoutes {
    struct Snapshot: Encodable {
        struct Nodes: Encodable {
            var online: Int
            var total: Int
            var brokers: [Broker]
            var recent: [NodeRoutes.NodeView]
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

        var at: Double
        var health: HealthReport
        var nodes: Nodes?
        var positions: Positions?
        var stats: TradeStats?
        var symbols: [SymbolStats]
        var signals: [Signal]
        var alerts: [Alert]
    }

    /// One alert of either source, for `/alerts` and the dashboard.
    struct Alert: Encodable {
        var source: String
        var kind: String
        var symbol: String?
        var uuid: String?
        var message: String
        var timestamp: Double
    }

    private static let cache = Mutex<(at: Double, text: String)?>(nil)

    /// The shared snapshot as JSON text (rebuilt when older than a second).
    static func snapshotText(_ deps: DashboardDependencies) async -> String {
        let now = Date().timeIntervalSince1970
        if let cached = cache.withLock({ $0 }), now - cached.at < 1 { return cached.text }
        let snapshot = await build(deps, now: now)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let text = (try? encoder.encode(snapshot)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        cache.withLock { $0 = (now, text) }
        return text
    }

    static func build(_ deps: DashboardDependencies, now: Double) async -> Snapshot {
        let health = await deps.healthReport()
        var nodes: Snapshot.Nodes?
        if let registry = deps.registry {
            let counts = registry.counts(at: now)
            let brokers = registry.countsByBroker.map {
                Snapshot.Broker(broker: $0.key, online: $0.value.online, total: $0.value.total)
            }
            .sorted { $0.total > $1.total }
            let recent = registry.all.sorted { $0.lastHeartbeat > $1.lastHeartbeat }.prefix(100).map {
                NodeRoutes.NodeView($0, now: now)
            }
            nodes = .init(
                online: counts.online, total: counts.total, brokers: Array(brokers.prefix(20)), recent: Array(recent))
        }
        var positions: Snapshot.Positions?
        var stats: TradeStats?
        var symbols: [Snapshot.SymbolStats] = []
        var signals: [Snapshot.Signal] = []
        if let trade = deps.trade {
            if let open = try? await trade.tracker.snapshot() {
                positions = .init(
                    count: open.positions.count, unrealizedProfit: open.unrealizedProfit,
                    positions: Array(open.positions.prefix(50)))
            }
            stats = try? await trade.store.stats("global_trade_stats")
            var names = Set(positions?.positions.map(\.symbol) ?? [])
            names.formUnion(["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"])
            for symbol in names.sorted() {
                if let s = try? await trade.store.stats("symbol_stats:\(symbol)"), s.total > 0 {
                    symbols.append(.init(symbol: symbol, total: s.total, winRate: s.winRate, net: s.net))
                }
            }
            signals = ((try? await trade.store.recentSignals(limit: 10)) ?? []).map {
                .init(
                    signalId: $0.signalID, symbol: $0.symbol, direction: $0.direction, entry: $0.entry,
                    protectionScore: $0.protectionScore, riskLevel: $0.riskLevel, receivedAt: $0.receivedAt)
            }
        }
        let alerts = await recentAlerts(deps, source: nil, limit: 20)
        return Snapshot(
            at: now, health: health, nodes: nodes, positions: positions, stats: stats, symbols: symbols,
            signals: signals, alerts: alerts)
    }

    /// System alerts (`system_alerts`) and CITADEL alerts (`citadel:alerts`), newest first.
    static func recentAlerts(_ deps: DashboardDependencies, source: String?, limit: Int) async -> [Alert] {
        guard let redis = deps.redis else { return [] }
        var lists: [(String, String)] = []
        if source == nil || source == "system" { lists.append(("system", RedisKeys.systemAlerts)) }
        if source == nil || source == "citadel" { lists.append(("citadel", RedisKeys.citadelAlerts)) }
        guard let replies = try? await redis.pipeline(lists.map { ["LRANGE", $0.1, "0", String(limit - 1)] }) else {
            return []
        }
        var alerts: [Alert] = []
        for ((name, _), reply) in zip(lists, replies) {
            for item in reply.array ?? [] {
                guard let text = item.string,
                    let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                else { continue }
                let time = (object["timestamp"] as? Double) ?? (object["at"] as? Double) ?? 0
                alerts.append(
                    Alert(
                        source: name, kind: object["kind"] as? String ?? "unknown", symbol: object["symbol"] as? String,
                        uuid: object["uuid"] as? String,
                        message: (object["message"] as? String) ?? (object["reason"] as? String) ?? "",
                        timestamp: time))
            }
        }
        return Array(alerts.sorted { $0.timestamp > $1.timestamp }.prefix(limit))
    }

    static func add(to router: Router<BasicRequestContext>, _ deps: DashboardDependencies) {
        // The page itself is a file (`/` serves public/index.html, see DashboardApp); the old address leads there.
        router.get("/dashboard") { request, _ in
            let query = request.uri.query.map { "?" + $0 } ?? ""
            return Response(status: .found, headers: [.location: "/" + query])
        }
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        router.get("/snapshot") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(string: await snapshotText(deps))))
        }
        router.get("/alerts") { request, _ in
            let query = request.uri.queryParameters
            let source = query["source"].map(String.init)
            if let source, source != "system" && source != "citadel" {
                throw APIError(.badRequest, code: "bad_parameter", "source must be system or citadel")
            }
            let limit = try NodeRoutes.intParameter(
                query["limit"].map(String.init), name: "limit", default: 100, range: 1...1000)
            var alerts = await recentAlerts(deps, source: source, limit: limit)
            if let kind = query["kind"].map(String.init) { alerts = alerts.filter { $0.kind == kind } }
            if let symbol = query["symbol"].map(String.init) { alerts = alerts.filter { $0.symbol == symbol } }
            return try json(["alerts": alerts])
        }
        router.get("/events") { request, _ in
            let seconds = try NodeRoutes.intParameter(
                request.uri.queryParameters["interval"].map(String.init),
                name: "interval", default: 2, range: 1...60)
            let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody { writer in
                    // Reconnect after 3 s if the stream drops; the page falls back to polling if it cannot.
                    try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
                    while !Task.isCancelled {
                        let text = await snapshotText(deps)
                        try await writer.write(ByteBuffer(string: "event: snapshot\ndata: \(text)\n\n"))
                        try await Task.sleep(for: .seconds(seconds))
                    }
                    try await writer.finish(nil)
                })
        }
    }
}
