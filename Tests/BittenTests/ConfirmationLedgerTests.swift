import BittenCore
import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Redis
import Testing

/// The confirmation processor and its Lua scripts against a real redis-server.
@Suite("Confirmation ledger: statistics and replay against real Redis")
struct ConfirmationLedgerTests {
    /// Twenty trades, P&L in USD (1 lot EURUSD BUY from 1.10000: one tick is 1 USD).
    static let profits: [Int] = [25, -10, 40, 15, -30, -20, -5, 60, 10, -15, 35, -25, 50, 5, -40, 20, 30, -10, 45, -5]

    func seedPositions(_ redis: RedisConnection, uuid: String, profits: [Int] = profits) throws {
        for (index, _) in profits.enumerated() {
            let ticket = 900_000 + index
            _ = try redis.command([
                "HSET", "position:\(ticket)", "ticket", String(ticket), "fire_id", "F-TEST-\(index)", "signal_id", "SIG_T_\(index)",
                "user_uuid", uuid, "account", "55501", "symbol", "EURUSD", "direction", "BUY", "lot", "1",
                "open_price", "1.1", "sl", "1.099", "tp", "1.102", "open_time", "1000", "tick_size", "0.00001",
                "tick_value", "1", "status", "open",
            ]).orThrow()
            _ = try redis.command(["SADD", "all_open_positions", String(ticket)]).orThrow()
            _ = try redis.command(["SADD", "slots:\(uuid)", "F-TEST-\(index)"]).orThrow()
        }
    }

    /// The closes as the EA v2.05 answers them (`../shared/fixtures/ea/close_confirmation_v205.json`):
    /// close price 0, the balance after the close; the market quote at arrival goes with the entry.
    func appendCloses(_ redis: RedisConnection, uuid: String, balanceOffset: [Int: Double] = [:], profits: [Int] = profits) throws {
        var balance = 10_000.0
        for (index, profit) in profits.enumerated() {
            let bid = String(format: "%.5f", 1.1 + Double(profit) / 100_000)
            balance += Double(profit) + (balanceOffset[index] ?? 0)
            let template = String(decoding: try Fixtures.data("ea/close_confirmation_v205.json"), as: UTF8.self)
            let payload = template.replacingOccurrences(of: "user_5512093", with: uuid)
                .replacingOccurrences(of: "508812347", with: String(900_000 + index))
                .replacingOccurrences(of: "\"lot\":0.35", with: "\"lot\":1.00")
                .replacingOccurrences(of: "\"account\":94017233", with: "\"account\":55501")
                .replacingOccurrences(of: "\"balance\":10032.20", with: "\"balance\":" + String(format: "%.2f", balance))
            _ = try redis.xadd("stream:confirmations", fields: [
                ("type", "close_confirmation"), ("user_uuid", uuid), ("received_at", String(2000 + index)), ("payload", payload),
                ("quotes", "EURUSD:\(bid):\(bid):own;XAUUSD:2641.1:2641.5:any"),
            ])
        }
    }

    func processor(_ url: String) throws -> (ConfirmationProcessor, RedisClient) {
        let client = RedisClient(url: try RedisURL(parsing: url), poolSize: 1)
        return (ConfirmationProcessor(redis: client, board: ServiceBoard(), logger: Logger(label: "test")), client)
    }

