import BittenCore
import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

@testable import BittenServices

/// Scripts riding a commit round (the concentration holds do), against real Redis, both ways of committing: each
/// rider gets its own replies in order, whatever the shards' commits do (a fenced shard leaves it in), and all of them
/// learn when nothing reached Redis.
@Suite("Scripts riding the trade engine's commit rounds (real Redis)")
struct CommitRiderTests {
    /// What the riders were told.
    final class Told: Sendable {
        let value = Mutex<[Int: Result<[RedisReply], any Error>]>([:])
    }

    static let echo = RedisScript("return ARGV[1]")
    static let failing = RedisScript("return redis.error_reply('RIDER refused')")

    static func riders(_ told: Told) -> [CommitRider] {
        [
            CommitRider(
                calls: [.init(script: echo, keys: [], args: ["one"]), .init(script: echo, keys: [], args: ["two"])],
                finish: { result in told.value.withLock { $0[0] = result } }),
            CommitRider(
                calls: [.init(script: failing, keys: [], args: [])],
                finish: { result in told.value.withLock { $0[1] = result } }),
        ]
    }

    @Test(arguments: [false, true]) func ridersGetTheirRepliesBesideAStoredAndAFencedShard(scripted: Bool) async throws
    {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let owned = ShardStore(redis: client, shard: 3, scripted: scripted)
        let fenced = ShardStore(redis: client, shard: 5, scripted: scripted)
        let token = try #require(try await owned.acquire(instance: "proc-a", boot: "b1", ttl: .seconds(30)))
        _ = try #require(try await fenced.acquire(instance: "proc-b", boot: "b1", ttl: .seconds(30)))
        var (shard, _) = ShardStoreTests.shardWithFires(1)
        let changes = shard.takeChanges()
        let pending = [owned, fenced].map { store in
            ShardStore.Pending(
                store: store,
                commands: ShardStore.commands(
                    for: changes, keys: store.keys, sequence: shard.book.sequence, lastApplied: "4-0"),
                token: token)
        }
        let told = Told()
        let results = await ShardStore.commit(pending, riders: Self.riders(told), redis: client)
        #expect(results.count == 2)
        if case .success(let refused) = results[0] { #expect(refused.isEmpty) } else { Issue.record("\(results[0])") }
        #expect(throws: ShardStore.Fenced.self) { try results[1].get() }
        let replies = told.value.withLock { $0 }
        #expect(try replies[0]?.get().map(\.string) == ["one", "two"])
        let refusal = try replies[1]?.get()
        #expect(refusal?.count == 1, "\(String(describing: refusal))")
        #expect(throws: RedisError.self) { try refusal?.first?.orThrow() }
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        #expect(try redis.command(["HGET", ShardKeys(shard: 3).state, "checkpoint"]).string == "4-0")
        #expect(try redis.command(["HGET", ShardKeys(shard: 5).state, "checkpoint"]).string == nil)
    }

    /// A round with no shard to store still sends its riders; with Redis gone, every rider learns it.
    @Test func ridersGoAloneAndAllLearnWhenRedisIsGone() async throws {
        let server = try RedisServerProcess()
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let told = Told()
        #expect(await ShardStore.commit([], riders: Self.riders(told), redis: client).isEmpty)
        #expect(try told.value.withLock { $0 }[0]?.get().map(\.string) == ["one", "two"])
        server.stop()
        let gone = Told()
        let store = ShardStore(redis: client, shard: 3)
        let pending = [ShardStore.Pending(store: store, commands: [["SET", "x", "1"]], token: "t")]
        let results = await ShardStore.commit(pending, riders: Self.riders(gone), redis: client)
        #expect(throws: (any Error).self) { try results[0].get() }
        let replies = gone.value.withLock { $0 }
        #expect(replies.count == 2)
        for reply in replies.values { #expect(throws: (any Error).self) { try reply.get() } }
    }
}
