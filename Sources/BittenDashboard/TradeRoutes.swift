import BittenCore
import BittenServices
import Foundation
import Hummingbird

/// What the trade routes need; nil in a process that does not run the trade path.
public struct TradeDependencies: Sendable {
    public var store: TradeStore
    public var desk: FireDesk
    public var intake: SignalIntake?
    public var tracker: PositionTracker

    public init(store: TradeStore, desk: FireDesk, intake: SignalIntake?, tracker: PositionTracker) {
        self.store = store
        self.desk = desk
        self.intake = intake
        self.tracker = tracker
    }
}

/// Users, signals, fire, close, positions, trades and statistics.
enum TradeRoutes {
    static let maxBody = 64 * 1024

    struct UserView: Encodable {
        var uuid: String
        var tier: String
        var displayName: String
        var riskOverride: Double?
        var createdAt: Double
        var slots: Int
        var slotsUsed: Int
        var maxRiskPercent: Double
    }

    static func add(to router: Router<BasicRequestContext>, _ deps: DashboardDependencies) {
        @Sendable func trade() throws -> TradeDependencies {
            guard let trade = deps.trade else {
                let reason = deps.notRunning["trade"].map { ": \($0)" } ?? ""
                throw APIError(
                    .serviceUnavailable, code: "unavailable", "the trade path is not running in this process\(reason)")
            }
            return trade
        }
        @Sendable func authorize(_ request: Request) throws { try BearerToken.require(request, deps.apiToken) }
        @Sendable func body(_ request: Request) async throws -> [UInt8] {
            if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
                throw APIError(
                    .unsupportedMediaType, code: "unsupported_media_type", "send application/json, not \(type)")
            }
            do {
                let buffer = try await request.body.collect(upTo: maxBody)
                return Array(buffer.readableBytesView)
            } catch {
                throw APIError(.contentTooLarge, code: "body_too_large", "request body exceeds \(maxBody) bytes")
            }
        }
        @Sendable func fields(_ bytes: [UInt8]) throws -> FieldReader {
            do {
                return try FieldReader(parsing: bytes, maxBytes: maxBody)
            } catch {
                throw APIError(.badRequest, code: "bad_json", "\(error)")
            }
        }
        @Sendable func wire<T>(_ body: () throws(WireError) -> T) throws -> T {
            do { return try body() } catch { throw APIError(.badRequest, code: "bad_field", error.description) }
        }
        @Sendable func refusal(_ error: FireRefusal) -> APIError {
            APIError(HTTPResponse.Status(code: error.httpStatus), code: error.code.rawValue, error.message)
        }
        @Sendable func userView(_ user: UserRecord, _ trade: TradeDependencies) async throws -> UserView {
            let rule = trade.desk.tradeSettings.tiers.rule(user.tier)
            return UserView(
                uuid: user.uuid, tier: user.tier.rawValue, displayName: user.displayName,
                riskOverride: user.riskOverride, createdAt: user.createdAt, slots: rule.slots,
                slotsUsed: try await trade.store.slotsUsed(user.uuid), maxRiskPercent: rule.maxRiskPercent)
        }
        @Sendable func uuidParameter(_ context: BasicRequestContext) throws -> String {
            let uuid = context.parameters.get("uuid") ?? ""
            guard UserID.isValid(uuid) else {
                throw APIError(.badRequest, code: "bad_parameter", "'\(uuid)' is not a valid UUID")
            }
            return uuid
        }
        @Sendable func ticketParameter(_ context: BasicRequestContext) throws -> Int {
            guard let ticket = context.parameters.get("ticket").flatMap({ Int($0) }), ticket > 0 else {
                throw APIError(.badRequest, code: "bad_parameter", "ticket must be a positive integer")
            }
            return ticket
        }
        @Sendable func limit(_ request: Request) throws -> Int {
            try NodeRoutes.intParameter(
                request.uri.queryParameters["limit"].map(String.init), name: "limit", default: 100, range: 1...1000)
        }
        @Sendable func tierAndRisk(_ r: FieldReader) throws -> (Tier?, Double?, String?) {
            let tier = try wire { () throws(WireError) -> Tier? in
                guard let name = try r.optionalString("tier", maxLength: 16) else { return nil }
                guard let tier = Tier(name: name) else {
                    throw WireError(
                        .outOfRange, field: "tier",
                        "'\(name)' is not a tier (\(Tier.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return tier
            }
            let risk = try wire { () throws(WireError) -> Double? in
                guard let value = try r.optionalDouble("risk_override") else { return nil }
                guard value > 0, value <= 10 else {
                    throw WireError(.outOfRange, field: "risk_override", "must be 0-10 percent")
                }
                return value
            }
            let name = try wire { () throws(WireError) -> String? in try r.optionalString("display_name", maxLength: 64)
            }
            return (tier, risk, name)
        }

        // Users
        router.post("/users") { request, _ in
            try authorize(request)
            let trade = try trade()
            let r = try fields(try await body(request))
            let uuid = try wire { () throws(WireError) -> String in try r.uuid("uuid") }
            let (tier, risk, name) = try tierAndRisk(r)
            if try await trade.store.user(uuid) != nil {
                throw APIError(.conflict, code: "user_exists", "user \(uuid) exists; PUT /users/\(uuid) changes it")
            }
            let user = UserRecord(
                uuid: uuid, tier: tier ?? .recruit, displayName: name ?? uuid, riskOverride: risk,
                createdAt: Date().timeIntervalSince1970)
            try await trade.store.save(user)
            return try json(try await userView(user, trade), status: .created)
        }
        router.put("/users/:uuid") { request, context in
            try authorize(request)
            let trade = try trade()
            let uuid = try uuidParameter(context)
            guard var user = try await trade.store.user(uuid) else {
                throw APIError(.notFound, code: "user_not_found", "no user \(uuid)")
            }
            let r = try fields(try await body(request))
            let (tier, risk, name) = try tierAndRisk(r)
            if let tier { user.tier = tier }
            if let name { user.displayName = name }
            if r["risk_override"] == .null { user.riskOverride = nil } else if let risk { user.riskOverride = risk }
            try await trade.store.save(user)
            return try json(try await userView(user, trade))
        }
        router.get("/users") { _, _ in
            let trade = try trade()
            var views: [UserView] = []
            for user in try await trade.store.users() { views.append(try await userView(user, trade)) }
            return try json(["users": views])
        }
        router.get("/users/:uuid") { _, context in
            let trade = try trade()
            let uuid = try uuidParameter(context)
            guard let user = try await trade.store.user(uuid) else {
                throw APIError(.notFound, code: "user_not_found", "no user \(uuid)")
            }
            return try json(try await userView(user, trade))
        }

        // Signals
        router.post("/signals") { request, _ in
            try authorize(request)
            guard let intake = try trade().intake else {
                throw APIError(.serviceUnavailable, code: "unavailable", "signal intake is not running in this process")
            }
            do {
                return try json(try await intake.submit(try await body(request)), status: .created)
            } catch let error as SignalRejection {
                throw APIError(HTTPResponse.Status(code: error.httpStatus), code: error.code.rawValue, error.message)
            }
        }
        router.get("/signals") { request, _ in
            try json(["signals": try await trade().store.recentSignals(limit: try limit(request))])
        }
        router.get("/signals/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard SignalID.isValid(id) else {
                throw APIError(.badRequest, code: "bad_parameter", "'\(id)' is not a valid signal id")
            }
            guard let signal = try await trade().store.signal(id) else {
                throw APIError(.notFound, code: "signal_not_found", "no signal \(id)")
            }
            return try json(signal)
        }

        // Fire and close
        router.post("/fire/:signal_id") { request, context in
            try authorize(request)
            let trade = try trade()
            var uuid = request.uri.queryParameters["user"].map(String.init)
            if uuid == nil {
                let r = try fields(try await body(request))
                uuid = try wire { () throws(WireError) -> String in try r.string("user_uuid", maxLength: 64) }
            }
            do {
                let record = try await trade.desk.fire(
                    signalID: context.parameters.get("signal_id") ?? "", userUUID: uuid ?? "")
                return try json(record, status: record.duplicate ? .ok : .created)
            } catch let error as FireRefusal {
                throw refusal(error)
            }
        }
        router.get("/fires") { request, _ in
            try json(["fires": try await trade().store.recentFires(limit: try limit(request))])
        }
        router.get("/fires/:fire_id") { _, context in
            let id = context.parameters.get("fire_id") ?? ""
            guard SignalID.isValid(id) else {
                throw APIError(.badRequest, code: "bad_parameter", "'\(id)' is not a valid fire id")
            }
            guard let record = try await trade().store.fire(id) else {
                throw APIError(.notFound, code: "fire_not_found", "no fire \(id)")
            }
            return try json(record)
        }
        router.post("/positions/:ticket/close") { request, context in
            try authorize(request)
            do {
                return try json(try await trade().desk.close(ticket: try ticketParameter(context)), status: .accepted)
            } catch let error as FireRefusal {
                throw refusal(error)
            }
        }
        router.post("/users/:uuid/close-all") { request, context in
            try authorize(request)
            do {
                return try json(
                    ["closes": try await trade().desk.closeAll(userUUID: try uuidParameter(context))], status: .accepted
                )
            } catch let error as FireRefusal {
                throw refusal(error)
            }
        }

        // Positions, trades, statistics
        router.get("/positions") { _, _ in try json(try await trade().tracker.snapshot()) }
        router.get("/positions/:ticket") { _, context in
            let ticket = try ticketParameter(context)
            guard let position = try await trade().store.position(ticket) else {
                throw APIError(.notFound, code: "position_not_found", "no position \(ticket)")
            }
            if position.status == "open",
                let priced = try await trade().tracker.snapshot(user: position.userUUID).positions.first(where: {
                    $0.ticket == ticket
                })
            {
                return try json(priced)
            }
            return try json(position)
        }
        router.get("/users/:uuid/positions") { _, context in
            try json(try await trade().tracker.snapshot(user: try uuidParameter(context)))
        }
        router.get("/trades") { request, _ in
            let query = request.uri.queryParameters
            var list = "trades:recent"
            if let symbol = query["symbol"].map(String.init) {
                guard Symbol.isValid(symbol) else {
                    throw APIError(.badRequest, code: "bad_parameter", "'\(symbol)' is not a symbol")
                }
                list = "trades:\(symbol)"
            } else if let account = query["account"].map(String.init) {
                guard Int(account) != nil else {
                    throw APIError(.badRequest, code: "bad_parameter", "account must be a number")
                }
                list = "trades:account:\(account)"
            } else if let day = query["day"].map(String.init) {
                guard day.count == 10, ISOTime.epochSeconds(day + "T00:00:00") != nil else {
                    throw APIError(.badRequest, code: "bad_parameter", "day must be YYYY-MM-DD")
                }
                list = "trades:day:\(day)"
            }
            let trades = try await trade().store.trades(list: list, limit: try limit(request))
            return CitadelRoutes.raw(.object(["trades": .array(trades.map(typedTrade))]))
        }
        router.get("/stats") { _, _ in try json(try await trade().store.stats("global_trade_stats")) }
        router.get("/stats/symbols/:symbol") { _, context in
            let symbol = context.parameters.get("symbol") ?? ""
            guard Symbol.isValid(symbol) else {
                throw APIError(.badRequest, code: "bad_parameter", "'\(symbol)' is not a symbol")
            }
            return try json(try await trade().store.stats("symbol_stats:\(symbol)"))
        }
        router.get("/stats/accounts/:account") { _, context in
            guard let account = context.parameters.get("account").flatMap({ Int($0) }) else {
                throw APIError(.badRequest, code: "bad_parameter", "account must be a number")
            }
            return try json(try await trade().store.stats("account_stats_trades:\(account)"))
        }
        router.get("/stats/users/:uuid") { _, context in
            try json(try await trade().store.stats("user_stats:\(try uuidParameter(context))"))
        }
    }
}

