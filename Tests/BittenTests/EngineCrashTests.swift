import BittenCore
import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Redis
import Testing
import ZeroMQ

extension EndToEnd {
    /// The trade engine's owner killed with SIGKILL while confirmations stream in, and started again on the
    /// same Redis: what the dead process had accepted comes back from its journal, the new run loads every
    /// shard as last committed and replays its ledger from the checkpoint, so every confirmation counts
    /// exactly once.
    @Suite("Trade engine: SIGKILL mid-batch and restart", .serialized)
    struct EngineCrashTests {
        static let users = (0..<40).map { "user_crash_\($0)" }
        static let trades = 3_000

        /// Users and one sent fire per trade, stored in the sharded schema through the engine's own store (as
        /// the fire desk leaves them), before any `bitten` runs. Returns the fire ids.
        func seed(_ url: String) async throws -> [String] {
            let client = RedisClient(url: try RedisURL(parsing: url), poolSize: 1, logger: Logger(label: "bitten.test"))
            defer { client.shutdown() }
            var shards = (0..<TradeKeys.shards).map { TradeShard(index: $0) }
            for uuid in Self.users {
                shards[ShardKeys.shard(of: uuid, count: TradeKeys.shards)].save(
                    ShardUser(uuid: uuid, tier: .commander, riskOverride: ""),
                    fields: ["display_name", uuid, "created", "0"])
            }
            let variants = Tier.allCases.map {
                SizingChoice(
                    key: $0.rawValue + "|", slots: 1_000, lot: 0.1, fields: ["lot", "0.1", "tier", $0.rawValue])
            }
            var ids: [String] = []
            for i in 0..<Self.trades {
                let uuid = Self.users[i % Self.users.count]
                let index = ShardKeys.shard(of: uuid, count: TradeKeys.shards)
                let fire = FireInFlight(
                    id: "", userUUID: uuid, signalID: "SIG_CRASH_\(i)", symbol: "EURUSD", isBuy: true, stopLoss: 1.08,
                    takeProfit: 1.09, lot: 0, tickSize: 0.00001, tickValue: 1, deadline: 4_000_000_000)
                guard
                    case .reserved(let id, _) = shards[index].reserve(
                        fire, variants: variants, signalExpiresAt: 4_000_000_000,
                        date: "20261205", fields: ["kind", "fire"])
                else {
                    throw TestSupportError("fire \(i) not reserved")
                }
                shards[index].sent(id, at: 1_000, deadline: 4_000_000_000)
                ids.append(id)
            }
            for index in 0..<TradeKeys.shards {
                let store = ShardStore(redis: client, shard: index)
                let token = try #require(try await store.acquire(instance: "seed", boot: "1", ttl: .seconds(30)))
                try await store.commit(
                    shards[index].takeChanges(), sequence: shards[index].book.sequence, lastApplied: nil, token: token)
                try await store.release(token: token)
            }
            return ids
        }

        func statisticsTotal(_ redis: RedisConnection) throws -> Int {
            try TradeKeys.all.reduce(0) {
                $0 + (Int(try redis.command(["HGET", $1.statistics("global_trade_stats"), "total"]).string ?? "") ?? 0)
            }
        }

        /// Every shard's committed checkpoint is its ledger's last entry.
        func caughtUp(_ redis: RedisConnection) throws -> Bool {
            try TradeKeys.all.allSatisfy { keys in
                let last = try redis.command(["XREVRANGE", keys.confirmations, "+", "-", "COUNT", "1"]).array?.first?
                    .array?.first?.string
                return try last == nil || redis.command(["HGET", keys.state, "checkpoint"]).string == last
            }
        }

