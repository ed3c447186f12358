import ArgumentParser
import Foundation
import Redis
import ZeroMQ

extension Bench {
    /// `bitten bench trade`: confirmations ingested end to end by a real `bitten up` child process.
    struct Trade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Confirmations per second through 5558 → stream → processor (fill, close, P&L, statistics).")

        @Option(help: "Trades; each sends one fill and one close confirmation.") var trades = 20_000
        @Flag(help: "Turn the managed Redis's AOF off for the run (to see what durability costs).") var noAOF = false

        func run() async throws {
            let server = try ServerUnderTest.start()
            defer { server.stop() }
            let port = try server.managedRedisPort()
            let redis = try RedisConnection(url: RedisURL(host: "127.0.0.1", port: port))
            if noAOF { _ = try redis.command(["CONFIG", "SET", "appendonly", "no"]).orThrow() }
            // Fires as the fire desk leaves them (every field it writes): sent, holding a slot.
            var batch: [[String]] = []
            for i in 0..<trades {
                batch.append(["HSET", "fire:FB-\(i)", "kind", "fire", "fire_id", "FB-\(i)", "state", "sent", "holds_slot", "1",
                              "signal_id", "SIG_BENCH", "user_uuid", "user_bench_\(i % 100)", "symbol", "EURUSD", "direction", "BUY",
                              "entry", "1.0852", "sl", "1.08", "tp", "1.09", "lot", "0.1", "risk_percent", "1", "risk_amount", "100",
                              "tier", "COMMANDER", "citadel_multiplier", "1", "balance", "10000", "tick_size", "0.00001", "tick_value", "1",
                              "created_at", "1764000000.1", "deadline", "1764000030.2", "sent_at", "1764000000.2"])
                if batch.count == 1000 {
                    _ = try redis.pipeline(batch)
                    batch = []
                }
            }
            if !batch.isEmpty { _ = try redis.pipeline(batch) }
            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setSendHighWaterMark(0)
            try push.connect("tcp://127.0.0.1:\(server.port("BITTEN_CONFIRM_PORT"))")
            try await Task.sleep(for: .milliseconds(300))
            let (serverCPU, redisCPU) = (server.cpuSeconds(), ServerUnderTest.redisCPUSeconds(redis))
            let start = Date()
            for i in 0..<trades {
                let uuid = "user_bench_\(i % 100)"
                let ticket = 700_000_000 + i
                try push.send(#"{"type":"confirmation","command_type":"fire","fire_id":"FB-\#(i)","node_id":"NODE_1_1","user_uuid":"\#(uuid)","status":"success","ticket":\#(ticket),"price":1.08500,"lot":0.10,"message":"Trade executed successfully via DEALER","account":\#(80_000 + i % 100),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.24 14:06:02"}"#)
            }
            for i in 0..<trades {
                let close = i % 3 == 0 ? "1.08400" : "1.08620"
                try push.send(#"{"type":"close_confirmation","command_type":"close_ticket","node_id":"NODE_1_1","user_uuid":"user_bench_\#(i % 100)","status":"success","ticket":\#(700_000_000 + i),"close_price":\#(close),"lot":0.10,"message":"Position closed","account":\#(80_000 + i % 100),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.24 15:12:44"}"#)
            }
            let sent = Date().timeIntervalSince(start)
            var total = 0
            var appended: Double?
            while Date().timeIntervalSince(start) < 300 {
                if appended == nil, try redis.command(["XLEN", "stream:confirmations"]).int ?? 0 >= trades * 2 {
                    appended = Date().timeIntervalSince(start)
                }
                total = try redis.command(["HGET", "global_trade_stats", "total"]).int ?? 0
                if total >= trades { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let elapsed = Date().timeIntervalSince(start)
            let redisUsed = ServerUnderTest.redisCPUSeconds(redis) - redisCPU
            let serverUsed = server.cpuSeconds() - serverCPU
            let streamLength = try redis.command(["XLEN", "stream:confirmations"]).int ?? 0
            let open = try redis.command(["SCARD", "all_open_positions"]).int ?? 0
            let wins = try redis.command(["HGET", "global_trade_stats", "wins"]).int ?? 0
            push.close()
            let commandStats = try redis.command(["INFO", "commandstats"]).string ?? ""
            // Where Redis spent its time (commands run inside the scripts are counted too), costliest first.
            let lines = commandStats.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("cmdstat_") }
            func usec(_ line: Substring) -> Int {
                line.split(separator: ",").first { $0.hasPrefix("usec=") }.flatMap { Int($0.dropFirst(5)) } ?? 0
            }
            for line in lines.sorted(by: { usec($0) > usec($1) }).prefix(14) { print("redis: \(line)") }
            print(String(format: "trade: %d confirmations (%d fills + %d closes) pushed in %.2f s", trades * 2, trades, trades, sent))
            if let appended {
                print(String(format: "trade: all in the stream after %.2f s (%.0f/s appended)", appended, Double(trades * 2) / appended))
            }
            print(String(format: "trade: all applied after %.2f s: %.0f confirmations/s end to end (stream + lifecycle + statistics)",
                         elapsed, Double(trades * 2) / elapsed))
            // Redis runs commands on one thread: its CPU time per confirmation bounds the rate, whatever the server does.
            let perConfirmation = redisUsed / Double(trades * 2)
            print(String(format: "trade: Redis CPU %.1f µs per confirmation (%.0f%% of a core during the run): at most %.0f confirmations/s with Redis alone on a whole core; server CPU %.1f µs per confirmation",
                         perConfirmation * 1e6, redisUsed / elapsed * 100, 1 / max(perConfirmation, 1e-9), serverUsed / Double(trades * 2) * 1e6))
            print("trade: stream length \(streamLength), statistics total \(total) (wins \(wins)), open positions left \(open)")
        }
    }
}