/// The fields of a closed trade (`trade:{ticket}`).
let tradeFields: Set<String> = [
    "ticket", "fire_id", "signal_id", "user_uuid", "account", "symbol", "direction", "lot", "open_price", "close_price",
    "sl", "tp", "open_time", "close_time", "duration", "profit", "result", "broker_symbol", "close_price_source",
    "close_reason", "profit_source", "profit_by_price", "profit_by_balance", "sl_dropped", "tp_dropped",
]

/// A closed trade as stored (all strings in Redis) with its numbers as JSON numbers.
func typedTrade(_ fields: [String: String]) -> JSONValue {
    let integers: Set<String> = ["ticket", "account"]
    let numbers: Set<String> = [
        "open_price", "close_price", "profit", "lot", "sl", "tp", "duration", "open_time", "close_time",
        "profit_by_price", "profit_by_balance",
    ]
    var object: [String: JSONValue] = [:]
    // The record is a copy of the closed position: only the trade's own fields are shown.
    for (key, value) in fields where tradeFields.contains(key) && !value.isEmpty {
        if integers.contains(key), let number = Int(value) {
            object[key] = .number(Double(number), isInteger: true)
        } else if numbers.contains(key), let number = Double(value), number.isFinite {
            object[key] = .number(number, isInteger: false)
        } else {
            object[key] = .string(value)
        }
    }
    return .object(object)
}