        @Test func killedMidBatchAndRestartedCountsEveryConfirmationOnce() async throws {
            let redisServer = try RedisServerProcess(appendOnly: true)
            defer { redisServer.stop() }
            let ids = try await seed(redisServer.url)
            let environment = [
                "BITTEN_REDIS_URL": redisServer.url, "BITTEN_GATEWAY_ID": "crash",
                "BITTEN_MARKET_CLOSED_SILENCE": "false",
            ]
            let first = try BittenProcess(
                arguments: ["run", "trade", "confirmations", "nodes", "http"], environment: environment)
            try await first.waitUntilHealthy()
            let redis = try RedisConnection(url: RedisURL(parsing: redisServer.url))
            #expect(
                try await eventually {
                    try TradeKeys.all.allSatisfy {
                        (try redis.command(["GET", $0.lease]).string ?? "").hasPrefix("crash/")
                    }
                }, "\(first.logTail())")

            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setLinger(.seconds(5))
            try push.setSendHighWaterMark(0)
            try push.connect("tcp://127.0.0.1:\(first.confirmPort)")
            defer { push.close() }
            for i in 0..<Self.trades {
                let uuid = Self.users[i % Self.users.count]
                try push.send(
                    #"{"type":"confirmation","command_type":"fire","fire_id":"\#(ids[i])","node_id":"NODE_1_1","user_uuid":"\#(uuid)","status":"success","ticket":\#(800_000 + i),"price":1.08500,"lot":0.10,"message":"Trade executed","account":\#(81_000 + i % Self.users.count),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.12.05 14:06:02"}"#
                )
            }
            for i in 0..<Self.trades {
                let uuid = Self.users[i % Self.users.count]
                // As the EA v2.05 answers a close: close price 0 (valued here by the balance it reports).
                try push.send(
                    #"{"type":"close_confirmation","command_type":"close_ticket","node_id":"NODE_1_1","user_uuid":"\#(uuid)","status":"success","ticket":\#(800_000 + i),"close_price":0.00000,"lot":0.10,"message":"Position closed","account":\#(81_000 + i % Self.users.count),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.12.05 15:12:44"}"#
                )
            }
            // Killed as soon as the confirmation service has accepted every confirmation (journaled, queued for
            // the ledger) and the first closes are counted: mid-flow, with entries in memory, in the ledger,
            // applied and committing.
            #expect(
                try await eventually(.seconds(30)) {
                    let (_, health) = try await HTTP.json(first.httpBase + "/health")
                    let service = (health["services"] as? [[String: Any]] ?? []).first {
                        $0["name"] as? String == "confirmations"
                    }
                    return service?["messages_in"] as? Int ?? 0 >= 2 * Self.trades
                })
            #expect(try await eventually(.seconds(30)) { try statisticsTotal(redis) > 0 })
            kill(first.pid, SIGKILL)
            let atKill = try statisticsTotal(redis)
            print("engine crash: SIGKILL with \(atKill) of \(Self.trades) closes counted")

