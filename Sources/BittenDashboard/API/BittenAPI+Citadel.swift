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
        let symbol = try Self.validSymbol(query.symbol)
        for (name, price) in [("entry", query.entry), ("sl", query.sl ?? 1)] {
            guard price.isFinite, price > 0, price <= 10_000_000 else {
                throw APIError(.badRequest, code: "bad_parameter", "\(name) must be a price in (0, 10000000]")
            }
        }
        let direction = query.direction.map { $0 == .buy ? Direction.buy : Direction.sell }
        // As over ZeroMQ: a stop on the losing side of the entry, or no score (a well-formed query refused on its
        // meaning).
        if let sl = query.sl, let direction, direction == .buy ? sl >= query.entry : sl <= query.entry {
            throw APIError(
                .unprocessableContent, code: "stop_loss_wrong_side",
                "stop \(sl) is on the wrong side of the entry \(query.entry) for \(direction.rawValue)")
        }
        let protection = ProtectionQuery(symbol: symbol, direction: direction, entry: query.entry, stopLoss: query.sl)
        return .ok(.init(body: .json(try Contract.convert(json: citadel.report(protection).json))))
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