/// Bearer-token check in constant time (no early exit on the first differing byte).
enum BearerToken {
    /// Throws 401 unless `request` carries `token` (nothing to check when no token is configured).
    static func require(_ request: Request, _ token: String?) throws {
        guard let token, !token.isEmpty else { return }
        guard matches(request.headers[.authorization] ?? "", token) else {
            throw APIError(
                .unauthorized, code: "unauthorized", "this call needs Authorization: Bearer <BITTEN_API_TOKEN>")
        }
    }

    static func matches(_ header: String, _ token: String) -> Bool {
        let prefix = "Bearer "
        guard header.hasPrefix(prefix) else { return false }
        let given = Array(header.utf8.dropFirst(prefix.utf8.count))
        let wanted = Array(token.utf8)
        var difference = UInt8(given.count == wanted.count ? 0 : 1)
        for index in 0..<wanted.count {
            difference |= wanted[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}

extension FireRefusal {
    /// The HTTP status of each refusal (the HTTP adapter's mapping; the domain only names the reason).
    var httpStatus: Int {
        switch code {
        case .badRequest, .stopLossWrongSide, .unknownInstrument, .sizing, .symbolNotAtBroker: 422
        case .signalNotFound, .userNotFound, .positionNotFound: 404
        case .signalExpired: 410
        case .eaOffline, .noFreeSlot, .sendFailed, .pendingSwitch: 409
        case .storeUnavailable: 503
        }
    }
}
