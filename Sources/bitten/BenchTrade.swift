import ArgumentParser
import BittenCore
import BittenServices
import Foundation
import Logging
import Redis
import ZeroMQ

extension Bench {
    /// `bitten bench trade`: confirmations ingested end to end by a real `bitten up` child process.
    struct Trade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Confirmations per second through 5558 → ledger → trade engine (fill, close, P&L, statistics).")

        @Option(help: "Trades; each sends one fill and one close confirmation.") var trades = 20_000
        @Option(help: "Users the trades are spread over.") var users = 100
        @Option(help: "Trade shards (BITTEN_TRADE_SHARDS of the server).") var shards = 16
        @Flag(help: "Run Redis without AOF (to see what durability costs).") var noAOF = false

        func run() async throws {
            // A Redis of our own (AOF everysec unless --no-aof), so the fires can be in it before the server starts.
            let directory = NSTemporaryDirectory() + "bitten-bench-trade-\(getpid())"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let redisServer = try LocalRedisServer(port: LocalRedisServerPort.next(), directory: directory, appendOnly: !noAOF)
            defer { redisServer.stop() }
            let uuids = (0..<users).map { "user_bench_\($0)" }
            let fireIDs = try await seed(redisServer.url, uuids: uuids)
            let server = try ServerUnderTest.start(environment: [
                "BITTEN_REDIS_URL": "redis://127.0.0.1:\(redisServer.port)", "BITTEN_TRADE_SHARDS": String(shards),
            ])
            defer { server.stop() }
            let redis = try RedisConnection(url: redisServer.url)
            let keys = (0..<shards).map { ShardKeys(shard: $0) }
            // The server has taken every shard (and so loaded the fires) when it holds every lease.
            for _ in 0..<200 {
                let held = try keys.filter { (try redis.command(["GET", $0.lease]).string ?? "").hasPrefix("gateway-1/") }.count
                if held == shards { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(300))
            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setSendHighWaterMark(0)
            try push.connect("tcp://127.0.0.1:\(server.port("BITTEN_CONFIRM_PORT"))")
            try await Task.sleep(for: .milliseconds(300))
            let (serverCPU, redisCPU) = (server.cpuSeconds(), ServerUnderTest.redisCPUSeconds(redis))
            _ = try redis.command(["CONFIG", "RESETSTAT"])
            let start = Date()
            for i in 0..<trades {
                let uuid = uuids[i % users]
                let ticket = 700_000_000 + i
                try push.send(#"{"type":"confirmation","command_type":"fire","fire_id":"\#(fireIDs[i])","node_id":"NODE_1_1","user_uuid":"\#(uuid)","status":"success","ticket":\#(ticket),"price":1.08500,"lot":0.10,"message":"Trade executed successfully via DEALER","account":\#(80_000 + i % users),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.24 14:06:02"}"#)
            }
            for i in 0..<trades {
                let close = i % 3 == 0 ? "1.08400" : "1.08620"
                try push.send(#"{"type":"close_confirmation","command_type":"close_ticket","node_id":"NODE_1_1","user_uuid":"\#(uuids[i % users])","status":"success","ticket":\#(700_000_000 + i),"close_price":\#(close),"lot":0.10,"message":"Position closed","account":\#(80_000 + i % users),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.24 15:12:44"}"#)
            }
            let sent = Date().timeIntervalSince(start)
            func sum(_ command: (ShardKeys) -> [String]) throws -> Int {
                try redis.pipeline(keys.map(command)).reduce(0) { $0 + (Int($1.string ?? "") ?? $1.int ?? 0) }
            }
            var total = 0
            while Date().timeIntervalSince(start) < 300 {
                total = try sum { ["HGET", $0.statistics("global_trade_stats"), "total"] }
                if total >= trades { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let elapsed = Date().timeIntervalSince(start)
            let redisUsed = ServerUnderTest.redisCPUSeconds(redis) - redisCPU
            let serverUsed = server.cpuSeconds() - serverCPU
            let streamLength = try sum { ["XLEN", $0.confirmations] }
            let open = try sum { ["SCARD", $0.openPositions] }
            let wins = try sum { ["HGET", $0.statistics("global_trade_stats"), "wins"] }
            push.close()
            let commandStats = try redis.command(["INFO", "commandstats"]).string ?? ""
            // Where Redis spent its time (commands run inside scripts are counted too), costliest first.
            let lines = commandStats.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("cmdstat_") }
            func usec(_ line: Substring) -> Int {
                line.split(separator: ",").first { $0.hasPrefix("usec=") }.flatMap { Int($0.dropFirst(5)) } ?? 0
            }
            for line in lines.sorted(by: { usec($0) > usec($1) }).prefix(14) { print("redis: \(line)") }
            print(String(format: "trade: %d confirmations (%d fills + %d closes) of %d users over %d shards pushed in %.2f s",
                         trades * 2, trades, trades, users, shards, sent))
            print(String(format: "trade: all applied after %.2f s: %.0f confirmations/s end to end (ledger + lifecycle + statistics)",
                         elapsed, Double(trades * 2) / elapsed))
            // Redis runs commands on one thread: its CPU time per confirmation bounds the rate, whatever the server does.
            let perConfirmation = redisUsed / Double(trades * 2)
            print(String(format: "trade: Redis CPU %.1f µs per confirmation (%.0f%% of a core during the run): at most %.0f confirmations/s with Redis alone on a whole core; server CPU %.1f µs per confirmation",
                         perConfirmation * 1e6, redisUsed / elapsed * 100, 1 / max(perConfirmation, 1e-9), serverUsed / Double(trades * 2) * 1e6))
            print(String(format: "trade: per shard %.0f confirmations/s (%d shards, one Redis)", Double(trades * 2) / elapsed / Double(shards), shards))
            print("trade: \(streamLength) ledger stream entries (a batch each), statistics total \(total) (wins \(wins)), open positions left \(open)")
        }

        /// The users and one fire per trade, reserved and sent, stored by the trade engine's own store in the
        /// sharded schema, as the fire desk leaves them after the send. Returns the fire ids, trade by trade.
        func seed(_ url: RedisURL, uuids: [String]) async throws -> [String] {
            let client = RedisClient(url: url, poolSize: 2)
            defer { client.shutdown() }
            var book = (0..<shards).map { TradeShard(index: $0) }
            for uuid in uuids {
                book[ShardKeys.shard(of: uuid, count: shards)].save(
                    ShardUser(uuid: uuid, tier: .commander, riskOverride: ""),
                    fields: ["uuid", uuid, "tier", "COMMANDER", "display_name", uuid, "risk_override", "", "created", "0"])
            }
            let variants = Tier.allCases.map { SizingChoice(key: $0.rawValue + "|", slots: 1_000_000, lot: 0.1,
                                                            fields: ["lot", "0.1", "risk_percent", "1", "risk_amount", "100", "tier", $0.rawValue]) }
            var ids: [String] = []
            for i in 0..<trades {
                let uuid = uuids[i % uuids.count]
                let shard = ShardKeys.shard(of: uuid, count: shards)
                let fire = FireInFlight(id: "", userUUID: uuid, signalID: "SIG_BENCH_\(i)", symbol: "EURUSD", isBuy: true, stopLoss: 1.08,
                                        takeProfit: 1.09, lot: 0, tickSize: 0.00001, tickValue: 1, deadline: 4_000_000_000)
                let fields = ["kind", "fire", "signal_id", "SIG_BENCH_\(i)", "user_uuid", uuid, "symbol", "EURUSD", "direction", "BUY",
                              "entry", "1.0852", "sl", "1.08", "tp", "1.09", "citadel_multiplier", "1", "balance", "10000",
                              "tick_size", "0.00001", "tick_value", "1", "created_at", "1764000000.1", "deadline", "4000000000"]
                guard case .reserved(let id, _) = book[shard].reserve(fire, variants: variants, signalExpiresAt: 4_000_000_000,
                                                                      date: "20261205", fields: fields) else {
                    throw ValidationError("bench fire \(i) not reserved")
                }
                book[shard].sent(id, at: 1_764_000_000.2, deadline: 4_000_000_000, fields: ["sent_at", "1764000000.2"])
                ids.append(id)
            }
            for index in 0..<shards {
                let store = ShardStore(redis: client, shard: index)
                guard let token = try await store.acquire(instance: "bench-seed", boot: "1", ttl: .seconds(60)) else {
                    throw ValidationError("shard \(index) is held by someone else")
                }
                try await store.commit(book[index].takeChanges(), sequence: book[index].book.sequence, lastApplied: nil, token: token)
                try await store.release(token: token)
            }
            return ids
        }
    }
}
