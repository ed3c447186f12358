import BittenCore
import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

/// The trade engine applying the confirmation ledger: statistics, valuation, replay, orphans, against real Redis.
@Suite("Confirmation ledger through the trade engine against real Redis")
struct ConfirmationLedgerTests {
    /// Twenty trades, P&L in USD (1 lot EURUSD BUY from 1.10000: one tick is 1 USD).
    static let profits: [Int] = [25, -10, 40, 15, -30, -20, -5, 60, 10, -15, 35, -25, 50, 5, -40, 20, 30, -10, 45, -5]

    /// Read back from the stream by the engine's reader, and handed over by the writer of the same process.
    @Test(arguments: [false, true])
    func twentyTradesGiveTheHandComputedStatistics(handOver: Bool) async throws {
        let ledger = try await LedgerHarness.start(handOver: handOver)
        defer { ledger.server.stop() }
        let uuid = "user_stats_01"
        _ = try await ledger.openPositions(uuid, count: 20)
        #expect(try await ledger.store.slotsUsed(uuid) == 20)
        try ledger.appendCloses(uuid, profits: Self.profits)
        try await ledger.settle(uuid)
        for key in ["global_trade_stats", "symbol_stats:EURUSD", "account_stats_trades:55501", "user_stats:\(uuid)"] {
            let stats = try await ledger.store.stats(key)
            // By hand: 11 wins (335 USD), 9 losses (160 USD).
            #expect(stats.total == 20, "\(key)")
            #expect(stats.wins == 11)
            #expect(stats.losses == 9)
            #expect(stats.winRate == 55.0)
            #expect(stats.grossProfit == 335.0)
            #expect(stats.grossLoss == 160.0)
            #expect(stats.net == 175.0)
            #expect(abs((stats.profitFactor ?? 0) - 2.09375) < 0.0001)
            #expect(stats.averageWin == 30.45)  // 335 / 11
            #expect(stats.averageLoss == 17.78)  // 160 / 9
            #expect(stats.largestWin == 60.0)
            #expect(stats.largestLoss == 40.0)
            #expect(stats.bestStreak == 2)  // W L WW LLL WW L W L WW L WW L W L
            #expect(stats.worstStreak == 3)
            #expect(stats.currentStreak == -1)
        }
        #expect(try await ledger.store.openPositions().isEmpty)
        #expect(try await ledger.store.slotsUsed(uuid) == 0)
        let keys = ledger.keys(uuid)
        // The trade record carries the whole trade (it is the closed position, copied) and expires after 30 days.
        let trade = try ledger.hash(keys.trade(900_007))
        #expect(trade["profit"] == "60.00")
        for field in [
            "ticket", "fire_id", "user_uuid", "account", "symbol", "direction", "lot", "open_price", "close_price",
            "open_time", "close_time", "duration", "profit", "result",
        ] {
            #expect(!(trade[field] ?? "").isEmpty, "trade 900007 has no \(field): \(trade)")
        }
        #expect(trade["result"] == "win" && trade["status"] == "closed")
        #expect((try ledger.redis.command(["TTL", keys.trade(900_007)]).int ?? 0) > 2_500_000)
        #expect(try await ledger.store.trades(list: "trades:EURUSD", limit: 100).count == 20)
        #expect(
            try await ledger.store.trades(list: "trades:recent", limit: 5).map { $0["ticket"] } == [
                "900019", "900018", "900017", "900016", "900015",
            ])
        // Each of the 20 fills and 20 closes went by the path under test.
        #expect(ledger.handedOver.withLock { $0 } == (handOver ? 40 : 0))
        await ledger.stop()
    }

    /// The statistics rules in BittenCore (`TradeStatistics`) are what the engine stores: a random run of
    /// trades (wins, losses, breakeven, long streaks) gives, in every statistics hash, exactly the fields
    /// `TradeStatistics` computes from the same profits.
    @Test func storedStatisticsAreTheCoreRules() async throws {
        var random = SplitMix64(seed: 16)
        let ledger = try await LedgerHarness.start(shards: 1)
        defer { ledger.server.stop() }
        let profits = (0..<40).map { _ -> Int in
            let roll = Int(random.next() % 100)
            return roll < 10 ? 0 : Int(random.next() % 121) - 60
        }
        let uuid = "user_contract_1"
        _ = try await ledger.openPositions(uuid, count: profits.count)
        try ledger.appendCloses(uuid, profits: profits)
        try await ledger.settle(uuid)
        var expected = TradeStatistics()
        for profit in profits { expected.record(profitCents: profit * 100) }
        let fields = Dictionary(expected.redisFields, uniquingKeysWith: { a, _ in a })
        for key in ["global_trade_stats", "symbol_stats:EURUSD", "account_stats_trades:55501", "user_stats:\(uuid)"] {
            var stored = try ledger.hash(ledger.keys(uuid).statistics(key))
            stored["last_trade_at"] = nil
            #expect(stored == fields, "\(key): \(profits)")
        }
        await ledger.stop()
    }

    /// The close valuation in BittenCore (`CloseValuation`) is what the engine stores: random trades closed
    /// the EA v2.05's way (price 0, the market quote with the entry, the balance after the close, sometimes
    /// off by fees) give, in every trade record, exactly the close price, profit, result and sources
    /// `CloseValuation.settle` computes (by the balance difference, each close being alone since the last
    /// balance, with both figures kept).
    @Test func storedValuationIsTheCoreRules() async throws {
        var random = SplitMix64(seed: 17)
        let ledger = try await LedgerHarness.start()
        defer { ledger.server.stop() }
        let profits = (0..<30).map { _ in Int(random.next() % 121) - 60 }
        var offsets: [Int: Double] = [:]
        for index in 0..<30 where random.next() % 3 == 0 { offsets[index] = Double(Int(random.next() % 200)) / 100 - 1 }
        let uuid = "user_contract_value"
        _ = try await ledger.openPositions(uuid, count: profits.count)
        try ledger.appendCloses(uuid, profits: profits, balanceOffset: offsets)
        try await ledger.settle(uuid)
        var balance = 10_000.0
        var reported = 10_000.0
        for (index, profit) in profits.enumerated() {
            balance += Double(profit) + (offsets[index] ?? 0)
            let text = String(format: "%.2f", balance)
            let bid = String(format: "%.5f", 1.1 + Double(profit) / 100_000)
            let expected = CloseValuation.settle(
                CloseValuation.Position(isBuy: true, openPrice: 1.1, lot: 1, tickSize: 0.00001, tickValue: 1),
                price: Double(bid), source: "market", byBalance: Double(text)! - reported)
            reported = Double(text)!
            let trade = try ledger.hash(ledger.keys(uuid).trade(900_000 + index))
            #expect(
                trade["close_price"] == expected.closePriceText && trade["profit"] == expected.profitText,
                "\(index): \(trade)")
            #expect(
                trade["result"] == expected.result.rawValue && trade["close_price_source"] == expected.closePriceSource)
            #expect(trade["profit_source"] == expected.profitSource)
            #expect(trade["profit_by_price"] == expected.byPriceCents.map { String(format: "%.2f", Double($0) / 100) })
            #expect(
                trade["profit_by_balance"] == expected.byBalanceCents.map { String(format: "%.2f", Double($0) / 100) })
        }
        await ledger.stop()
    }

    /// A new owner (a restart: same instance, new run) loads the shard as last committed and replays only
    /// what came after the checkpoint: nothing counts twice, nothing appended meanwhile is lost.
    @Test func aRestartedOwnerCountsNothingTwice() async throws {
        let first = try await LedgerHarness.start()
        let server = first.server
        defer { server.stop() }
        let uuid = "user_replay_1"
        _ = try await first.openPositions(uuid, count: 21)
        try first.appendCloses(uuid, profits: Self.profits)
        try await first.settle(uuid)
        let keys = first.keys(uuid)
        let before = try first.hash(keys.statistics("global_trade_stats"))
        #expect(TradeStats(hash: before).total == 20)
        await first.stop()

        // While no engine runs, the 21st closes, the EA v2.05's way: close price 0, the market quote with the entry.
        let payload =
            #"{"type":"close_confirmation","command_type":"close_ticket","node_id":"NODE_55501_1","user_uuid":"\#(uuid)","status":"success","ticket":900020,"close_price":0.00000,"lot":1.00,"message":"Position closed","account":55501,"currency":"USD","balance":10225.00,"equity":10225.00,"free_margin":10225.00,"margin_level":0.00,"timestamp":"2026.11.24 15:12:44"}"#
        try first.append(
            uuid,
            [
                ("type", "close_confirmation"), ("received_at", "3000"), ("payload", payload),
                ("quotes", "EURUSD:1.10050:1.10052:own"),
            ])
        let second = try await LedgerHarness.start(server: server)
        try await second.settle(uuid)
        let after = try second.hash(keys.statistics("global_trade_stats"))
        #expect(TradeStats(hash: after).total == 21 && TradeStats(hash: after).net == 225)
        let closed = try second.hash(keys.position(900_020))
        #expect(
            closed["profit"] == "50.00" && closed["close_price_source"] == "market" && closed["close_price"] == "1.1005"
                && closed["profit_source"] == "balance", "\(closed)")
        #expect(try await second.store.slotsUsed(uuid) == 0)
        await second.stop()
        // Once more on top: the checkpoint is the last entry; nothing is applied again.
        let third = try await LedgerHarness.start(server: server)
        try await third.settle(uuid)
        #expect(try third.hash(keys.statistics("global_trade_stats")) == after)
        #expect(
            try third.redis.command(["HGET", keys.state, "checkpoint"]).string
                == third.redis.command(["XREVRANGE", keys.confirmations, "+", "-", "COUNT", "1"]).array?.first?.array?
                .first?.string)
        await third.stop()
    }

    /// The hand-over takes an entry only when the engine stands right before it; anything else is left to
    /// the reader, which applies it once.
    @Test func theHandOverTakesOnlyTheEntryRightAfterTheCursor() async throws {
        let ledger = try await LedgerHarness.start(handOver: true)
        defer { ledger.server.stop() }
        let uuid = "user_handover_1"
        _ = try await ledger.openPositions(uuid, count: 2)
        #expect(ledger.handedOver.withLock { $0 } == 2)
        let keys = ledger.keys(uuid)
        let shard = ledger.engine.shard(of: uuid)
        let cursor = try #require(ledger.engine.appliedCursor(shard))
        // Another writer's entry lands first (the first close): this process's entry (the second) does not follow the cursor.
        func close(_ ticket: Int) throws -> [(String, String)] { try LedgerHarness.closeFields(uuid, ticket: ticket) }
        let other = try ledger.redis.xadd(keys.confirmations, fields: try close(900_000))
        let own = try ledger.redis.xadd(keys.confirmations, fields: [("m", LedgerRecord.encode(try close(900_001)))])
        let message = StreamEntry(id: own + "#0", fields: try close(900_001))
        let event = LedgerEvent(entry: message)
        #expect(event != nil)
        #expect(!ledger.engine.appended(shard: shard, id: own, after: other, messages: [message], events: [event]))
        #expect(!ledger.engine.appended(shard: 99, id: own, after: cursor, messages: [message], events: [event]))
        #expect(ledger.engine.appliedCursor(shard) == cursor)
        // The reader applies both, once.
        ledger.engine.wake()
        #expect(try await eventually(.seconds(10)) { ledger.engine.committedCheckpoint(shard) == own })
        #expect(TradeStats(hash: try ledger.hash(keys.statistics("global_trade_stats"))).total == 2)
        #expect(!ledger.engine.appended(shard: shard, id: own, after: cursor, messages: [message], events: [event]))
        #expect(TradeStats(hash: try ledger.hash(keys.statistics("global_trade_stats"))).total == 2)
        await ledger.stop()
    }

    @Test func anUnknownFireIsKeptAsAnOrphanAndBadEntriesDoNotBlockTheLedger() async throws {
        let ledger = try await LedgerHarness.start()
        defer { ledger.server.stop() }
        let payload = String(decoding: try Fixtures.data("ea/confirmation_success.json"), as: UTF8.self)
        try ledger.append(
            "user_5512093", [("type", "confirmation"), ("received_at", "1000"), ("payload", "{not json")])
        try ledger.append("user_5512093", [("type", "confirmation"), ("received_at", "1000"), ("payload", payload)])
        try ledger.append(
            "user_5512093",
            [
                ("type", "confirmation"), ("received_at", "1000"), ("payload", payload),
                ("untrusted", "account 1 is not the node's"), ("peer", "10.0.0.9"),
            ])
        try await ledger.settle("user_5512093")
        let keys = ledger.keys("user_5512093")
        #expect(try ledger.redis.command(["LLEN", keys.orphans]).int == 1)
        #expect(try ledger.redis.command(["LLEN", keys.list("confirmations:untrusted")]).int == 1)
        #expect(try ledger.redis.command(["EXISTS", keys.position(508_812_347)]).int == 0)
        await ledger.stop()
    }
}
