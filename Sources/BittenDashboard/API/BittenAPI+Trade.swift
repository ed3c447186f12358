import BittenCore
import BittenServices
import Foundation
import OpenAPIRuntime

/// Signals, fire and close, positions, trades and statistics.
extension BittenAPI {
    func trade() throws -> any TradeDesk {
        guard let trade = ports.trade else {
            let reason = ports.notRunning["trade"].map { ": \($0)" } ?? ""
            throw APIError(
                .serviceUnavailable, code: "unavailable", "the trade path is not running in this process\(reason)")
        }
        return trade
    }

    // MARK: signals

    func listSignals(_ input: Operations.ListSignals.Input) async throws -> Operations.ListSignals.Output {
        let page = try Page(limit: input.query.limit, offset: input.query.offset)
        let signals = page.cut(try await trade().recentSignals(limit: page.end))
        return .ok(
            .init(
                body: .json(
                    .init(limit: page.limit, offset: page.offset, signals: try Contract.convert(signals))
                )))
    }

    func submitSignal(_ input: Operations.SubmitSignal.Input) async throws -> Operations.SubmitSignal.Output {
        guard case .json(let submission) = input.body else { preconditionFailure("the only body is JSON") }
        try Self.check(submission)
        // The intake validates and keeps every field as received: it reads the JSON object (the generated type
        // encodes its fields under their names in the document, and every other field as it came).
        let bytes = Array(try JSONEncoder().encode(submission))
        do {
            return .created(.init(body: .json(try Contract.convert(try await trade().submitSignal(bytes)))))
        } catch let error as SignalRejection {
            throw APIError(error)
        }
    }

    func getSignal(_ input: Operations.GetSignal.Input) async throws -> Operations.GetSignal.Output {
        let id = try Self.validRecordID(input.path.id, "signal")
        guard let signal = try await trade().signal(id) else {
            throw APIError(.notFound, code: "signal_not_found", "no signal \(id)")
        }
        return .ok(.init(body: .json(try Contract.convert(signal))))
    }

    // MARK: fire and close

    func fireSignal(_ input: Operations.FireSignal.Input) async throws -> Operations.FireSignal.Output {
        var user = input.query.user
        if user == nil, case .json(let body)? = input.body { user = body.userUuid }
        guard let user else {
            throw APIError(
                .unprocessableContent, code: "missing_user", "name the user: {\"user_uuid\": …} or ?user=")
        }
        let signalID = try Self.validRecordID(input.path.signalId, "signal")
        do {
            let record = try await trade().fire(signalID: signalID, userUUID: try Self.validUUID(user))
            let fire = try Contract.fire(record)
            return record.duplicate ? .ok(.init(body: .json(fire))) : .created(.init(body: .json(fire)))
        } catch let refusal as FireRefusal {
            throw APIError(refusal)
        }
    }

    func listFires(_ input: Operations.ListFires.Input) async throws -> Operations.ListFires.Output {
        let page = try Page(limit: input.query.limit, offset: input.query.offset)
        let fires = page.cut(try await trade().recentFires(limit: page.end))
        return .ok(
            .init(
                body: .json(
                    .init(limit: page.limit, offset: page.offset, fires: try Contract.fires(fires)))))
    }

    func getFire(_ input: Operations.GetFire.Input) async throws -> Operations.GetFire.Output {
        let id = try Self.validRecordID(input.path.fireId, "fire")
        guard let record = try await trade().fireRecord(id) else {
            throw APIError(.notFound, code: "fire_not_found", "no fire \(id)")
        }
        return .ok(.init(body: .json(try Contract.fire(record))))
    }

    func closePosition(_ input: Operations.ClosePosition.Input) async throws -> Operations.ClosePosition.Output {
        do {
            let record = try await trade().close(ticket: try Self.validTicket(input.path.ticket))
            return .accepted(.init(body: .json(try Contract.fire(record))))
        } catch let refusal as FireRefusal {
            throw APIError(refusal)
        }
    }

    func closeAllPositions(_ input: Operations.CloseAllPositions.Input) async throws
        -> Operations.CloseAllPositions.Output
    {
        do {
            let records = try await trade().closeAll(userUUID: try Self.validUUID(input.path.uuid))
            return .accepted(.init(body: .json(.init(closes: try Contract.fires(records)))))
        } catch let refusal as FireRefusal {
            throw APIError(refusal)
        }
    }

    // MARK: positions, trades, statistics

    func listPositions(_ input: Operations.ListPositions.Input) async throws -> Operations.ListPositions.Output {
        .ok(.init(body: .json(try Contract.convert(try await trade().openPositions(user: nil)))))
    }

    func listUserPositions(_ input: Operations.ListUserPositions.Input) async throws
        -> Operations.ListUserPositions.Output
    {
        let uuid = try Self.validUUID(input.path.uuid)
        return .ok(.init(body: .json(try Contract.convert(try await trade().openPositions(user: uuid)))))
    }

    func getPosition(_ input: Operations.GetPosition.Input) async throws -> Operations.GetPosition.Output {
        let ticket = try Self.validTicket(input.path.ticket)
        let trade = try trade()
        guard let position = try await trade.position(ticket) else {
            throw APIError(.notFound, code: "position_not_found", "no position \(ticket)")
        }
        // An open position with its live P&L.
        if position.status == "open",
            let priced = try await trade.openPositions(user: position.userUUID).positions.first(where: {
                $0.ticket == ticket
            })
        {
            return .ok(.init(body: .json(try Contract.convert(priced))))
        }
        return .ok(.init(body: .json(try Contract.convert(position))))
    }