            // The same instance again, on the same ports (the PUSH socket delivers what it still holds).
            let second = try BittenProcess(
                arguments: ["run", "trade", "confirmations", "nodes", "http"], environment: environment,
                dataDir: first.dataDir, ports: first.ports)
            defer { second.terminateAndWait() }
            try await second.waitUntilHealthy()
            var stable = 0
            #expect(
                try await eventually(.seconds(60)) {
                    // Caught up, and nothing more arriving.
                    let length = try TradeKeys.ledgerLength(redis)
                    try await Task.sleep(for: .milliseconds(300))
                    stable = try caughtUp(redis) && length == TradeKeys.ledgerLength(redis) ? stable + 1 : 0
                    return stable >= 3
                }, "\(second.logTail())")

            // Nothing accepted was lost (what waited in memory came back from the journal), and what the ledger
            // holds is what counted: each close of a filled position once, nothing twice.
            let ledger = try TradeKeys.ledgerEntries(redis)
            #expect(
                ledger.count == 2 * Self.trades,
                "\(ledger.count) of \(2 * Self.trades) accepted confirmations in the ledger")
            var filled: Set<String> = []
            var closes: [String] = []
            for entry in ledger {
                guard let payload = entry["payload"],
                    let ticket = payload.split(separator: "\"ticket\":").last?.prefix(6)
                else { continue }
                if entry["type"] == "confirmation" {
                    filled.insert(String(ticket))
                } else {
                    closes.append(String(ticket))
                }
            }
            #expect(Set(closes).count == closes.count, "a close in the ledger twice")
            let counted = closes.filter(filled.contains).count
            let total = try statisticsTotal(redis)
            #expect(
                total == counted,
                "\(total) counted, \(counted) closes of filled positions in the ledger (\(ledger.count) entries)")
            #expect(total >= atKill)
            var open = 0
            for keys in TradeKeys.all { open += try redis.command(["SCARD", keys.openPositions]).int ?? 0 }
            #expect(open == filled.count - counted, "\(open) open, \(filled.count) filled, \(counted) closed")
            print(
                "engine crash: \(ledger.count) confirmations in the ledger, \(filled.count) fills and \(counted) closes counted once after the restart"
            )
        }

        /// Confirmations streaming into the ledger (written by a confirmation process of their own) while the
        /// shards move: the first trade process is stopped (it commits what it applied and gives its leases
        /// back), the second takes every shard, loads it as committed and goes on from the checkpoint. Every
        /// confirmation is in the ledger and counts once.
        @Test func theShardsMoveToAnotherProcessUnderLoad() async throws {
            let redisServer = try RedisServerProcess(appendOnly: true)
            defer { redisServer.stop() }
            let ids = try await seed(redisServer.url)
            let shared = ["BITTEN_REDIS_URL": redisServer.url, "BITTEN_MARKET_CLOSED_SILENCE": "false"]
            let redis = try RedisConnection(url: RedisURL(parsing: redisServer.url))
            func holders() throws -> Set<String> {
                Set(
                    try TradeKeys.all.map {
                        String((try redis.command(["GET", $0.lease]).string ?? "").prefix { $0 != "/" })
                    })
            }
            let writer = try BittenProcess(
                arguments: ["run", "confirmations", "nodes", "http", "--gateway-id", "writer"], environment: shared)
            defer { writer.terminateAndWait() }
            let first = try BittenProcess(
                arguments: ["run", "trade", "http", "--gateway-id", "first"], environment: shared)
            defer { first.terminateAndWait() }
            try await writer.waitUntilHealthy()
            try await first.waitUntilHealthy()
            #expect(try await eventually { try holders() == ["first"] }, "\(first.logTail())")
            let second = try BittenProcess(
                arguments: ["run", "trade", "http", "--gateway-id", "second"], environment: shared)
            defer { second.terminateAndWait() }
            try await second.waitUntilHealthy()

            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setLinger(.seconds(5))
            try push.setSendHighWaterMark(0)
            try push.connect("tcp://127.0.0.1:\(writer.confirmPort)")
            defer { push.close() }
            var messages: [String] = []
            for i in 0..<Self.trades {
                let uuid = Self.users[i % Self.users.count]
                messages.append(
                    #"{"type":"confirmation","command_type":"fire","fire_id":"\#(ids[i])","node_id":"NODE_1_1","user_uuid":"\#(uuid)","status":"success","ticket":\#(800_000 + i),"price":1.08500,"lot":0.10,"message":"Trade executed","account":\#(81_000 + i % Self.users.count),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.12.05 14:06:02"}"#
                )
            }
            for i in 0..<Self.trades {
                let uuid = Self.users[i % Self.users.count]
                messages.append(
                    #"{"type":"close_confirmation","command_type":"close_ticket","node_id":"NODE_1_1","user_uuid":"\#(uuid)","status":"success","ticket":\#(800_000 + i),"close_price":0.00000,"lot":0.10,"message":"Position closed","account":\#(81_000 + i % Self.users.count),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.12.05 15:12:44"}"#
                )
            }
            // A steady stream over about three seconds; the first owner is stopped a third of the way in.
            var moved: ContinuousClock.Instant?
            for (chunk, start) in stride(from: 0, to: messages.count, by: 200).enumerated() {
                for message in messages[start..<min(messages.count, start + 200)] { try push.send(message) }
                // Stopped once it has applied and stored fills of its own, mid-stream.
                if chunk >= 10, moved == nil,
                    try TradeKeys.all.reduce(0, { $0 + (try redis.command(["SCARD", $1.openPositions]).int ?? 0) }) > 0
                {
                    kill(first.pid, SIGTERM)
                    moved = .now
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(moved != nil, "the first process stored no fill while the stream ran")
            #expect(try await eventually(.seconds(30)) { try holders() == ["second"] }, "\(second.logTail())")
            if let moved {
                print(
                    "shard move: every lease held by the second process \(ContinuousClock.now - moved) after the first was stopped"
                )
            }
            var stable = 0
            #expect(
                try await eventually(.seconds(60)) {
                    let length = try TradeKeys.ledgerLength(redis)
                    try await Task.sleep(for: .milliseconds(300))
                    let caught = try caughtUp(redis)
                    stable = length == 2 * Self.trades && caught ? stable + 1 : 0
                    return stable >= 3
                }, "\((try? TradeKeys.ledgerLength(redis)) ?? -1) in the ledger\n\(second.logTail())")
            // Every fill and every close once: all closes of filled positions count, nothing stays open.
            #expect(try statisticsTotal(redis) == Self.trades)
            var open = 0
            for keys in TradeKeys.all { open += try redis.command(["SCARD", keys.openPositions]).int ?? 0 }
            #expect(open == 0)
            let (_, health) = try await HTTP.json(second.httpBase + "/health")
            let engine = (health["services"] as? [[String: Any]] ?? []).first {
                $0["name"] as? String == "trade_engine"
            }
            #expect(
                (engine?["messages_in"] as? Int ?? 0) > 0,
                "the second process applied nothing: \(String(describing: engine))")
        }

        /// Two trade processes on one Redis: the first holds every shard and the second is refused what it does
        /// not own; when the first dies without a word, its leases run out and the second takes every shard
        /// over, with what the first committed.
        @Test func aSecondProcessTakesTheShardsOverWhenTheFirstDies() async throws {
            let redisServer = try RedisServerProcess(appendOnly: true)
            defer { redisServer.stop() }
            let shared = ["BITTEN_REDIS_URL": redisServer.url, "BITTEN_MARKET_CLOSED_SILENCE": "false"]
            let redis = try RedisConnection(url: RedisURL(parsing: redisServer.url))
            func holders() throws -> [String] {
                try TradeKeys.all.map {
                    String((try redis.command(["GET", $0.lease]).string ?? "").prefix { $0 != "/" })
                }
            }
            let first = try BittenProcess(
                arguments: ["run", "trade", "http"], environment: shared.merging(["BITTEN_GATEWAY_ID": "first"]) { $1 })
            defer { first.terminateAndWait() }
            try await first.waitUntilHealthy()
            #expect(try await eventually { try holders().allSatisfy { $0 == "first" } }, "\(first.logTail())")
            let second = try BittenProcess(
                arguments: ["run", "trade", "http"], environment: shared.merging(["BITTEN_GATEWAY_ID": "second"]) { $1 }
            )
            defer { second.terminateAndWait() }
            try await second.waitUntilHealthy()

            let (created, body) = try await HTTP.sendJSON(
                "POST", first.httpBase + "/users", body: #"{"uuid":"user_moved_1","tier":"MAJOR"}"#)
            #expect(created == 201, "\(body)")
            // Asked of the second, a user is saved by the first (through its shard's inbox).
            let (routed, answer) = try await HTTP.sendJSON(
                "POST", second.httpBase + "/users", body: #"{"uuid":"user_moved_2","tier":"MAJOR"}"#)
            #expect(routed == 201, "\(answer)")
            let (changed, update) = try await HTTP.sendJSON(
                "PUT", second.httpBase + "/users/user_moved_2", body: #"{"tier":"GENERAL"}"#)
            #expect(changed == 200 && update["tier"] as? String == "GENERAL", "\(update)")
            // Both saves were performed by the first, through its inbox (the second owns no shard).
            let (_, health) = try await HTTP.json(first.httpBase + "/health")
            let inbox = (health["services"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "trade_inbox" }
            #expect(inbox?["messages_in"] as? Int == 2, "\(String(describing: inbox))")
            #expect(try holders().allSatisfy { $0 == "first" })

            kill(first.pid, SIGKILL)
            let killed = ContinuousClock.now
            #expect(
                try await eventually(.seconds(30)) { try holders().allSatisfy { $0 == "second" } },
                "\(second.logTail())")
            print(
                "shard takeover: every lease held by the second process \(ContinuousClock.now - killed) after the first was killed"
            )
            #expect(
                try await eventually {
                    let (status, user) = try await HTTP.json(second.httpBase + "/users/user_moved_1")
                    return status == 200 && user["tier"] as? String == "MAJOR"
                })
            #expect(
                try await eventually {
                    try await HTTP.sendJSON(
                        "POST", second.httpBase + "/users", body: #"{"uuid":"user_moved_3","tier":"MAJOR"}"#
                    ).0 == 201
                }, "\(second.logTail())")
        }
    }
}