    @Test func twentyTradesGiveTheHandComputedStatistics() async throws {
        let server = try RedisServerProcess()
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        try seedPositions(redis, uuid: "user_stats_01")
        try appendCloses(redis, uuid: "user_stats_01")
        let (processor, client) = try processor(server.url)
        defer { client.shutdown() }
        #expect(try await processor.processBatch(id: ">") == 20)

        for key in ["global_trade_stats", "symbol_stats:EURUSD", "account_stats_trades:55501", "user_stats:user_stats_01"] {
            let stats = TradeStats(hash: try #require(try redis.command(["HGETALL", key]).hash))
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
        #expect(try redis.command(["SCARD", "all_open_positions"]).int == 0)
        #expect(try redis.command(["SCARD", "slots:user_stats_01"]).int == 0)
        #expect(try redis.command(["HGET", "trade:900007", "profit"]).string == "60.00")
        // The trade record carries the whole trade (it is the closed position, copied) and expires after 30 days.
        let trade = try #require(try redis.command(["HGETALL", "trade:900007"]).hash)
        for field in ["ticket", "fire_id", "user_uuid", "account", "symbol", "direction", "lot", "open_price", "close_price",
                      "open_time", "close_time", "duration", "profit", "result"] {
            #expect(!(trade[field] ?? "").isEmpty, "trade:900007 has no \(field): \(trade)")
        }
        #expect(trade["result"] == "win" && trade["status"] == "closed")
        #expect((try redis.command(["TTL", "trade:900007"]).int ?? 0) > 2_500_000)
        #expect(try redis.command(["LLEN", "trades:EURUSD"]).int == 20)
        #expect(try redis.command(["XPENDING", "stream:confirmations", "processors"]).array?.first?.int == 0)
    }

    /// The statistics rules in BittenCore (`TradeStatistics`) and the ledger's script agree: random runs of
    /// trades (wins, losses, breakeven, long streaks) applied by the real script on a real redis-server give,
    /// in every statistics hash, exactly the fields `TradeStatistics` computes from the same profits.
    @Test func theScriptsStatisticsAreTheCoreRules() async throws {
        var random = SplitMix64(seed: 16)
        for run in 0..<3 {
            let server = try RedisServerProcess()
            let redis = try RedisConnection(url: RedisURL(parsing: server.url))
            let profits = (0..<40).map { _ -> Int in
                let roll = Int(random.next() % 100)
                return roll < 10 ? 0 : Int(random.next() % 121) - 60
            }
            let uuid = "user_contract_\(run)"
            try seedPositions(redis, uuid: uuid, profits: profits)
            try appendCloses(redis, uuid: uuid, profits: profits)
            let (processor, client) = try processor(server.url)
            #expect(try await processor.processBatch(id: ">") == profits.count)
            client.shutdown()
            var expected = TradeStatistics()
            for profit in profits { expected.record(profitCents: profit * 100) }
            let fields = Dictionary(expected.redisFields, uniquingKeysWith: { a, _ in a })
            for key in ["global_trade_stats", "symbol_stats:EURUSD", "account_stats_trades:55501", "user_stats:\(uuid)"] {
                var stored = try #require(try redis.command(["HGETALL", key]).hash)
                stored["last_trade_at"] = nil
                #expect(stored == fields, "run \(run), \(key): \(profits)")
                #expect(TradeStatistics(redisHash: stored) == expected)
            }
            server.stop()
        }
    }

    /// The close valuation in BittenCore (`CloseValuation`) and the ledger's script agree: random trades
    /// closed the EA v2.05's way (price 0, the market quote with the entry, the balance after the close,
    /// sometimes off by fees) give, in every trade record, exactly the close price, profit, result and
    /// sources `CloseValuation.settle` computes (the first close by the price alone, the others by the
    /// balance difference, both figures kept).
    @Test func theScriptsValuationIsTheCoreRules() async throws {
        var random = SplitMix64(seed: 17)
        let server = try RedisServerProcess()
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        let profits = (0..<30).map { _ in Int(random.next() % 121) - 60 }
        var offsets: [Int: Double] = [:]
        for index in 0..<30 where random.next() % 3 == 0 { offsets[index] = Double(Int(random.next() % 200)) / 100 - 1 }
        let uuid = "user_contract_value"
        try seedPositions(redis, uuid: uuid, profits: profits)
        try appendCloses(redis, uuid: uuid, balanceOffset: offsets, profits: profits)
        let (processor, client) = try processor(server.url)
        #expect(try await processor.processBatch(id: ">") == profits.count)
        client.shutdown()
        // The same closes through the pure position book.
        var book = PositionBook()
        for index in 0..<profits.count {
            _ = book.opened(OpenPosition(ticket: 900_000 + index, fireID: "F-TEST-\(index)", userUUID: uuid, account: 55501, symbol: "EURUSD",
                                         isBuy: true, lot: 1, openPrice: 1.1, stopLoss: 1.099, takeProfit: 1.102, openTime: 1000,
                                         tickSize: 0.00001, tickValue: 1), balance: nil)
        }
        var balance = 10_000.0
        var reported: Double?
        for (index, profit) in profits.enumerated() {
            balance += Double(profit) + (offsets[index] ?? 0)
            let text = String(format: "%.2f", balance)
            let bid = String(format: "%.5f", 1.1 + Double(profit) / 100_000)
            let booked = book.closeAnswered(ticket: 900_000 + index, userUUID: uuid, closePrice: 0, balance: Double(text)!,
                                            quotes: "EURUSD:\(bid):\(bid):own;XAUUSD:2641.1:2641.5:any", at: Double(2000 + index))
            guard case .closed(let bookTrade)? = booked.first else {
                Issue.record("the book did not close \(900_000 + index)")
                continue
            }
            let quote = try #require(CloseValuation.marketPrice(in: "EURUSD:\(bid):\(bid):own;XAUUSD:2641.1:2641.5:any", symbol: "EURUSD", isBuy: true))
            let expected = CloseValuation.settle(
                CloseValuation.Position(isBuy: true, openPrice: 1.1, lot: 1, tickSize: 0.00001, tickValue: 1),
                price: quote.price, source: "market", byBalance: reported.map { Double(text)! - $0 })
            reported = Double(text)
            let trade = try #require(try redis.command(["HGETALL", "trade:\(900_000 + index)"]).hash)
            #expect(trade["close_price"] == expected.closePriceText && trade["profit"] == expected.profitText, "\(index): \(trade)")
            #expect(trade["result"] == expected.result.rawValue && trade["close_price_source"] == expected.closePriceSource)
            #expect(trade["profit_source"] == expected.profitSource)
            #expect(trade["profit_by_price"] == expected.byPriceCents.map { String(format: "%.2f", Double($0) / 100) })
            #expect(trade["profit_by_balance"] == expected.byBalanceCents.map { String(format: "%.2f", Double($0) / 100) })
            #expect(bookTrade.valuation == expected, "\(index)")
        }
        for key in ["global_trade_stats", "symbol_stats:EURUSD", "account_stats_trades:55501", "user_stats:\(uuid)"] {
            var stored = try #require(try redis.command(["HGETALL", key]).hash)
            stored["last_trade_at"] = nil
            var fields = Dictionary(try #require(book.statistics[key]).redisFields, uniquingKeysWith: { a, _ in a })
            fields["last_trade_at"] = nil
            #expect(stored == fields, "\(key)")
        }
        #expect(book.positions.isEmpty)
        #expect(try redis.command(["SCARD", "all_open_positions"]).int == 0)
    }

    /// One entry whose position is corrupt (a tick size that is not a number) fails on its own: the
    /// batch script catches it, the other 19 apply, the broken one is listed for a later replay and
    /// everything is acknowledged. Statistics processed in batches of 7 equal one batch of 20 minus it.
    @Test func oneBrokenEntryFailsAloneInItsBatch() async throws {
        let server = try RedisServerProcess()
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        try seedPositions(redis, uuid: "user_stats_02")
        _ = try redis.command(["HSET", "position:900004", "tick_size", "not-a-number"]).orThrow()  // the -30 trade
        try appendCloses(redis, uuid: "user_stats_02")
        let client = RedisClient(url: try RedisURL(parsing: server.url), poolSize: 1)
        defer { client.shutdown() }
        let processor = ConfirmationProcessor(redis: client, board: ServiceBoard(), batchSize: 7, logger: Logger(label: "test"))
        var handled = 0
        while true {
            let n = try await processor.processBatch(id: ">")
            if n == 0 { break }
            handled += n
        }
        #expect(handled == 20)
        let stats = TradeStats(hash: try #require(try redis.command(["HGETALL", "global_trade_stats"]).hash))
        #expect(stats.total == 19)
        #expect(stats.losses == 8)
        #expect(stats.grossLoss == 130.0)
        #expect(stats.grossProfit == 335.0)
        #expect(try redis.command(["HGET", "position:900004", "status"]).string == "open")
        #expect(try redis.command(["HGET", "position:900005", "status"]).string == "closed")
        #expect(try redis.command(["LLEN", "confirmations:failed"]).int == 1)
        #expect(try redis.command(["XPENDING", "stream:confirmations", "processors"]).array?.first?.int == 0)
    }

    @Test func replayAfterACrashCountsNothingTwice() async throws {
        let server = try RedisServerProcess()
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        try seedPositions(redis, uuid: "user_replay_1")
        try appendCloses(redis, uuid: "user_replay_1")
        let (processor, client) = try processor(server.url)
        defer { client.shutdown() }
        #expect(try await processor.processBatch(id: ">") == 20)
        let before = try #require(try redis.command(["HGETALL", "global_trade_stats"]).hash)

        // The worst crash: applied but never acknowledged. Every entry is delivered again…
        _ = try redis.command(["XGROUP", "SETID", "stream:confirmations", "processors", "0"]).orThrow()
        let (restarted, client2) = try self.processor(server.url)
        defer { client2.shutdown() }
        #expect(try await restarted.processBatch(id: ">") == 20)
        // A Redis that lost its scripts (restart, SCRIPT FLUSH) fails the batch without acknowledging it;
        // the next read loads them again and the entries are recognised once more.
        _ = try redis.command(["XGROUP", "SETID", "stream:confirmations", "processors", "0"]).orThrow()
        _ = try redis.command(["SCRIPT", "FLUSH"]).orThrow()
        await #expect(throws: RedisError.self) { try await restarted.processBatch(id: ">") }
        #expect(try await restarted.processBatch(id: "0") == 20)
        // …and recognised: the statistics are unchanged.
        #expect(try redis.command(["HGETALL", "global_trade_stats"]).hash == before)
        #expect(TradeStats(hash: before).total == 20)

        // An entry appended while no processor ran is applied once when one starts.
        _ = try redis.command(["HSET", "position:999999", "ticket", "999999", "fire_id", "F-LATE", "user_uuid", "user_replay_1",
                               "account", "55501", "symbol", "EURUSD", "direction", "SELL", "lot", "0.5", "open_price", "1.1",
                               "open_time", "1000", "tick_size", "0.00001", "tick_value", "1", "status", "open"]).orThrow()
        let payload = #"{"type":"close_confirmation","command_type":"close_ticket","node_id":"NODE_55501_1","user_uuid":"user_replay_1","status":"success","ticket":999999,"close_price":1.09900,"lot":0.50,"message":"Position closed","account":55501,"currency":"USD","balance":10225.00,"equity":10225.00,"free_margin":10225.00,"margin_level":0.00,"timestamp":"2026.11.24 15:12:44"}"#
        _ = try redis.xadd("stream:confirmations", fields: [("type", "close_confirmation"), ("user_uuid", "user_replay_1"),
                                                            ("received_at", "3000"), ("payload", payload)])
        #expect(try await restarted.processBatch(id: ">") == 1)
        #expect(try redis.command(["HGET", "position:999999", "profit"]).string == "50.00")
        // An EA that does send a close price (a future one): the price is the EA's.
        #expect(try redis.command(["HGET", "position:999999", "close_price_source"]).string == "ea")
        #expect(try redis.command(["HGET", "global_trade_stats", "total"]).int == 21)
    }

    /// The twenty closes came with close price 0: valued at the market quote each entry carried, and
    /// from the second on (one position closed since the balance the previous close reported) by the
    /// balance difference, which wins where the two differ (a commission the price does not show).
    @Test func closesAtZeroAreValuedAtTheMarketAndTheBalanceWins() async throws {
        let server = try RedisServerProcess()
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        try seedPositions(redis, uuid: "user_value_1")
        // Trade 7 (+60 by price) cost 1.50 of commission at the broker.
        try appendCloses(redis, uuid: "user_value_1", balanceOffset: [7: -1.5])
        let (processor, client) = try processor(server.url)
        defer { client.shutdown() }
        #expect(try await processor.processBatch(id: ">") == 20)
        let first = try #require(try redis.command(["HGETALL", "trade:900000"]).hash)
        #expect(first["close_price"] == "1.10025" && first["close_price_source"] == "market", "\(first)")
        #expect(first["profit_source"] == "price" && first["profit"] == "25.00", "no balance before the first close: \(first)")
        let seventh = try #require(try redis.command(["HGETALL", "trade:900007"]).hash)
        #expect(seventh["profit_source"] == "balance" && seventh["profit"] == "58.50", "\(seventh)")
        #expect(seventh["profit_by_price"] == "60.00" && seventh["profit_by_balance"] == "58.50", "\(seventh)")
        let stats = TradeStats(hash: try #require(try redis.command(["HGETALL", "global_trade_stats"]).hash))
        #expect(stats.net == 173.5 && stats.largestWin == 58.5)
        // An inferred close in between makes the next balance difference ambiguous: the price is used.
        _ = try redis.command(["HSET", "position:950000", "ticket", "950000", "fire_id", "F-I", "user_uuid", "user_value_1",
                               "account", "55501", "symbol", "EURUSD", "direction", "BUY", "lot", "1", "open_price", "1.1",
                               "sl", "1.099", "open_time", "1000", "tick_size", "0.00001", "tick_value", "1", "status", "open"]).orThrow()
        _ = try redis.command(["HSET", "position:950001", "ticket", "950001", "fire_id", "F-J", "user_uuid", "user_value_1",
                               "account", "55501", "symbol", "EURUSD", "direction", "BUY", "lot", "1", "open_price", "1.1",
                               "open_time", "1000", "tick_size", "0.00001", "tick_value", "1", "status", "open"]).orThrow()
        _ = try redis.xadd("stream:confirmations", fields: [("type", "inferred_close"), ("user_uuid", "user_value_1"),
                                                            ("ticket", "950000"), ("reason", "stop_loss"), ("price", "1.099"),
                                                            ("received_at", "3000")])
        let payload = String(decoding: try Fixtures.data("ea/close_confirmation_v205.json"), as: UTF8.self)
            .replacingOccurrences(of: "user_5512093", with: "user_value_1").replacingOccurrences(of: "508812347", with: "950001")
            .replacingOccurrences(of: "\"account\":94017233", with: "\"account\":55501")
            .replacingOccurrences(of: "\"balance\":10032.20", with: "\"balance\":10083.50")  // −100 (stop) +10
        _ = try redis.xadd("stream:confirmations", fields: [("type", "close_confirmation"), ("user_uuid", "user_value_1"),
                                                            ("received_at", "3001"), ("payload", payload),
                                                            ("quotes", "EURUSD:1.10010:1.10012:own")])
        #expect(try await processor.processBatch(id: ">") == 2)
        let stopped = try #require(try redis.command(["HGETALL", "position:950000"]).hash)
        #expect(stopped["status"] == "closed" && stopped["close_reason"] == "stop_loss" && stopped["close_price_source"] == "inferred")
        #expect(stopped["profit"] == "-100.00", "\(stopped)")
        let after = try #require(try redis.command(["HGETALL", "position:950001"]).hash)
        #expect(after["profit_source"] == "price" && after["profit"] == "10.00", "\(after)")
        // Replayed, nothing changes.
        _ = try redis.command(["XGROUP", "SETID", "stream:confirmations", "processors", "0"]).orThrow()
        let before = try redis.command(["HGETALL", "global_trade_stats"]).hash
        #expect(try await processor.processBatch(id: ">") == 22)
        #expect(try redis.command(["HGETALL", "global_trade_stats"]).hash == before)
    }

    @Test func confirmationForAnUnknownFireIsKeptAsAnOrphan() async throws {
        let server = try RedisServerProcess()
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        let payload = String(decoding: try Fixtures.data("ea/confirmation_success.json"), as: UTF8.self)
        _ = try redis.xadd("stream:confirmations", fields: [("type", "confirmation"), ("user_uuid", "user_5512093"),
                                                            ("received_at", "1000"), ("payload", payload)])
        let (processor, client) = try processor(server.url)
        defer { client.shutdown() }
        #expect(try await processor.processBatch(id: ">") == 1)
        #expect(try redis.command(["LLEN", "orphan_confirmations"]).int == 1)
        #expect(try redis.command(["EXISTS", "position:508812347"]).int == 0)
    }
}
