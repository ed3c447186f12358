import BittenCore
import BittenTestSupport
import Foundation
import Logging
import Redis
import Testing

@testable import BittenServices

/// A trade shard's commits, lease and loading against a real redis-server, and the contract that the shard
/// path stores exactly what the ledger's Lua script stores for the same ledger entries.
@Suite("Trade shard store against real Redis")
struct ShardStoreTests {
    static let user = "user_shard_01"

    static func variants(slots: Int = 15) -> [SizingChoice] {
        Tier.allCases.map {
            SizingChoice(key: $0.rawValue + "|", slots: slots, lot: 1, fields: ["lot", "1", "tier", $0.rawValue])
        }
    }

    static func fire(_ signal: String, user: String = user) -> FireInFlight {
        var fire = FireInFlight(
            id: "", userUUID: user, signalID: signal, symbol: "EURUSD", isBuy: true, stopLoss: 1.099, takeProfit: 1.102,
            lot: 0, tickSize: 0.00001, tickValue: 1, deadline: 1130)
        fire.entry = 1.1  // as the fire desk sets it (the signal's entry, also in the record's fields)
        return fire
    }

    /// The fire record's other fields, as the fire desk writes them.
    static func fields(_ signal: String, user: String = user) -> [String] {
        [
            "kind", "fire", "signal_id", signal, "user_uuid", user, "symbol", "EURUSD", "direction", "BUY", "entry",
            "1.1",
            "sl", "1.099", "tp", "1.102", "tick_size", "0.00001", "tick_value", "1", "created_at", "1100", "deadline",
            "1130",
        ]
    }

