import BittenCore
import BittenTestSupport
import Foundation
import Logging
import Redis
import Testing

@testable import BittenServices

/// A commit changes each collection key (open-ticket sets, in-flight sorted sets, fired markers) with one add and
/// one remove command, not one command per event, and Redis ends up as it would after the events one by one.
@Suite("A shard commit's set members, once per key")
struct ShardCommitMembersTests {
    static func writes(_ commands: [[String]], _ verb: String, _ key: String) -> [[String]] {
        commands.filter { $0.count > 1 && $0[0] == verb && $0[1] == key }
    }

    @Test func eachCollectionKeyIsChangedOncePerCommitWithEveryMembersLastChange() async throws {
        let (server, client, store, token) = try await ShardStoreTests.ownedShard("members")
        defer { client.shutdown() }
        let keys = store.keys
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        func members(_ command: [String]) throws -> Set<String> {
            Set(try redis.command(command).array?.compactMap(\.string) ?? [])
        }

        // Three fires reserved and sent: one ZADD of all three, one HSET of their markers.
        var (shard, ids) = ShardStoreTests.shardWithFires(3)
        try #require(ids.count == 3)
        let first = shard.takeChanges()
        let reserved = ShardStore.commands(for: first, keys: keys, sequence: 3, lastApplied: nil)
        let adds = Self.writes(reserved, "ZADD", keys.firesInFlight)
        #expect(
            adds.count == 1 && Set(stride(from: 3, to: adds.first?.count ?? 0, by: 2).map { adds[0][$0] }) == Set(ids))
        #expect(Self.writes(reserved, "HSET", keys.fired).count == 1)
        try await store.commit(first, sequence: shard.book.sequence, lastApplied: nil, token: token)
        #expect(try members(["ZRANGE", keys.firesInFlight, "0", "-1"]) == Set(ids))
        #expect(try redis.command(["HLEN", keys.fired]).int == 3)

        // Two fills (tickets 900 and 901) and the close of 900, all in one commit.
        for (i, id) in ids.prefix(2).enumerated() {
            _ = shard.apply(
                FireAnswer(
                    fireID: id, success: true, userUUID: ShardStoreTests.user, ticket: 900 + i, price: 1.1, lot: 1,
                    message: "Trade executed", account: 55501, balance: 10_000, at: 1101), streamID: "1-\(i)")
        }
        #expect(shard.crossed(ticket: 900, level: 1.102, reason: "take_profit", at: 1102) == "ok")
        let second = shard.takeChanges()
        let filled = ShardStore.commands(for: second, keys: keys, sequence: 4, lastApplied: nil)
        for key in [keys.openPositions, keys.userPositions(ShardStoreTests.user)] {
            // 900 was added and removed in this commit: its last change, the removal, is the one written.
            #expect(Self.writes(filled, "SADD", key).map { Array($0.dropFirst(2)) } == [["901"]])
            #expect(Self.writes(filled, "SREM", key).map { Array($0.dropFirst(2)) } == [["900"]])
        }
        let removed = Self.writes(filled, "ZREM", keys.firesInFlight)
        #expect(removed.count == 1 && Set(removed.first?.dropFirst(2) ?? []) == Set(ids.prefix(2)))
        try await store.commit(second, sequence: shard.book.sequence, lastApplied: "1-1", token: token)

        #expect(try members(["SMEMBERS", keys.openPositions]) == ["901"])
        #expect(try members(["SMEMBERS", keys.userPositions(ShardStoreTests.user)]) == ["901"])
        #expect(try members(["ZRANGE", keys.firesInFlight, "0", "-1"]) == [ids[2]])
        #expect(try redis.command(["HLEN", keys.fired]).int == 3)
        #expect(try redis.command(["HGET", keys.position(900), "status"]).string == "closed")

        // A new owner reads back the open position and the fire still in flight.
        let loaded = try await store.load()
        #expect(Set(loaded.shard.book.positions.positions.keys) == [901])
        #expect(Set(loaded.shard.book.fires.keys) == [ids[2]])
        server.stop()
    }

    /// The last change of a member wins, whatever came before it in the commit; a key changed only by removals
    /// gets no add, and sorted sets and hashes keep each member's latest score or value.
    @Test func aMembersLastChangeIsTheOneWritten() {
        var changes = ShardStore.MemberChanges()
        changes.add("s", .set, "a")
        changes.remove("s", .set, "a")
        changes.add("s", .set, "b")
        changes.remove("s", .set, "c")
        changes.add("s", .set, "c")
        changes.add("z", .sortedSet, "f1", "10")
        changes.add("z", .sortedSet, "f1", "20")
        changes.remove("z", .sortedSet, "f2")
        changes.add("h", .hash, "k1", "v1")
        changes.remove("h", .hash, "k1")
        changes.remove("r", .set, "x")
        #expect(
            changes.commands == [
                ["SADD", "s", "b", "c"], ["SREM", "s", "a"], ["ZADD", "z", "20", "f1"], ["ZREM", "z", "f2"],
                ["HDEL", "h", "k1"], ["SREM", "r", "x"],
            ])
    }
}
