import BittenCore
import BittenServices
import Foundation
import Hummingbird

/// `/citadel`, `/citadel/score` and `/citadel/{symbol}`.
enum CitadelRoutes {
    static func add(to router: Router<BasicRequestContext>, _ deps: DashboardDependencies) {
        @Sendable func service() throws -> CitadelService {
            guard let citadel = deps.citadel else {
                throw APIError(.serviceUnavailable, code: "unavailable", "CITADEL is not running in this process")
            }
            return citadel
        }

        router.get("/citadel") { _, _ in
            let citadel = try service()
            let summary = citadel.summary
            return raw(
                .object([
                    "symbols": .array(summary.symbols.map { .string($0) }),
                    "ticks_seen": .number(Double(summary.ticks), isInteger: true),
                    "bars_seen": .number(Double(summary.bars), isInteger: true),
                    "signals_watched": .number(Double(summary.watched), isInteger: true),
                    "alerts": .array(citadel.recentAlerts(limit: 50).map(\.json)),
                ]))
        }

        router.get("/citadel/score") { request, _ in
            let citadel = try service()
            let q = request.uri.queryParameters
            var object: [String: JSONValue] = ["type": .string("protection_query")]
            guard let symbol = q["symbol"].map(String.init) else {
                throw APIError(.badRequest, code: "missing_parameter", "query parameter `symbol` is required")
            }
            object["symbol"] = .string(symbol)
            guard let entryText = q["entry"].map(String.init) else {
                throw APIError(.badRequest, code: "missing_parameter", "query parameter `entry` is required")
            }
            guard let entry = Double(entryText), entry.isFinite else {
                throw APIError(.badRequest, code: "bad_parameter", "`entry` must be a number, got '\(entryText)'")
            }
            object["entry"] = .number(entry, isInteger: false)
            if let direction = q["direction"] { object["direction"] = .string(String(direction)) }
            if let slText = q["sl"].map(String.init) {
                guard let sl = Double(slText), sl.isFinite else {
                    throw APIError(.badRequest, code: "bad_parameter", "`sl` must be a number, got '\(slText)'")
                }
                object["sl"] = .number(sl, isInteger: false)
            }
            do {
                guard
                    case .protection(let query) = try CitadelRequest.decode(
                        Array(JSONValue.object(object).serialized.utf8))
                else {
                    throw APIError(.badRequest, code: "bad_parameter", "not a protection query")
                }
                return raw(citadel.report(query).json)
            } catch let error as WireError {
                throw APIError(.badRequest, code: error.code.rawValue, error.description)
            }
        }

        router.get("/citadel/:symbol") { _, context in
            let citadel = try service()
            let symbol = context.parameters.get("symbol") ?? ""
            guard Symbol.isValid(symbol) else {
                throw APIError(.badRequest, code: "bad_parameter", "'\(symbol)' is not a valid symbol")
            }
            guard let snapshot = citadel.snapshot(symbol: symbol) else {
                throw APIError(.notFound, code: "unknown_symbol", "no market data for \(symbol) yet")
            }
            return raw(snapshot)
        }
    }

    /// A response from an already built JSON value.
    static func raw(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: value.serialized)))
    }
}
