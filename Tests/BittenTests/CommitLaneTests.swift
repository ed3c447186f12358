import BittenTestSupport
import Foundation
import Logging
import Redis
import Testing

@testable import BittenServices

/// The commit rounds' own connection on one server (`CommitLane`), against real Redis: the shards a round found its
/// own stay WATCHed until the next round, which then needs no check of its own, and the fence holds all the same (a
/// shard taken by another process in between is refused, nothing of it written).
@Suite("The commit lane keeps its shards WATCHed between rounds (real Redis)")
struct CommitLaneTests {
    struct Setup {
        let server: RedisServerProcess
        let client: RedisClient
        let lane: CommitLane
        let admin: RedisConnection

        func stop() {
            lane.shutdown()
            client.shutdown()
            server.stop()
        }
    }

    static func setUp() throws -> Setup {
        let server = try RedisServerProcess()
        let url = try RedisURL(parsing: server.url)
        return Setup(
            server: server, client: RedisClient(url: url, poolSize: 1, logger: Logger(label: "bitten.test")),
            lane: CommitLane(url: url), admin: try RedisConnection(url: url))
    }

    /// A round that writes `value` under the shard's own key and its state's sequence.
    static func round(_ store: ShardStore, token: String, value: Int) -> ShardStore.Pending {
        ShardStore.Pending(
            store: store,
            commands: [
                ["SET", "lane-test:{t\(store.keys.shard)}", String(value)],
                ["HSET", store.keys.state, "sequence", String(value)],
            ],
            token: token)
    }

    static func commit(_ pending: [ShardStore.Pending], _ setup: Setup) async -> [Result<
        [ShardStore.CommandFailure], any Error
    >] {
        await ShardStore.commit(pending, riders: [], redis: setup.client, lane: setup.lane)
    }

    /// Shards 3 and 4, both taken by proc-a: their stores and tokens.
    static func twoShards(_ setup: Setup) async throws -> (ShardStore, String, ShardStore, String) {
        let three = ShardStore(redis: setup.client, shard: 3)
        let four = ShardStore(redis: setup.client, shard: 4)
        let t3 = try #require(try await three.acquire(instance: "proc-a", boot: "b1", ttl: .seconds(30)))
        let t4 = try #require(try await four.acquire(instance: "proc-a", boot: "b1", ttl: .seconds(30)))
        return (three, t3, four, t4)
    }

    @Test func roundsAfterTheFirstNeedNoCheckOfTheirOwn() async throws {
        let setup = try Self.setUp()
        defer { setup.stop() }
        let (three, t3, four, t4) = try await Self.twoShards(setup)
        for value in 1...5 {
            let pending =
                value == 1
                ? [Self.round(three, token: t3, value: value)]
                : [
                    Self.round(
                        value.isMultiple(of: 2) ? four : three, token: value.isMultiple(of: 2) ? t4 : t3, value: value)
                ]
            for result in await Self.commit(pending, setup) { _ = try result.get() }
        }
        // The first round checked shard 3, the second shard 4 (not yet WATCHed); the three after needed no check.
        #expect(setup.lane.checkedRounds.load(ordering: .relaxed) == 2)
        #expect(try setup.admin.command(["GET", "lane-test:{t3}"]).string == "5")
        #expect(try setup.admin.command(["GET", "lane-test:{t4}"]).string == "4")
        #expect(Set(setup.lane.watched.keys) == [3, 4])
    }

    @Test func aShardTakenBetweenRoundsIsRefusedAndNothingOfItWritten() async throws {
        let setup = try Self.setUp()
        defer { setup.stop() }
        let three = ShardStore(redis: setup.client, shard: 3)
        let first = try #require(try await three.acquire(instance: "proc-a", boot: "b1", ttl: .seconds(30)))
        for result in await Self.commit([Self.round(three, token: first, value: 1)], setup) { _ = try result.get() }
        #expect(setup.lane.watched[3]?.token == first)
        // proc-a pauses past its lease; proc-b takes the shard (its fence bumps the state hash).
        _ = try setup.admin.command(["PEXPIRE", ShardKeys(shard: 3).lease, "1"]).orThrow()
        try await Task.sleep(for: .milliseconds(20))
        let second = try #require(try await three.acquire(instance: "proc-b", boot: "b1", ttl: .seconds(30)))
        let results = await Self.commit([Self.round(three, token: first, value: 2)], setup)
        #expect(throws: ShardStore.Fenced.self) { try results[0].get() }
        #expect(try setup.admin.command(["GET", "lane-test:{t3}"]).string == "1", "nothing of the fenced round")
        #expect(setup.lane.watched[3] == nil)
        // The new owner's round goes through.
        for result in await Self.commit([Self.round(three, token: second, value: 3)], setup) { _ = try result.get() }
        #expect(try setup.admin.command(["GET", "lane-test:{t3}"]).string == "3")
    }

    /// A shard WATCHed from an earlier round and taken by another process since: the round of the shards still held
    /// is checked afresh and stored, and the lost shard is WATCHed no more (its new owner's writes would otherwise
    /// fail every later round).
    @Test func aLostShardNotInTheRoundIsLeftOutOfTheWatch() async throws {
        let setup = try Self.setUp()
        defer { setup.stop() }
        let (three, t3, four, t4) = try await Self.twoShards(setup)
        let both = [Self.round(three, token: t3, value: 1), Self.round(four, token: t4, value: 1)]
        for result in await Self.commit(both, setup) { _ = try result.get() }
        _ = try setup.admin.command(["PEXPIRE", ShardKeys(shard: 4).lease, "1"]).orThrow()
        try await Task.sleep(for: .milliseconds(20))
        let theirs = try #require(try await four.acquire(instance: "proc-b", boot: "b1", ttl: .seconds(30)))
        #expect(!theirs.isEmpty)
        for value in 2...4 {
            // The new owner of shard 4 writes its state between our rounds.
            _ = try setup.admin.command(["HSET", ShardKeys(shard: 4).state, "sequence", String(100 + value)]).orThrow()
            for result in await Self.commit([Self.round(three, token: t3, value: value)], setup) {
                _ = try result.get()
            }
        }
        #expect(try setup.admin.command(["GET", "lane-test:{t3}"]).string == "4")
        #expect(Set(setup.lane.watched.keys) == [3])
        // Checked: the first round, and the round after the takeover (once); not the rounds after it.
        #expect(setup.lane.checkedRounds.load(ordering: .relaxed) == 2)
    }
}