    /// A Redis of its own, a client on it (the caller shuts it down) and shard 3's store whose lease `instance` took.
    static func ownedShard(
        _ instance: String, poolSize: Int = 1, ttl: Duration = .seconds(10), scripted: Bool = false
    ) async throws -> (server: RedisServerProcess, client: RedisClient, store: ShardStore, token: String) {
        let server = try RedisServerProcess()
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: poolSize, logger: Logger(label: "bitten.test"))
        let store = ShardStore(redis: client, shard: 3, scripted: scripted)
        guard let token = try await store.acquire(instance: instance, boot: "b1", ttl: ttl) else {
            client.shutdown()
            throw RedisError(.unexpectedReply, "shard 3's lease was not taken by \(instance)")
        }
        return (server, client, store, token)
    }

    /// A shard with the user and `count` fires reserved and sent.
    static func shardWithFires(_ count: Int, index: Int = 3) -> (TradeShard, [String]) {
        var shard = TradeShard(index: index)
        shard.save(
            ShardUser(uuid: user, tier: .commander, riskOverride: ""), fields: ["uuid", user, "tier", "COMMANDER"])
        var ids: [String] = []
        for i in 0..<count {
            guard
                case .reserved(let id, _) = shard.reserve(
                    fire("SIG_SH_\(i)"), variants: variants(), signalExpiresAt: 5000,
                    date: "20261205", fields: fields("SIG_SH_\(i)"))
            else { continue }
            shard.sent(id, at: 1100, deadline: 1130, fields: ["sent_at", "1100"])
            ids.append(id)
        }
        return (shard, ids)
    }

    @Test func everyKeyOfAShardIsInOneClusterSlot() {
        let keys = ShardKeys(shard: 7)
        let all = [
            keys.lease, keys.state, keys.users, keys.user("u"), keys.fire("F-1"), keys.firesInFlight, keys.firesRecent,
            keys.fired,
            keys.slots, keys.position(1), keys.openPositions, keys.userPositions("u"), keys.closedPositions("u"),
            keys.trade(1),
            keys.tradesRecent, keys.trades(symbol: "EURUSD"), keys.trades(account: 5), keys.trades(day: "2026-12-05"),
            keys.close(1), keys.closesInFlight, keys.balances, keys.statisticsIndex, keys.orphans, keys.confirmations,
            keys.statistics("global_trade_stats"), keys.statistics("symbol_stats:EURUSD"),
        ]
        #expect(Set(all.map(ClusterSlot.of)).count == 1)
        #expect(ClusterSlot.of(ShardKeys(shard: 8).lease) != ClusterSlot.of(keys.lease))
        // The seed's prefixes stay, so `SCAN position:*` finds them.
        #expect(
            keys.position(42) == "position:{t7}:42"
                && keys.statistics("symbol_stats:EURUSD") == "symbol_stats:{t7}:EURUSD")
        #expect(keys.statistics("global_trade_stats") == "global_trade_stats:{t7}")
        // The shard of a user is stable and spreads users.
        let spread = Set((0..<1000).map { ShardKeys.shard(of: "user_\($0)", count: 16) })
        #expect(
            spread.count == 16
                && ShardKeys.shard(of: "user_5512093", count: 16) == ShardKeys.shard(of: "user_5512093", count: 16))
    }

    /// A ledger stream entry holds a batch of confirmations, each length-prefixed: any text survives (JSON,
    /// separators, multi-byte characters); damaged text is refused, never misread.
    @Test func ledgerRecordsKeepEveryByteAndRefuseDamage() {
        let fields = [
            ("type", "close_confirmation"), ("payload", #"{"message":"Position closed: 5:x 3:é"}"#), ("quotes", ""),
            ("note", "m:1:2::"),
        ]
        let text = LedgerRecord.encode(fields)
        let decoded = LedgerRecord.decode(text)
        #expect(decoded?.map(\.0) == fields.map(\.0) && decoded?.map(\.1) == fields.map(\.1))
        for damaged in [String(text.dropLast()), "4:type", "x:1", "99999999999:a", text + "3"] {
            #expect(LedgerRecord.decode(damaged) == nil, "\(damaged)")
        }
        let entry = StreamEntry(
            id: "5-0", fields: [("m", text), ("m", LedgerRecord.encode([("type", "confirmation")])), ("m", "broken")])
        let messages = LedgerRecord.messages(of: entry)
        #expect(messages.map(\.id) == ["5-0#0", "5-0#1", "5-0#2"])
        #expect(messages[1]["type"] == "confirmation" && messages[2].fields.isEmpty)
        // An entry of plain fields (the position watcher's) is one message.
        let single = StreamEntry(id: "6-0", fields: [("type", "inferred_close")])
        #expect(LedgerRecord.messages(of: single) == [single])
    }

    /// A burst bigger than a script can take in one call (Lua hands at most ~8 000 values to a command):
    /// 5 000 fires reserved in one shard are committed whole, their long list and set commands in parts.
    @Test func aBurstOfFiresInOneShardIsOneCommit() async throws {
        let (server, client, store, token) = try await Self.ownedShard("burst")
        defer { client.shutdown() }
        var shard = TradeShard(index: 3)
        for u in 0..<5_000 {
            shard.save(
                ShardUser(uuid: "user_burst_\(u)", tier: .recruit, riskOverride: ""),
                fields: ["uuid", "user_burst_\(u)"])
        }
        for u in 0..<5_000 {
            _ = shard.reserve(
                Self.fire("SIG_BURST", user: "user_burst_\(u)"), variants: Self.variants(), signalExpiresAt: 5000,
                date: "20261205", fields: [])
        }
        let changes = shard.takeChanges()
        #expect(
            ShardStore.commands(for: changes, keys: store.keys, sequence: 5_000, lastApplied: nil).allSatisfy {
                $0.count <= 2_002
            })
        try await store.commit(changes, sequence: shard.book.sequence, lastApplied: nil, token: token)
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        #expect(try redis.command(["ZCARD", store.keys.firesInFlight]).int == 5_000)
        #expect(try redis.command(["HLEN", store.keys.slots]).int == 5_000)
        #expect(
            try redis.command(["ZREVRANGE", store.keys.firesRecent, "0", "0"]).array?.first?.string
                == "F-20261205-03-005000")
        let loaded = try await store.load()
        #expect(loaded.shard.book.fires.count == 5_000 && loaded.shard.users.count == 5_000)
        server.stop()
    }

    /// The owner renews its lease every few seconds while it commits: a renewal never aborts a commit (the
    /// transaction WATCHes the shard's state hash, which only a new owner's lease and the owner's commits touch).
    @Test func renewingTheLeaseNeverAbortsACommit() async throws {
        let (server, client, store, token) = try await Self.ownedShard("renew", poolSize: 2, ttl: .seconds(30))
        defer { client.shutdown() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for _ in 0..<400 {
                    let renewed = try await store.acquire(instance: "renew", boot: "b1", ttl: .seconds(30))
                    #expect(renewed == token)
                }
            }
            group.addTask {
                var shard = TradeShard(index: 3)
                for i in 0..<400 {
                    shard.save(ShardUser(uuid: "user_renew_\(i)", tier: .recruit, riskOverride: ""), fields: [])
                    try await store.commit(shard.takeChanges(), sequence: 0, lastApplied: "\(i)-0", token: token)
                }
            }
            try await group.waitForAll()
        }
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        #expect(try redis.command(["SCARD", store.keys.users]).int == 400)
        server.stop()
    }

    /// Both ways of committing (MULTI/EXEC with the lease WATCHed on one server; the fenced script a cluster uses).
    /// A key of another type where a commit writes (written by hand): Redis refuses that one command, the rest
    /// of the commit is stored and the refusal is reported; the next commit goes through as usual.
    @Test(arguments: [false, true]) func aCommandRedisRefusesIsReportedAndTheRestIsStored(scripted: Bool) async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        let store = ShardStore(redis: client, shard: 3, scripted: scripted)
        let token = try #require(try await store.acquire(instance: "proc-a", boot: "b1", ttl: .seconds(30)))
        var (shard, ids) = Self.shardWithFires(2)
        let keys = ShardKeys(shard: 3)
        _ = try redis.command(["SET", keys.fire(ids[1]), "not a hash"])
        let refused = try await store.commit(
            shard.takeChanges(), sequence: shard.book.sequence, lastApplied: "7-0", token: token)
        #expect(
            refused.count >= 1
                && refused.allSatisfy { $0.shard == 3 && $0.command.hasPrefix("HSET " + keys.fire(ids[1])) },
            "\(refused)")
        #expect(refused.first?.error.contains("WRONGTYPE") == true)
        #expect(try redis.command(["HGET", keys.fire(ids[0]), "state"]).string == "sent")
        #expect(try redis.command(["HGET", keys.state, "checkpoint"]).string == "7-0")
        #expect(try redis.command(["EXISTS", keys.user(Self.user)]).int == 1)
        // The next commit of the shard is stored whole.
        shard.save(
            ShardUser(uuid: Self.user, tier: .major, riskOverride: ""), fields: ["uuid", Self.user, "tier", "MAJOR"])
        #expect(
            try await store.commit(shard.takeChanges(), sequence: shard.book.sequence, lastApplied: "8-0", token: token)
                .isEmpty)
        #expect(try redis.command(["HGET", keys.user(Self.user), "tier"]).string == "MAJOR")
    }

    @Test(arguments: [false, true]) func theFencedOwnerCannotWrite(scripted: Bool) async throws {
        let server = try RedisServerProcess()
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let store = ShardStore(redis: client, shard: 3, scripted: scripted)
        let first = try #require(try await store.acquire(instance: "proc-a", boot: "b1", ttl: .seconds(30)))
        #expect(first == "proc-a/b1|1")
        #expect(try await store.acquire(instance: "proc-b", boot: "b1", ttl: .seconds(5)) == nil, "held by proc-a")
        #expect(
            try await store.acquire(instance: "proc-a", boot: "b1", ttl: .seconds(30)) == first, "renewed, same fence")
        // proc-a pauses past its lease (made to end now); proc-b takes the shard with a higher fence.
        let admin = try RedisConnection(url: RedisURL(parsing: server.url))
        _ = try admin.command(["PEXPIRE", ShardKeys(shard: 3).lease, "1"]).orThrow()
        try await Task.sleep(for: .milliseconds(20))
        let second = try #require(try await store.acquire(instance: "proc-b", boot: "b1", ttl: .seconds(5)))
        #expect(second == "proc-b/b1|2")
        var (shard, _) = Self.shardWithFires(1)
        let changes = shard.takeChanges()
        await #expect(throws: ShardStore.Fenced.self) {
            try await store.commit(changes, sequence: shard.book.sequence, lastApplied: "5-0", token: first)
        }
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        #expect(
            try redis.command(["EXISTS", ShardKeys(shard: 3).user(Self.user)]).int == 0,
            "nothing of the fenced commit was written")
        #expect(try redis.command(["HGET", ShardKeys(shard: 3).state, "checkpoint"]).string == nil)
        try await store.commit(changes, sequence: shard.book.sequence, lastApplied: "5-0", token: second)
        #expect(try redis.command(["HGET", ShardKeys(shard: 3).state, "checkpoint"]).string == "5-0")
        // A restart of proc-b (a new boot) takes the shard back at once and fences the old run.
        let restarted = try #require(try await store.acquire(instance: "proc-b", boot: "b2", ttl: .seconds(5)))
        #expect(restarted == "proc-b/b2|3")
        await #expect(throws: ShardStore.Fenced.self) {
            try await store.commit([], sequence: 0, lastApplied: "6-0", token: second)
        }
        // Released, the shard is free for anyone (with the next fence).
        try await store.release(token: restarted)
        #expect(try await store.acquire(instance: "proc-a", boot: "b1", ttl: .seconds(5)) == "proc-a/b1|4")
    }

    @Test func aLoadedShardIsTheShardThatWasCommitted() async throws {
        let (server, client, store, token) = try await Self.ownedShard("proc-a")
        defer { client.shutdown() }
        var (shard, ids) = Self.shardWithFires(6)
        _ = shard.apply(
            FireAnswer(
                fireID: ids[0], success: true, userUUID: Self.user, ticket: 501, price: 1.1, lot: 1, message: "ok",
                account: 55501, balance: 10_000, at: 1110), streamID: "1-1")
        _ = shard.apply(
            FireAnswer(
                fireID: ids[1], success: true, userUUID: Self.user, ticket: 502, price: 1.1, lot: 1, message: "ok",
                account: 55501, balance: 10_000, at: 1111), streamID: "1-2")
        _ = shard.apply(
            FireAnswer(
                fireID: ids[2], success: false, userUUID: Self.user, ticket: 0, price: 0, lot: 0, message: "no money",
                account: 55501, balance: 10_000, at: 1112), streamID: "1-3")
        _ = shard.apply(
            CloseAnswer(
                ticket: 501, success: true, closePrice: 0, message: "Position closed", account: 55501,
                userUUID: Self.user, commandType: "close_ticket", balance: 10_025, quotes: "EURUSD:1.10025:1.1003:own",
                at: 1200), streamID: "1-4")
        _ = shard.requestClose(ticket: 502, command: "close_ticket", at: 1201, deadline: 1231)
        _ = shard.expire(at: 1130, reason: "no answer")
        try await store.commit(shard.takeChanges(), sequence: shard.book.sequence, lastApplied: "1-4", token: token)

        let loaded = try await store.load()
        #expect(loaded.checkpoint == "1-4")
        #expect(loaded.shard.book.sequence == shard.book.sequence)
        #expect(loaded.shard.users == shard.users)
        #expect(loaded.shard.book.positions.positions == shard.book.positions.positions)
        #expect(loaded.shard.book.positions.statistics == shard.book.positions.statistics)
        #expect(loaded.shard.book.positions.balances[55501]?.balance == 10_025)
        #expect(loaded.shard.closes == shard.closes)
        // Fires still open to an answer come back (timed out: a late answer fills them); settled ones stay stored only.
        let open = shard.book.fires.filter { !$0.value.state.isFinal }
        #expect(loaded.shard.book.fires == open)
        for i in 0..<6 { #expect(loaded.shard.book.firedBy(signalID: "SIG_SH_\(i)", user: Self.user) == ids[i]) }
        #expect(loaded.shard.book.slotsUsed(Self.user) == shard.book.slotsUsed(Self.user))
        // Going on from the loaded shard: a late fill of a timed-out fire, and the next id follows on.
        var next = loaded.shard
        #expect(
            next.apply(
                FireAnswer(
                    fireID: ids[3], success: true, userUUID: Self.user, ticket: 503, price: 1.1, lot: 1, message: "ok",
                    account: 55501, balance: 10_025, at: 1300), streamID: "1-5") == "ok")
        guard
            case .reserved(let id, _) = next.reserve(
                Self.fire("SIG_SH_NEW"), variants: Self.variants(), signalExpiresAt: 5000,
                date: "20261205", fields: [])
        else {
            Issue.record("not reserved")
            return
        }
        #expect(id == "F-20261205-03-000007")
    }

    /// One ledger with every kind of answer the EA v2.05 gives (fills, one below its stop, a rejection, closes
    /// at price 0 with quotes, `Position not found`, a `close_all` answered once with ticket 0, a stop the
    /// market crossed, a repeat), applied by the shard and committed: every record says how it closed, and
    /// the statistics are the sum of the trades. (Until the engine replaced it, the ledger's Lua script was
    /// held to store exactly the same records for these entries.)
    @Test(arguments: [false, true]) func aMixedLedgerStoresEveryKindOfClose(scripted: Bool) async throws {
        let sharded = try RedisServerProcess()
        let lua = try RedisConnection(url: RedisURL(parsing: sharded.url))
        var (shard, ids) = Self.shardWithFires(8)
        let keys = ShardKeys(shard: 3)
        var random = SplitMix64(seed: 23)
        func fill(_ i: Int, price: Double) -> String {
            #"{"type":"confirmation","command_type":"fire","fire_id":"\#(ids[i])","node_id":"NODE_55501_1","user_uuid":"\#(Self.user)","status":"success","ticket":\#(600 + i),"price":\#(String(format: "%.5f", price)),"lot":1.00,"message":"Trade executed successfully","account":55501,"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.12.05 10:00:00"}"#
        }
        func close(
            _ ticket: Int, status: String = "success", message: String = "Position closed successfully",
            command: String = "close_ticket",
            balance: Double
        ) -> String {
            #"{"type":"close_confirmation","command_type":"\#(command)","node_id":"NODE_55501_1","user_uuid":"\#(Self.user)","status":"\#(status)","ticket":\#(ticket),"close_price":0.00000,"lot":1.00,"message":"\#(message)","account":55501,"currency":"USD","balance":\#(String(format: "%.2f", balance)),"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.12.05 11:00:00"}"#
        }
        var entries: [[(String, String)]] = []
        func add(_ type: String, _ payload: String, at: Int, quotes: String = "") {
            var fields = [("type", type), ("user_uuid", Self.user), ("received_at", String(at)), ("payload", payload)]
            if !quotes.isEmpty { fields.append(("quotes", quotes)) }
            entries.append(fields)
        }
        // Fills: 0…6 (1 below its stop: dropped), 7 rejected.
        for i in 0..<7 {
            add(
                "confirmation", fill(i, price: i == 1 ? 1.0985 : 1.1 + Double(random.next() % 20) / 100_000),
                at: 1110 + i)
        }
        add(
            "confirmation",
            #"{"type":"confirmation","command_type":"fire","fire_id":"\#(ids[7])","node_id":"NODE_55501_1","user_uuid":"\#(Self.user)","status":"failed","ticket":0,"price":0.00000,"lot":1.00,"message":"Not enough money","account":55501,"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.12.05 10:00:00"}"#,
            at: 1120)
        var balance = 10_000.0
        for (n, ticket) in [600, 601, 602].enumerated() {
            let profit = Double(Int(random.next() % 81) - 40)
            balance += profit + (n == 1 ? 0.35 : 0)
            let bid = String(format: "%.5f", 1.1 + profit / 100_000)
            add("close_confirmation", close(ticket, balance: balance), at: 1200 + n, quotes: "EURUSD:\(bid):\(bid):own")
        }
        add(
            "close_confirmation", close(603, status: "failed", message: "Position not found", balance: balance),
            at: 1210,
            quotes: "EURUSD:1.10011:1.10013:any")
        entries.append([
            ("type", InferredClose.type), ("user_uuid", Self.user), ("ticket", "604"), ("reason", "stop_loss"),
            ("price", "1.099"), ("received_at", "1220"), ("entry_id", "watcher:604"),
        ])
        balance += 12.5
        add(
            "close_confirmation", close(0, message: "All positions closed", command: "close_all", balance: balance),
            at: 1230,
            quotes: "EURUSD:1.10020:1.10022:own")
        add("close_confirmation", close(600, balance: balance), at: 1240, quotes: "EURUSD:1.1:1.1:own")  // a repeat
        for fields in entries { _ = try lua.xadd("stream:confirmations", fields: fields) }
        let stored = try lua.xrange("stream:confirmations")
        var outcomes: [String] = []
        for entry in stored {
            let event = try #require(LedgerEvent(entry: entry))
            outcomes.append(shard.apply(event, streamID: entry.id))
        }
        #expect(
            outcomes == [
                "ok", "ok:sl_dropped", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok:2",
                "duplicate",
            ])
        let client = RedisClient(
            url: try RedisURL(parsing: sharded.url), poolSize: 1, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let store = ShardStore(redis: client, shard: 3, scripted: scripted)
        let token = try #require(try await store.acquire(instance: "mixed", boot: "b1", ttl: .seconds(10)))
        try await store.commit(
            shard.takeChanges(), sequence: shard.book.sequence, lastApplied: stored.last?.id, token: token)
        let redis = lua
        var net = 0.0
        let how: [Int: (String, String)] = [
            600: ("requested", "market"), 601: ("requested", "market"), 602: ("requested", "market"),
            603: ("closed_at_broker", "market"), 604: ("stop_loss", "inferred"),
            605: ("close_all", "market"), 606: ("close_all", "market"),
        ]
        for ticket in 600...606 {
            let position = try #require(try redis.command(["HGETALL", keys.position(ticket)]).hash)
            #expect(
                position["status"] == "closed" && position["close_reason"] == how[ticket]?.0, "\(ticket): \(position)")
            #expect(position["close_price_source"] == how[ticket]?.1, "\(ticket): \(position)")
            let trade = try redis.command(["HGETALL", keys.trade(ticket)]).hash ?? [:]
            #expect(trade == position, "the trade record is the closed position")
            net += Double(position["profit"] ?? "") ?? .nan
        }
        // The crossed stop: 1 lot from 1.1 (or the fill) down to 1.099.
        let stopped = try #require(try redis.command(["HGETALL", keys.position(604)]).hash)
        let open = try #require(Double(stopped["open_price"] ?? ""))
        #expect(stopped["profit"] == String(format: "%.2f", (1.099 - open) * 100_000))
        // The fill below its stop: opened without it, and said so.
        #expect(
            try redis.command(["HMGET", keys.position(601), "sl", "sl_dropped", "sl_requested"]).array?.compactMap(
                \.string) == ["0", "1", "1.099"])
        #expect(try redis.command(["HGET", keys.fire(ids[7]), "state"]).string == "rejected")
        #expect(try redis.command(["HGET", keys.fire(ids[0]), "state"]).string == "filled")
        for key in [
            "global_trade_stats", "symbol_stats:EURUSD", "account_stats_trades:55501", "user_stats:\(Self.user)",
        ] {
            let stats = TradeStats(hash: try #require(try redis.command(["HGETALL", keys.statistics(key)]).hash))
            #expect(stats.total == 7 && abs(stats.net - net) < 0.001, "\(key)")
        }
        #expect(try redis.command(["HGET", keys.balances, "55501"]).string == String(format: "%.2f", balance) + "|0")
        #expect(try redis.command(["SCARD", keys.openPositions]).int == 0)
        #expect(try redis.command(["HGET", keys.slots, Self.user]).string == "0")
        #expect(try redis.command(["HGET", keys.state, "checkpoint"]).string == stored.last?.id)
        sharded.stop()
    }
}
