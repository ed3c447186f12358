import BittenCore
import BittenServices

/// `/citadel`, `/citadel/score` and `/citadel/{symbol}`.
extension BittenAPI {
    func citadel() throws -> any MarketScores {
        guard let citadel = ports.citadel else {
            throw APIError(.serviceUnavailable, code: "unavailable", "CITADEL is not running in this process")
        }
        return citadel
    }

    func getCitadel(_ input: Operations.GetCitadel.Input) async throws -> Operations.GetCitadel.Output {
        let citadel = try citadel()
        let summary = citadel.summary
        let body: JSONValue = .object([
            "symbols": .array(summary.symbols.map { .string($0) }),
            "ticks_seen": .number(Double(summary.ticks), isInteger: true),
            "bars_seen": .number(Double(summary.bars), isInteger: true),
            "signals_watched": .number(Double(summary.watched), isInteger: true),
            "alerts": .array(citadel.recentAlerts(limit: 50).map(\.json)),
        ])
        return .ok(.init(body: .json(try Contract.convert(json: body))))
    }

    func scoreEntry(_ input: Operations.ScoreEntry.Input) async throws -> Operations.ScoreEntry.Output {
        let citadel = try citadel()
        let query = input.query
        // CITADEL's own query decoder makes the checks (symbol, prices, direction), as for a query over ZeroMQ.
        var object: [String: JSONValue] = [
            "type": .string("protection_query"), "symbol": .string(try Self.validSymbol(query.symbol)),
            "entry": .number(query.entry, isInteger: false),
        ]
        if let direction = query.direction { object["direction"] = .string(direction.rawValue) }
        if let sl = query.sl { object["sl"] = .number(sl, isInteger: false) }
        do {
            guard
                case .protection(let protection) = try CitadelRequest.decode(
                    Array(JSONValue.object(object).serialized.utf8))
            else {
                throw APIError(.badRequest, code: "bad_parameter", "not a protection query")
            }
            return .ok(.init(body: .json(try Contract.convert(json: citadel.report(protection).json))))
        } catch let error as WireError {
            throw APIError(.badRequest, code: error.code.rawValue, error.description)
        }
    }

    func getCitadelSymbol(_ input: Operations.GetCitadelSymbol.Input) async throws
        -> Operations.GetCitadelSymbol.Output
    {
        let citadel = try citadel()
        let symbol = try Self.validSymbol(input.path.symbol)
        guard let snapshot = citadel.snapshot(symbol: symbol) else {
            throw APIError(.notFound, code: "unknown_symbol", "no market data for \(symbol) yet")
        }
        return .ok(.init(body: .json(try Contract.convert(json: snapshot))))
    }
}
