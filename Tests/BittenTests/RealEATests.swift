import BittenCore
import BittenTestSupport
import EASimulator
import Foundation
import Testing

/// Bitten against the EA v2.05 as it is (the faithful simulator): each test here failed on the code
/// that trusted the EA we wished for.
extension EndToEnd.TradePathTests {
    func position(_ system: System, _ ticket: Int) async throws -> [String: Any] {
        try await HTTP.json(system.api + "/positions/\(ticket)").1
    }

    /// Waits until position `ticket` is closed; returns it.
    func closedPosition(_ system: System, _ ticket: Int) async throws -> [String: Any] {
        var closed: [String: Any] = [:]
        #expect(
            try await eventually {
                closed = try await position(system, ticket)
                return closed["status"] as? String == "closed"
            }, "\(system.bitten.logTail())")
        return closed
    }

    /// Fires `signalID` for `uuid` and waits for the fill; returns (fire id, ticket).
    func fireAndFill(_ system: System, _ signalID: String, _ uuid: String) async throws -> (String, Int) {
        let (status, body) = try await fire(system, signalID, uuid)
        #expect(status == 201, "\(body)")
        let fireID = try #require(body["fire_id"] as? String)
        var ticket = 0
        #expect(
            try await eventually {
                let (_, record) = try await HTTP.json(system.api + "/fires/\(fireID)")
                ticket = record["ticket"] as? Int ?? 0
                return record["state"] as? String == "filled"
            }, "\(system.bitten.logTail())")
        return (fireID, ticket)
    }

    /// The EA answers close_all ONCE with ticket 0: every open position of that account closes, each
    /// valued at the market, every slot freed.
    @Test func closeAllAnsweredWithTicketZeroClosesEveryPosition() async throws {
        let system = try await start(eas: 1)
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "LIEUTENANT")  // three slots
        try await postSignal(system, signal("SIG_CA0_1"))
        try await postSignal(system, signal("SIG_CA0_2", direction: "SELL", entry: 1.08520, sl: 1.08720, tp: 1.08120))
        try await postSignal(system, signal("SIG_CA0_3", symbol: "XAUUSD", entry: 2641.4, sl: 2631.4, tp: 2661.4))
        var tickets: [Int] = []
        for id in ["SIG_CA0_1", "SIG_CA0_2", "SIG_CA0_3"] { tickets.append(try await fireAndFill(system, id, uuid).1) }
        let (_, before) = try await HTTP.json(system.api + "/users/\(uuid)")
        #expect(before["slots_used"] as? Int == 3)
        let (status, body) = try await HTTP.sendJSON("POST", system.api + "/users/\(uuid)/close-all")
        #expect(status == 202, "\(body)")
        #expect(
            try await eventually {
                let (_, open) = try await HTTP.json(system.api + "/users/\(uuid)/positions")
                return (open["positions"] as? [Any])?.isEmpty == true
            }, "\(system.bitten.logTail())")
        for ticket in tickets {
            let closed = try await closedPosition(system, ticket)
            #expect(closed["close_reason"] as? String == "close_all", "\(closed)")
            #expect(closed["close_price_source"] as? String == "market", "\(closed)")
            #expect((closed["close_price"] as? Double ?? 0) > 1, "\(closed)")
        }
        let (_, after) = try await HTTP.json(system.api + "/users/\(uuid)")
        #expect(after["slots_used"] as? Int == 0)
        let (_, stats) = try await HTTP.json(system.api + "/stats/users/\(uuid)")
        #expect(stats["total"] as? Int == 3)
        // Three positions closed by one balance change: valued by price (the split is unknowable), and the
        // sum of the three is the broker's booking to within the quotes' age.
        let booked = try #require(system.fleet.ea(uuid)).balance - 10_000
        #expect(abs((stats["net"] as? Double ?? .nan) - booked) < 5, "net \(stats["net"] ?? "nil"), booked \(booked)")
        #expect(system.fleet.openTickets(uuid).isEmpty)
        let (_, trades) = try await HTTP.json(system.api + "/trades?account=70000000")
        #expect((trades["trades"] as? [[String: Any]])?.count == 3)
        #expect(
            (trades["trades"] as? [[String: Any]] ?? []).allSatisfy { $0["close_reason"] as? String == "close_all" })
    }

    /// The EA never reports a stop-loss hit. The market crossing the stop closes the position in Bitten
    /// (inferred, at the stop), frees the RECRUIT's only slot, and the user can trade again.
    @Test func stopLossHitIsInferredAndTheSlotComesBack() async throws {
        // The broker fills the stop 10 pips worse than the level: the inference stands, and the next heartbeat's
        // balance shows the difference, which is logged and counted.
        let system = try await start(eas: 1) { $0.stopSlippage = 0.0010 }
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "RECRUIT")
        let quote = try #require(system.fleet.quote("EURUSD"))
        let stop = ((quote.bid - 0.0010) * 100_000).rounded() / 100_000
        try await postSignal(system, signal("SIG_SL_1", entry: quote.ask, sl: stop, tp: quote.ask + 0.0040))
        let (_, ticket) = try await fireAndFill(system, "SIG_SL_1", uuid)
        let opened = try await position(system, ticket)
        let openPrice = try #require(opened["open_price"] as? Double)
        let lot = try #require(opened["lot"] as? Double)
        // One slot, in use.
        try await postSignal(system, signal("SIG_SL_2"))
        var (status, body) = try await fire(system, "SIG_SL_2", uuid)
        #expect(status == 409, "\(body)")

        // The watcher re-reads open positions every 2 s: a stop hit in real life comes long after the fill; here,
        // give it one refresh first.
        try await Task.sleep(for: .milliseconds(2500))
        system.fleet.setPrice("EURUSD", mid: stop - 0.0005)
        let closed = try await closedPosition(system, ticket)
        #expect(closed["close_reason"] as? String == "stop_loss", "\(closed)")
        #expect(closed["close_price_source"] as? String == "inferred", "\(closed)")
        #expect(closed["close_price"] as? Double == stop, "\(closed)")
        let expected = ((stop - openPrice) / 0.00001 * lot * 100).rounded() / 100
        #expect(abs((closed["profit"] as? Double ?? .nan) - expected) < 0.005, "\(closed)")
        // The simulated broker did close it there, and the EA said nothing.
        #expect(system.fleet.brokerCloses(uuid).map(\.ticket) == [ticket])
        #expect(system.fleet.openTickets(uuid).isEmpty)
        let (_, stats) = try await HTTP.json(system.api + "/stats/users/\(uuid)")
        #expect(stats["losses"] as? Int == 1)
        #expect(
            try await eventually {
                let (_, metrics) = try await HTTP.get(system.api + "/metrics")
                let line = String(decoding: metrics, as: UTF8.self).split(separator: "\n")
                    .first { $0.hasPrefix("bitten_inferred_close_balance_mismatch_total") }
                return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { $0 >= 1 } ?? false
            }, "the heartbeat balance after a slipped stop was not compared")
        // The slot is free again: the RECRUIT trades.
        system.fleet.setPrice("EURUSD", mid: 1.08520)
        try await Task.sleep(for: .milliseconds(500))
        (status, body) = try await fire(system, "SIG_SL_2", uuid)
        #expect(status == 201, "\(body)")
    }

    /// A position closed at the broker (by hand, unseen): `close_ticket` is answered `Position not
    /// found`, and Bitten closes it at the market instead of leaving it open for ever.
    @Test func positionNotFoundClosesItAtTheMarket() async throws {
        let system = try await start(eas: 1)
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "RECRUIT")
        try await postSignal(system, signal("SIG_NF_1"))
        let (_, ticket) = try await fireAndFill(system, "SIG_NF_1", uuid)
        #expect(system.fleet.closeAtBroker(uuid, ticket: ticket) != nil)
        let (status, body) = try await HTTP.sendJSON("POST", system.api + "/positions/\(ticket)/close")
        #expect(status == 202, "\(body)")
        let closed = try await closedPosition(system, ticket)
        #expect(closed["close_reason"] as? String == "closed_at_broker", "\(closed)")
        #expect(closed["close_price_source"] as? String == "market", "\(closed)")
        let (_, user) = try await HTTP.json(system.api + "/users/\(uuid)")
        #expect(user["slots_used"] as? Int == 0)
    }

    /// A stop on the wrong side of the fill price is dropped by the EA without a word: the position is
    /// recorded without it, nothing is inferred from it, and an alert says it runs unprotected.
    @Test func droppedStopIsRecordedAndAlerted() async throws {
        let system = try await start(eas: 1)
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "RECRUIT")
        // The signal's stop is below its entry, but the market has fallen below the stop.
        try await postSignal(system, signal("SIG_DROP_1", entry: 1.08520, sl: 1.08320, tp: 1.08920))
        system.fleet.setPrice("EURUSD", mid: 1.08100)
        try await Task.sleep(for: .milliseconds(500))
        let (_, ticket) = try await fireAndFill(system, "SIG_DROP_1", uuid)
        let opened = try await position(system, ticket)
        #expect(opened["sl_dropped"] as? Bool == true, "\(opened)")
        #expect(opened["sl"] as? Double == 0, "\(opened)")
        #expect(opened["tp_dropped"] as? Bool == false, "\(opened)")
        #expect(
            try await eventually {
                let (_, alerts) = try await HTTP.json(system.api + "/alerts?source=system")
                return (alerts["alerts"] as? [[String: Any]] ?? []).contains {
                    $0["kind"] as? String == "stop_dropped" && $0["uuid"] as? String == uuid
                }
            }, "\(system.bitten.logTail())")
        // Below the stop it would have had: still open (nothing is inferred from a dropped stop).
        try await Task.sleep(for: .seconds(1))
        #expect(try await position(system, ticket)["status"] as? String == "open")
    }

    /// Broker names round-trip: an `EURUSD` signal goes out as `EURUSD.r`, the trade and its statistics
    /// are `EURUSD`; a symbol the broker does not list is refused with its own code.
    @Test func suffixedSymbolsRoundTrip() async throws {
        let system = try await start(eas: 1) { config in
            config.symbolSuffix = ".r"
            config.brokerSymbols = ["XAUUSD": "GOLD"]
        }
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "CORPORAL")
        try await postSignal(system, signal("SIG_SFX_1"))
        try await postSignal(system, signal("SIG_SFX_2", symbol: "XAUUSD", entry: 2641.4, sl: 2631.4, tp: 2661.4))
        let (_, ticket) = try await fireAndFill(system, "SIG_SFX_1", uuid)
        _ = try await fireAndFill(system, "SIG_SFX_2", uuid)
        #expect(Set(system.fleet.receivedFires(for: uuid).map(\.symbol)) == ["EURUSD.r", "GOLD"])
        let opened = try await position(system, ticket)
        #expect(
            opened["symbol"] as? String == "EURUSD" && opened["broker_symbol"] as? String == "EURUSD.r", "\(opened)")
        // Prices and CITADEL speak canonical names.
        let (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
        let names = (node["broker_symbols"] as? [[String: String]] ?? []).reduce(into: [String: String]()) {
            $0[$1["symbol"] ?? ""] = $1["broker_symbol"]
        }
        #expect(names["EURUSD"] == "EURUSD.r" && names["XAUUSD"] == "GOLD", "\(node)")
        let (citadelStatus, _) = try await HTTP.json(system.api + "/citadel/EURUSD")
        #expect(citadelStatus == 200)
        let (closeStatus, closeBody) = try await HTTP.sendJSON("POST", system.api + "/positions/\(ticket)/close")
        #expect(closeStatus == 202, "\(closeBody)")
        #expect(
            try await eventually {
                let (_, stats) = try await HTTP.json(system.api + "/stats/symbols/EURUSD")
                return stats["total"] as? Int == 1
            }, "\(system.bitten.logTail())")
        let (_, suffixed) = try await HTTP.json(system.api + "/stats/symbols/EURUSD.r")
        #expect(suffixed["total"] as? Int ?? 0 == 0)
        // GBPUSD is not in this broker's Market Watch.
        try await postSignal(system, signal("SIG_SFX_3", symbol: "GBPUSD", entry: 1.26830, sl: 1.26630, tp: 1.27230))
        let (status, body) = try await fire(system, "SIG_SFX_3", uuid)
        #expect(status == 422 && code(body) == "symbol_not_at_broker", "\(body)")
        #expect(((body["error"] as? [String: Any])?["message"] as? String ?? "").contains("GBPUSD"), "\(body)")
    }

    /// GBPJPY on an EUR account with no EURJPY quote: the tick value goes JPY → USD → EUR through the
    /// USDJPY and EURUSD quotes the EAs send.
    @Test func crossPairOnAnEuroAccountIsSizedThroughUSD() async throws {
        let system = try await start(eas: 1) { config in
            config.currency = "EUR"
            config.symbols = ["GBPJPY"]
            config.marketWatch = ["EURUSD", "USDJPY"]
        }
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "RECRUIT")
        let gbpjpy = try #require(system.fleet.quote("GBPJPY"))
        let entry = (gbpjpy.ask * 1000).rounded() / 1000
        try await postSignal(
            system, signal("SIG_XJPY_1", symbol: "GBPJPY", entry: entry, sl: entry - 0.400, tp: entry + 0.800))
        // Until the first TICKs of USDJPY and EURUSD are in, there is no chain: refused, nothing reserved.
        var (status, body) = try await fire(system, "SIG_XJPY_1", uuid)
        if status == 422 {
            #expect(code(body) == "sizing_failed", "\(body)")
            try await Task.sleep(for: .seconds(1))
            (status, body) = try await fire(system, "SIG_XJPY_1", uuid)
        }
        #expect(status == 201, "\(body)")
        let fireID = try #require(body["fire_id"] as? String)
        let (_, record) = try await HTTP.json(system.api + "/fires/\(fireID)")
        #expect(record["conversion"] as? String == "JPY>USD>EUR", "\(record)")
        let usdjpy = try #require(system.fleet.quote("USDJPY"))
        let eurusd = try #require(system.fleet.quote("EURUSD"))
        // 0.001 × 100 000 = 100 JPY a tick, in EUR through USD.
        let tickValue = 100 / ((usdjpy.bid + usdjpy.ask) / 2) / ((eurusd.bid + eurusd.ask) / 2)
        #expect(abs((record["tick_value"] as? Double ?? 0) - tickValue) / tickValue < 0.01, "\(record)")
        let risk = try #require(body["risk_percent"] as? Double)
        let lot = ((10_000 * risk / 100 / (400 * tickValue)) / 0.01).rounded(.down) * 0.01
        #expect(abs((body["lot"] as? Double ?? 0) - lot) <= 0.011, "\(body)")
    }

    /// A quiet chart symbol: the EA reads no command, so pings must not pile up ahead of the next fire.
    /// At most one is outstanding; past the fire timeout the node is marked `commands_unread`.
    @Test func silentEACollectsAtMostOnePing() async throws {
        let system = try await start(eas: 1, environment: ["BITTEN_PING_INTERVAL": "1"])
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        // Answered pings: a latency, one command at a time.
        #expect(
            try await eventually {
                let (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
                return node["latency_ms"] as? Double != nil
            }, "\(system.bitten.logTail())")
        system.fleet.quiet([uuid])
        try await Task.sleep(for: .seconds(5))
        #expect(system.fleet.unreadCommands(uuid) <= 1, "\(system.fleet.unreadCommands(uuid)) commands waiting")
        var node: [String: Any] = [:]
        #expect(
            try await eventually {
                (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
                return node["commands_unread"] as? Bool == true
            }, "\(node)")
        #expect(
            try await eventually {
                let (_, alerts) = try await HTTP.json(system.api + "/alerts?source=system")
                return (alerts["alerts"] as? [[String: Any]] ?? []).filter {
                    $0["kind"] as? String == "commands_unread"
                }.count == 1
            })
        #expect(system.fleet.unreadCommands(uuid) <= 1)
        // The chart ticks again: the one ping is answered, and a fire is the next command read.
        try await addUser(system, uuid, tier: "RECRUIT")
        try await postSignal(system, signal("SIG_QUIET_1"))
        let (status, body) = try await fire(system, "SIG_QUIET_1", uuid)
        #expect(status == 201, "\(body)")
        system.fleet.quiet([uuid], false)
        #expect(
            try await eventually {
                let (_, record) = try await HTTP.json(system.api + "/fires/\(body["fire_id"] as? String ?? "")")
                return record["state"] as? String == "filled"
            })
        #expect(
            try await eventually {
                (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
                return node["commands_unread"] as? Bool == false
            })
        let read = system.fleet.commandsRead(by: uuid).suffix(3)
        #expect(read.filter { $0.contains(#""type":"fire""#) }.count == 1, "\(read)")
    }
}
