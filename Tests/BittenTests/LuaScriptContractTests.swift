import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Redis
import Testing

/// One contract test per Lua script (`Sources/BittenServices/Storage/Scripts`), called directly against real Redis
/// with the keys and arguments its header names. (The ledger append script has its own suite,
/// `ConfirmationAppendScriptTests`.)
@Suite struct LuaScriptContractTests {
    struct Redis {
        let server: RedisServerProcess
        let client: RedisClient
        let connection: RedisConnection

        init() throws {
            server = try RedisServerProcess()
            client = RedisClient(
                url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "bitten.test"))
            connection = try RedisConnection(url: RedisURL(parsing: server.url))
        }

        func stop() {
            client.shutdown()
            server.stop()
        }

        func run(_ script: RedisScript, _ keys: [String], _ args: [String]) async throws -> RedisReply {
            try await client.evaluate(script, keys: keys, args: args)
        }
    }

    @Test func everyScriptIsAResourceThatNamesItsKeys() {
        for script in [
            LuaScripts.appendConfirmations, LuaScripts.acquireLease, LuaScripts.releaseLease, LuaScripts.commitFenced,
            LuaScripts.saveSignal, LuaScripts.setTradingControl, LuaScripts.holdLots, LuaScripts.resyncLots,
        ] {
            #expect(script.source.hasPrefix("--"))
            #expect(script.source.contains("KEYS[1]") && script.source.contains("-- Returns"))
        }
    }

    @Test func acquireLeaseTakesRenewsAndFencesByInstance() async throws {
        let redis = try Redis()
        defer { redis.stop() }
        let keys = ["shard:{t3}:lease", "shard:{t3}"]
        // Free: taken with fence 1.
        let first = try await redis.run(LuaScripts.acquireLease, keys, ["gw-a", "boot1", "10000"]).string
        #expect(first == "gw-a/boot1|1")
        // The same run renews: the same token, the time to live set again.
        _ = try redis.connection.command(["PEXPIRE", keys[0], "50"])
        #expect(try await redis.run(LuaScripts.acquireLease, keys, ["gw-a", "boot1", "10000"]).string == first)
        #expect((try redis.connection.command(["PTTL", keys[0]]).int ?? 0) > 5000)
        // Another instance waits (nil: a Lua false), and the fence did not move.
        #expect(try await redis.run(LuaScripts.acquireLease, keys, ["gw-b", "boot9", "10000"]).isNull)
        #expect(try redis.connection.command(["HGET", keys[1], "fence"]).string == "1")
        // A restart of the same instance (a new boot) takes it back at once, with the next fence.
        #expect(
            try await redis.run(LuaScripts.acquireLease, keys, ["gw-a", "boot2", "10000"]).string == "gw-a/boot2|2")
        // Once it expired, another instance takes it with the next fence.
        _ = try redis.connection.command(["DEL", keys[0]])
        #expect(
            try await redis.run(LuaScripts.acquireLease, keys, ["gw-b", "boot9", "10000"]).string == "gw-b/boot9|3")
    }

    @Test func holdLotsKeepsARunningTotalAndResyncLotsReplacesHoldsWithTheShardsFigure() async throws {
        let redis = try Redis()
        defer { redis.stop() }
        let key = "concentration:{lots}:symbol:EURUSD"
        _ = try await redis.run(LuaScripts.resyncLots, [key], ["0", "1.5", "0"])
        _ = try await redis.run(LuaScripts.resyncLots, [key], ["7", "2", "0"])
        let held = try await redis.run(LuaScripts.holdLots, [key], ["5", "0", "h:F-1-03-1", "1.5"]).array ?? []
        #expect(held.first?.int == 1 && held.count == 3, "3.5 + 1.5 = 5: at the limit, held")
        #expect(try redis.connection.command(["HGET", key, "total"]).string == "5")
        #expect(try redis.connection.command(["HGET", key, "h:F-1-03-1"]).string == "1.5")
        let refused = try await redis.run(LuaScripts.holdLots, [key], ["5", "0", "h:F-1-03-2", "0.01"]).array ?? []
        #expect(
            refused.first?.int == 0 && refused[1].int == 1 && refused.last?.string == "5",
            "past the limit: refused by key 1, nothing added")
        #expect(try redis.connection.command(["HEXISTS", key, "h:F-1-03-2"]).int == 0)
        #expect(try redis.connection.command(["TTL", key]).int == -1)
        // Shard 3 now counts the fire itself (1.5): its hold goes, the total stays 5.
        let total = try await redis.run(LuaScripts.resyncLots, [key], ["3", "1.5", "0", "h:F-1-03-1", "h:none"])
        let stillHeld = try redis.connection.command(["HEXISTS", key, "h:F-1-03-1"]).int
        #expect(total.string == "5" && stillHeld == 0)
        // The fire's position closes: shard 3 at 0; only a release of a hold: "" leaves the shards' fields.
        #expect(try await redis.run(LuaScripts.resyncLots, [key], ["3", "0", "0"]).string == "3.5")
        _ = try await redis.run(LuaScripts.holdLots, [key], ["5", "0", "h:F-1-00-9", "1"])
        #expect(try await redis.run(LuaScripts.resyncLots, [key], ["", "0", "0", "h:F-1-00-9"]).string == "3.5")
        // Everything at 0: the key goes.
        _ = try await redis.run(LuaScripts.resyncLots, [key], ["0", "0", "0"])
        #expect(try await redis.run(LuaScripts.resyncLots, [key], ["7", "0", "0"]).string == "0")
        #expect(try redis.connection.command(["EXISTS", key]).int == 0)
        let signal = "concentration:{lots}:signal:S"
        _ = try await redis.run(LuaScripts.holdLots, [signal], ["1", "600", "h:F-1-01-1", "0.2"])
        #expect((try redis.connection.command(["TTL", signal]).int ?? 0) > 500)
        // Several fires in one call on two keys, in order, each held on both or on neither: the symbol (limit 1)
        // takes 0.6, the second fire (0.5) would pass it and is refused by key 1 with nothing held on key 2; the
        // third (0.3) passes the symbol but the signal (limit 1, 0.2 held) has only 0.2 left after the first, so it
        // is refused by key 2; the fourth (0.1) fits both.
        let symbol = "concentration:{lots}:symbol:GBPUSD"
        let batch =
            try await redis.run(
                LuaScripts.holdLots, [symbol, signal],
                [
                    "1", "0", "1", "600", "h:F-1-02-1", "0.6", "h:F-1-02-2", "0.5", "h:F-1-02-3", "0.3", "h:F-1-02-4",
                    "0.1",
                ]
            ).array ?? []
        #expect(
            batch.map { $0.int.map(String.init) ?? $0.string ?? "?" } == [
                "1", "0", "", "0", "1", "0.6", "0", "2", "0.8", "1", "0", "",
            ])
        #expect(try redis.connection.command(["HGET", symbol, "total"]).string == "0.7")
        #expect(try redis.connection.command(["HGET", signal, "total"]).string == "0.9")
        for (key, field, there) in [
            (symbol, "h:F-1-02-2", 0), (signal, "h:F-1-02-2", 0), (symbol, "h:F-1-02-3", 0),
            (signal, "h:F-1-02-3", 0), (symbol, "h:F-1-02-4", 1), (signal, "h:F-1-02-4", 1),
        ] {
            #expect(try redis.connection.command(["HEXISTS", key, field]).int == there, "\(key) \(field)")
        }
    }

    @Test func releaseLeaseOnlyForItsHolder() async throws {
        let redis = try Redis()
        defer { redis.stop() }
        _ = try redis.connection.command(["SET", "shard:{t0}:lease", "gw-a/b|4"])
        #expect(try await redis.run(LuaScripts.releaseLease, ["shard:{t0}:lease"], ["gw-a/b|3"]).int == 1)
        #expect(try redis.connection.command(["GET", "shard:{t0}:lease"]).string == "gw-a/b|4")
        _ = try await redis.run(LuaScripts.releaseLease, ["shard:{t0}:lease"], ["gw-a/b|4"])
        #expect(try redis.connection.command(["EXISTS", "shard:{t0}:lease"]).int == 0)
    }

    @Test func commitFencedRunsEveryCommandOnlyForTheHolder() async throws {
        let redis = try Redis()
        defer { redis.stop() }
        let lease = "shard:{t1}:lease"
        _ = try redis.connection.command(["SET", lease, "gw-a/b|7"])
        let keys = [lease, "position:{t1}:1", "open_positions:{t1}"]
        let args = ["gw-a/b|7", "6", "HSET", keys[1], "status", "open", "lot", "0.1", "3", "SADD", keys[2], "1"]
        let reply = try await redis.run(LuaScripts.commitFenced, keys, args).array ?? []
        #expect(reply.first?.int == 2 && reply.last?.array?.isEmpty == true, "\(reply)")
        #expect(try redis.connection.command(["HGET", keys[1], "lot"]).string == "0.1")
        #expect(try redis.connection.command(["SISMEMBER", keys[2], "1"]).int == 1)
        // A command Redis refuses (a set command on the hash) is reported by position; the ones after it run.
        let mixed =
            try await redis.run(
                LuaScripts.commitFenced, keys, ["gw-a/b|7", "3", "SADD", keys[1], "x", "3", "SADD", keys[2], "2"]
            ).array ?? []
        let refused = mixed.last?.array ?? []
        #expect(mixed.first?.int == 2 && refused.count == 2 && refused[0].int == 1, "\(mixed)")
        #expect((refused.last?.string ?? "").contains("WRONGTYPE"), "\(mixed)")
        #expect(try redis.connection.command(["SISMEMBER", keys[2], "2"]).int == 1)
        // An old owner's token: refused with the holder named, nothing written.
        do {
            _ = try await redis.run(LuaScripts.commitFenced, keys, ["gw-a/b|6", "2", "DEL", keys[1]])
            Issue.record("an old owner's commit ran")
        } catch let error as RedisError {
            #expect(error.message.contains("FENCED gw-a/b|7"))
        }
        #expect(try redis.connection.command(["EXISTS", keys[1]]).int == 1)
    }

    @Test func saveSignalNeverOverwrites() async throws {
        let redis = try Redis()
        defer { redis.stop() }
        let key = ["signal:SIG_1"]
        #expect(
            try await redis.run(LuaScripts.saveSignal, key, ["600", "symbol", "EURUSD", "direction", "BUY"]).int == 1)
        #expect(try await redis.run(LuaScripts.saveSignal, key, ["600", "symbol", "GBPUSD"]).int == 0)
        #expect(try redis.connection.command(["HGET", key[0], "symbol"]).string == "EURUSD")
        let ttl = try redis.connection.command(["TTL", key[0]]).int ?? 0
        #expect(ttl > 590 && ttl <= 600)
    }
}