    func listTrades(_ input: Operations.ListTrades.Input) async throws -> Operations.ListTrades.Output {
        let query = input.query
        let page = try Page(limit: query.limit, offset: query.offset)
        // Every parameter given is checked, also those the list chosen does not use (symbol, then account, then day).
        let symbol = try query.symbol.map(Self.validSymbol)
        if let account = query.account, account < 0 {
            throw APIError(.badRequest, code: "bad_parameter", "account must be a non-negative number")
        }
        if let day = query.day {
            guard day.utf8.count == 10, day.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) }),
                day.split(separator: "-").map(\.count) == [4, 2, 2]
            else {
                throw APIError(.badRequest, code: "bad_parameter", "day must be YYYY-MM-DD")
            }
            // The document's pattern cannot say which days a month has: a well-formed day no calendar has is 422.
            guard ISOTime.epochSeconds(day + "T00:00:00") != nil else {
                throw APIError(.unprocessableContent, code: "no_such_day", "\(day) is not a day of the calendar")
            }
        }
        var list = "trades:recent"
        if let symbol {
            list = "trades:\(symbol)"
        } else if let account = query.account {
            list = "trades:account:\(account)"
        } else if let day = query.day {
            list = "trades:day:\(day)"
        }
        let trades = page.cut(try await trade().trades(list: list, limit: page.end))
        let body: JSONValue = .object([
            "limit": .number(Double(page.limit), isInteger: true),
            "offset": .number(Double(page.offset), isInteger: true), "trades": .array(trades.map(typedTrade)),
        ])
        return .ok(.init(body: .json(try Contract.convert(json: body))))
    }

    func getStats(_ input: Operations.GetStats.Input) async throws -> Operations.GetStats.Output {
        .ok(.init(body: .json(try Contract.convert(try await trade().stats("global_trade_stats")))))
    }

    func getSymbolStats(_ input: Operations.GetSymbolStats.Input) async throws -> Operations.GetSymbolStats.Output {
        let symbol = try Self.validSymbol(input.path.symbol)
        return .ok(.init(body: .json(try Contract.convert(try await trade().stats("symbol_stats:\(symbol)")))))
    }

    func getAccountStats(_ input: Operations.GetAccountStats.Input) async throws -> Operations.GetAccountStats.Output {
        let account = input.path.account
        guard account >= 0 else {
            throw APIError(.badRequest, code: "bad_parameter", "account must be a non-negative number")
        }
        return .ok(.init(body: .json(try Contract.convert(try await trade().stats("account_stats_trades:\(account)")))))
    }

    func getUserStats(_ input: Operations.GetUserStats.Input) async throws -> Operations.GetUserStats.Output {
        let uuid = try Self.validUUID(input.path.uuid)
        return .ok(.init(body: .json(try Contract.convert(try await trade().stats("user_stats:\(uuid)")))))
    }

    // MARK: checks the generated code does not make (it checks types; patterns and ranges are checked here)

    static func validRecordID(_ text: String, _ what: String) throws -> String {
        guard SignalID.isValid(text) else {
            throw APIError(.badRequest, code: "bad_parameter", "'\(text)' is not a valid \(what) id")
        }
        return text
    }

    static func validSymbol(_ text: String) throws -> String {
        guard Symbol.isValid(text) else {
            throw APIError(.badRequest, code: "bad_parameter", "'\(text)' is not a symbol")
        }
        return text
    }

    /// The constraints of the document the generated code does not check (patterns, ranges, lengths): a body that
    /// breaks one is a 400, as one of the wrong type is.
    static func check(_ signal: Components.Schemas.SignalSubmission) throws {
        func bad(_ field: String, _ rule: String) -> APIError {
            APIError(.badRequest, code: "bad_field", "\(field) \(rule)")
        }
        _ = try validRecordID(signal.signalId, "signal")
        for (field, value) in [("symbol", signal.symbol), ("pair", signal.pair)] {
            if let value, !Symbol.isValid(value) { throw bad(field, "'\(value)' is not a symbol") }
        }
        for (field, value) in [("direction", signal.direction), ("side", signal.side)] {
            if let value,
                Direction(rawValue: value.uppercased()) == nil
                    || value.uppercased() != value && value.lowercased() != value
            {
                throw bad(field, "must be BUY or SELL")
            }
        }
        let prices = [
            ("entry_price", signal.entryPrice), ("entry", signal.entry), ("stop_loss", signal.stopLoss),
            ("sl", signal.sl), ("take_profit", signal.takeProfit), ("tp", signal.tp),
        ]
        for (field, value) in prices {
            if let value, !(value > 0 && value <= 10_000_000) { throw bad(field, "must be a price in (0, 10000000]") }
        }
        if let confidence = signal.confidence, !(0...100).contains(confidence) {
            throw bad("confidence", "must be 0-100")
        }
        let lengths = [
            ("expires_at", signal.expiresAt, 40), ("pattern", signal.pattern, 64), ("timeframe", signal.timeframe, 8),
            ("source", signal.source, 64),
        ]
        for (field, value, limit) in lengths where (value?.count ?? 0) > limit {
            throw bad(field, "is longer than \(limit) characters")
        }
    }

    /// A free-text parameter within the length the document gives it.
    static func bounded(_ text: String?, _ name: String, max: Int) throws -> String? {
        guard let text else { return nil }
        guard text.count <= max else {
            throw APIError(.badRequest, code: "bad_parameter", "\(name) is longer than \(max) characters")
        }
        return text
    }

    static func validTicket(_ ticket: Int64) throws -> Int {
        guard ticket > 0, let number = Int(exactly: ticket) else {
            throw APIError(.badRequest, code: "bad_parameter", "ticket must be a positive integer")
        }
        return number
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
