import ArgumentParser
import BittenCore
import BittenDashboard
import BittenServices
import Foundation
import Logging
import Redis
import ZeroMQ

extension Bench {
    /// `bitten-bench trade`: confirmations ingested end to end by a real `bitten up` child process.
    struct Trade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Confirmations per second through 5558 → ledger → trade engine (fill, close, P&L, statistics).")

        @Option(help: "Trades; each sends one fill and one close confirmation.") var trades = 20_000
        @Option(help: "Users the trades are spread over.") var users = 100
        @Option(help: "Trade shards (BITTEN_TRADE_SHARDS of the server).") var shards = 16
        @Flag(help: "Run Redis without AOF (to see what durability costs).") var noAOF = false
        @Option(
            help:
                "Ledger messages a shard applies ahead of its commits (BITTEN_TRADE_APPLY_AHEAD of the server): lower, shorter waits for Redis during the burst; higher, fewer and larger commits."
        )
        var applyAhead = 256
        @Flag(help: "Run the server without its flight recorder (to see what recording each EA answer costs).")
        var noRecorder = false
        @Flag(help: "Run on a loopback Redis Cluster of three primaries (no replicas) instead of one server.")
        var cluster = false

        func run() async throws {
            // A Redis of our own (AOF everysec unless --no-aof), so the fires can be in it before the server starts.
            let directory = NSTemporaryDirectory() + "bitten-bench-trade-\(getpid())"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let single: LocalRedisServer?
            let redisCluster: LocalRedisCluster?
            let keyed: RedisClient
            let urlText: String
            if cluster {
                let started = try LocalRedisCluster(
                    primaries: 3, replicasPerPrimary: 0, directory: directory, appendOnly: !noAOF)
                (single, redisCluster, urlText) = (nil, started, started.urlText)
                keyed = RedisClient(
                    cluster: try RedisClusterURL(parsing: started.urlText), logger: Logger(label: "bitten.test"))
            } else {
                let started = try LocalRedisServer(
                    port: LocalRedisServerPort.next(), directory: directory, appendOnly: !noAOF)
                (single, redisCluster, urlText) = (started, nil, "redis://127.0.0.1:\(started.port)")
                keyed = RedisClient(url: started.url, poolSize: 2, logger: Logger(label: "bitten.test"))
            }
            defer {
                keyed.shutdown()
                single?.stop()
                redisCluster?.stop()
                // The bench's Redis data goes with the run (BITTEN_BENCH_KEEP=1 keeps it, as for the servers).
                if ProcessInfo.processInfo.environment["BITTEN_BENCH_KEEP"] == nil {
                    try? FileManager.default.removeItem(atPath: directory)
                }
            }
            // One connection per server: CPU time and command statistics are per process.
            let servers = try (redisCluster?.servers.map(\.url) ?? single.map { [$0.url] } ?? []).map {
                try RedisConnection(url: $0)
            }
            func redisCPU() -> Double { servers.reduce(0) { $0 + ServerUnderTest.redisCPUSeconds($1) } }
            let uuids = (0..<users).map { "user_bench_\($0)" }
            let fireIDs = try await seed(keyed, uuids: uuids)
            let server = try ServerUnderTest.start(environment: [
                "BITTEN_REDIS_URL": urlText, "BITTEN_TRADE_SHARDS": String(shards),
                "BITTEN_FLIGHT_RECORDER": noRecorder ? "off" : "on", "BITTEN_TRADE_APPLY_AHEAD": String(applyAhead),
            ])
            defer { server.stop() }
            let keys = (0..<shards).map { ShardKeys(shard: $0) }
            func sum(_ command: (ShardKeys) -> [String]) async throws -> Int {
                try await keyed.pipeline(keys.map(command)).reduce(0) { $0 + (Int($1.string ?? "") ?? $1.int ?? 0) }
            }
            // The server has taken every shard (and so loaded the fires) when it holds every lease.
            for _ in 0..<200 {
                let held = try await keyed.pipeline(keys.map { ["GET", $0.lease] }).filter {
                    ($0.string ?? "").hasPrefix("gateway-1/")
                }.count
                if held == shards { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(300))
            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setSendHighWaterMark(0)
            try push.connect("tcp://127.0.0.1:\(server.port("BITTEN_CONFIRM_PORT"))")
            try await Task.sleep(for: .milliseconds(300))
            let perServerBefore = servers.map(ServerUnderTest.redisCPUSeconds)
            let aofBefore = servers.map(ServerUnderTest.redisAOF)
            let (serverCPU, redisCPUBefore) = (server.cpuSeconds(), redisCPU())
            let (machineBefore, benchBefore) = (MachineCPU.now(), ProcessStats.cpuSeconds ?? 0)
            for connection in servers { _ = try connection.command(["CONFIG", "RESETSTAT"]) }
            let probes = try (redisCluster?.servers.map(\.url) ?? single.map { [$0.url] } ?? []).map {
                try RedisPingProbe(url: $0)
            }
            let start = Date()
            for i in 0..<trades {
                let uuid = uuids[i % users]
                let ticket = 700_000_000 + i
                try push.send(
                    #"{"type":"confirmation","command_type":"fire","fire_id":"\#(fireIDs[i])","node_id":"NODE_1_1","user_uuid":"\#(uuid)","status":"success","ticket":\#(ticket),"price":1.08500,"lot":0.10,"message":"Trade executed successfully via DEALER","account":\#(80_000 + i % users),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.24 14:06:02"}"#
                )
            }
            for i in 0..<trades {
                // As the EA v2.05 answers a close: close price 0 (the balance it reports is unchanged here, so
                // with no market quote either the close is counted, unvalued).
                try push.send(
                    #"{"type":"close_confirmation","command_type":"close_ticket","node_id":"NODE_1_1","user_uuid":"\#(uuids[i % users])","status":"success","ticket":\#(700_000_000 + i),"close_price":0.00000,"lot":0.10,"message":"Position closed","account":\#(80_000 + i % users),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.24 15:12:44"}"#
                )
            }
            let sent = Date().timeIntervalSince(start)
            var total = 0
            while Date().timeIntervalSince(start) < 300 {
                total = try await sum { ["HGET", $0.statistics("global_trade_stats"), "total"] }
                if total >= trades { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let elapsed = Date().timeIntervalSince(start)
            let redisUsed = redisCPU() - redisCPUBefore
            let aofAfter = servers.map(ServerUnderTest.redisAOF)
            let aofWritten = zip(aofAfter, aofBefore).reduce(0) { $0 + $1.0.bytes - $1.1.bytes }
            let aofRewritten = zip(aofAfter, aofBefore).contains { $0.rewrites != $1.rewrites }
            let perServer = zip(servers.map(ServerUnderTest.redisCPUSeconds), perServerBefore).map { $0 - $1 }
            let serverUsed = server.cpuSeconds() - serverCPU
            let rest = MachineCPU.rest(
                from: machineBefore, to: MachineCPU.now(),
                known: serverUsed + redisUsed + (ProcessStats.cpuSeconds ?? 0) - benchBefore, over: elapsed)
            let probed = probes.map { $0.stop() }
            let probedFor = Date().timeIntervalSince(start)
            let pings = probed.flatMap { $0 }.sorted()
            // A request that comes at a random moment and finds Redis busy waits out the rest of that command: on
            // average Σ d² / 2T (a PING stuck behind a long command is one sample, however long it waited).
            let meanWait =
                probed.map { times in times.reduce(0) { $0 + $1 * $1 } / (2 * probedFor) }.reduce(0, +)
                / Double(max(1, probed.count))
            let stalled =
                probed.map { times in times.filter { $0 >= 0.010 }.reduce(0, +) }.reduce(0, +)
                / Double(max(1, probed.count))
            let streamLength = try await sum { ["XLEN", $0.confirmations] }
            let open = try await sum { ["SCARD", $0.openPositions] }
            push.close()
            // Where Redis spent its time (commands run inside scripts are counted too), costliest first, summed
            // over the servers.
            var stats: [String: (calls: Int, usec: Int)] = [:]
            for connection in servers {
                let text = try connection.command(["INFO", "commandstats"]).string ?? ""
                for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
                    let name = String(line.prefix { $0 != ":" })
                    func field(_ key: String) -> Int {
                        line.split(separator: ",").compactMap { part -> Int? in
                            let part = part.split(separator: ":").last ?? part
                            return part.hasPrefix(key + "=") ? Int(part.dropFirst(key.count + 1)) : nil
                        }.first ?? 0
                    }
                    let previous = stats[name] ?? (0, 0)
                    stats[name] = (previous.calls + field("calls"), previous.usec + field("usec"))
                }
            }
            for (name, value) in stats.sorted(by: { $0.value.usec > $1.value.usec }).prefix(14) {
                print(
                    String(
                        format: "redis: %@ calls=%d usec=%d per_call=%.2f", name, value.calls, value.usec,
                        Double(value.usec) / Double(max(1, value.calls))))
            }
            let place = cluster ? "a cluster of \(servers.count) primaries" : "one Redis"
            print(
                String(
                    format:
                        "trade: %d confirmations (%d fills + %d closes) of %d users over %d shards on %@ pushed in %.2f s",
                    trades * 2, trades, trades, users, shards, place, sent))
            print(
                String(
                    format:
                        "trade: all applied after %.2f s: %.0f confirmations/s end to end (ledger + lifecycle + statistics)",
                    elapsed, Double(trades * 2) / elapsed))
            // Redis runs commands on one thread: its CPU time per confirmation bounds the rate, whatever the server does.
            let perConfirmation = redisUsed / Double(trades * 2)
            print(
                String(
                    format:
                        "trade: Redis CPU %.1f µs per confirmation (%.0f%% of a core during the run, all servers): at most %.0f confirmations/s with Redis alone on a whole core; server CPU %.1f µs per confirmation",
                    perConfirmation * 1e6, redisUsed / elapsed * 100, 1 / max(perConfirmation, 1e-9),
                    serverUsed / Double(trades * 2) * 1e6))
            if let rest {
                print(
                    String(
                        format:
                            "trade: the rest of this machine during the run: %.0f%% of one core (other processes, the kernel's threads, an AOF rewrite's child), hypervisor steal %.0f%%",
                        rest.others, rest.steal))
            }
            if aofRewritten {
                // The fork that starts a rewrite stops Redis too (a PING above may have waited for it).
                let forks = servers.compactMap { connection in
                    (try? connection.command(["INFO", "stats"]).string).flatMap {
                        RedisConnection.infoField("latest_fork_usec", in: $0).flatMap { Int($0) }
                    }
                }
                print(
                    String(
                        format:
                            "trade: AOF bytes per confirmation not measured: Redis rewrote its append-only file during the run (its fork stopped Redis for %.1f ms)",
                        Double(forks.max() ?? 0) / 1000))
            } else if !noAOF {
                print(
                    String(
                        format:
                            "trade: AOF %.0f bytes per confirmation (what Redis wrote to its append-only file, all servers)",
                        Double(aofWritten) / Double(trades * 2)))
            }
            if cluster {
                print(
                    "trade: Redis CPU per primary: "
                        + perServer.map { seconds in
                            String(format: "%.0f%% of a core", seconds / elapsed * 100)
                        }.joined(separator: ", "))
            }
            // While one command runs, Redis answers nobody else: a fire's commit waits behind a long one.
            print(
                String(
                    format:
                        "trade: a PING to Redis every ms during the run (%d, all servers): p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d took 10 ms or more",
                    pings.count, Bench.percentile(pings, 0.5) * 1000, Bench.percentile(pings, 0.99) * 1000,
                    (pings.last ?? 0) * 1000, pings.filter { $0 >= 0.010 }.count))
            print(
                String(
                    format:
                        "trade: a request at a random moment waits %.2f ms for Redis on average; Redis was held %.0f%% of the run by waits of 10 ms or more",
                    meanWait * 1000, stalled / probedFor * 100))
            print(
                String(
                    format: "trade: per shard %.0f confirmations/s (%d shards on %@)",
                    Double(trades * 2) / elapsed / Double(shards), shards, place))
            print(
                "trade: \(streamLength) ledger stream entries (a batch each), statistics total \(total), open positions left \(open)"
            )
            // Whether the engine took the writer's entries as they were appended (decoded once) or read them back.
            let handed = try await server.counter("bitten_ledger_entries_total", labels: #"path="handed_over""#)
            let unoffered = try await server.counter("bitten_ledger_entries_total", labels: #"reason="not_offered""#)
            let refused = try await server.counter("bitten_ledger_entries_total", labels: #"reason="refused""#)
            let readFirst = try await server.counter("bitten_ledger_entries_total", labels: #"reason="read_first""#)
            let caughtUp = try await server.counter("bitten_ledger_caught_up_entries_total", labels: "")
            print(
                "trade: ledger entries handed over by the writer \(handed), read back from the stream \(unoffered + refused + readFirst) (\(unoffered) not offered: the stream did not end where the engine stood, \(caughtUp) of all read back by the engine catching up before a hand-over; \(readFirst) read before their hand-over came; \(refused) refused otherwise)"
            )
        }

        /// The users and one fire per trade, reserved and sent, stored by the trade engine's own store in the
        /// sharded schema, as the fire desk leaves them after the send. Returns the fire ids, trade by trade.
        func seed(_ client: RedisClient, uuids: [String]) async throws -> [String] {
            var book = (0..<shards).map { TradeShard(index: $0) }
            for uuid in uuids {
                book[ShardKeys.shard(of: uuid, count: shards)].save(
                    ShardUser(uuid: uuid, tier: .commander, riskOverride: ""),
                    fields: [
                        "uuid", uuid, "tier", "COMMANDER", "display_name", uuid, "risk_override", "", "created", "0",
                    ])
            }
            let variants = Tier.allCases.map {
                SizingChoice(
                    key: $0.rawValue + "|", slots: 1_000_000, lot: 0.1,
                    fields: ["lot", "0.1", "risk_percent", "1", "risk_amount", "100", "tier", $0.rawValue])
            }
            var ids: [String] = []
            for i in 0..<trades {
                let uuid = uuids[i % uuids.count]
                let shard = ShardKeys.shard(of: uuid, count: shards)
                let fire = FireInFlight(
                    id: "", userUUID: uuid, signalID: "SIG_BENCH_\(i)", symbol: "EURUSD", isBuy: true, stopLoss: 1.08,
                    takeProfit: 1.09, lot: 0, tickSize: 0.00001, tickValue: 1, deadline: 4_000_000_000)
                let fields = [
                    "kind", "fire", "signal_id", "SIG_BENCH_\(i)", "user_uuid", uuid, "symbol", "EURUSD", "direction",
                    "BUY",
                    "entry", "1.0852", "sl", "1.08", "tp", "1.09", "citadel_multiplier", "1", "balance", "10000",
                    "tick_size", "0.00001", "tick_value", "1", "created_at", "1764000000.1", "deadline", "4000000000",
                ]
                guard
                    case .reserved(let id, _) = book[shard].reserve(
                        fire, variants: variants, signalExpiresAt: 4_000_000_000,
                        date: "20261205", fields: fields)
                else {
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
                try await store.commit(
                    book[index].takeChanges(), sequence: book[index].book.sequence, lastApplied: nil, token: token)
                try await store.release(token: token)
            }
            return ids
        }
    }
}
