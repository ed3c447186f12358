import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing
import ZeroMQ

@testable import BittenServices

/// The ledger append script against real Redis: once per (writer, sequence), and whether the stream ended
/// where the caller's engine stands (the hand-over's condition); and the writer that uses it.
@Suite struct ConfirmationAppendScriptTests {
    @Test func appendsOnceAndSaysWhetherTheStreamEndedAtTheExpectedEntry() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        let (stream, writers) = ("stream:confirmations:{t0}", "confirmations:writers:{t0}")
        func append(_ writer: String, expected: String, _ items: [(Int, String)]) async throws -> (Int, String, String)
        {
            let reply = try await client.evaluate(
                ConfirmationService.appendScript, keys: [stream, writers],
                args: [writer, expected] + items.flatMap { [String($0.0), $0.1] })
            let parts = try #require(reply.array)
            return (parts[0].int ?? -1, parts[1].string ?? "?", parts[2].string ?? "?")
        }

        // An empty stream and an engine that applied nothing ('0'): the first entry follows it.
        let (count1, first, previous1) = try await append("a", expected: "0", [(1, "one"), (2, "two")])
        #expect(count1 == 2 && previous1 == "0")
        // Right after what the engine applied.
        let (count2, second, previous2) = try await append("a", expected: first, [(3, "three")])
        #expect(count2 == 1 && previous2 == first && second != first)
        // Another writer's entry came in between: not right after the expected one.
        let (_, third, previous3) = try await append("b", expected: first, [(1, "other")])
        #expect(previous3 == "")
        // No expectation (no engine in this process), and an expectation of an empty stream that is not empty.
        #expect(try await append("a", expected: "", [(4, "four")]).2 == "")
        #expect(try await append("a", expected: "0", [(5, "five")]).2 == "")
        // What the writer already appended is not appended again: nothing, and no id.
        #expect(try await append("a", expected: third, [(2, "two"), (3, "three")]) == (0, "", ""))
        // A batch part of which is new appends the new part only.
        #expect(try await append("a", expected: "", [(5, "five"), (6, "six")]).0 == 1)
        let entries = try redis.command(["XRANGE", stream, "-", "+"]).array ?? []
        #expect(entries.count == 6)
        #expect(try redis.command(["HGET", writers, "a"]).string == "6")
    }

    /// An entry the writer appended and could not offer (the ledger did not end where the engine stood) is the
    /// one its next batch follows: that batch is offered, the engine catches up to the entry and takes the batch.
    /// (Following where the engine stood instead, every later batch would be left to the reader too, for as long
    /// as the writer stays ahead of it.) The engine here is a recording fake whose reader never reads.
    @Test func theBatchAfterAnEntryLeftToTheReaderIsHandedOverOnceTheEngineCaughtUp() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: 2, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let loop = try SocketLoop(context: try Context(), logger: Logger(label: "bitten.test"))
        let input = try await loop.open(.pull) { try $0.bind("tcp://127.0.0.1:0") }
        let board = ServiceBoard()
        let engine = RecordingEngine()
        let service = ConfirmationService(
            input: input, registry: NodeRegistry(redis: client, board: board, logger: Logger(label: "bitten.test")),
            redis: client, board: board, port: 5558, logger: Logger(label: "bitten.test"), shards: 1,
            handOver: engine)
        let handing = Task { await service.handOverLoop() }
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        let stream = ShardKeys(shard: 0).confirmations
        // Another writer's entry ends the ledger, which the engine has not applied (it stands at "0").
        _ = try redis.xadd(stream, fields: [("m", "another writer")])
        func batch(_ sequence: Int) -> [ConfirmationService.Accepted] {
            [
                .init(
                    entry: ["bitten", String(sequence), "user_uuid", "user_catch_up_2", "type", "confirmation"],
                    decoded: true)
            ]
        }
        try await service.append(batch(1))
        try await service.append(batch(2))
        let ids = (try redis.command(["XRANGE", stream, "-", "+"]).array ?? []).compactMap { $0.array?.first?.string }
        #expect(ids.count == 3)
        #expect(try await eventually(.seconds(5)) { engine.state.withLock { $0.appended.count } == 1 })
        engine.state.withLock { state in
            #expect(state.catchUps == [ids[1]])
            #expect(state.appended == [ids[2]])
        }
        handing.cancel()
        await loop.shutdown()
    }
}

/// A trade engine as the confirmation writer sees it, whose reader never reads: it takes a batch only right
/// after where it stands, and catching up moves it there. What the writer asks of it is recorded.
final class RecordingEngine: ConfirmationService.HandOver {
    let state = Mutex<(applied: String, appended: [String], catchUps: [String])>(("0", [], []))

    func appended(
        shard: Int, id: String, after previous: String, messages: [StreamEntry], events: [LedgerEvent?]
    ) -> Bool {
        state.withLock { state in
            guard state.applied == previous else { return false }
            state.applied = id
            state.appended.append(id)
            return true
        }
    }
    func appliedCursor(_ shard: Int) -> String? { state.withLock { $0.applied } }
    func catchUp(shard: Int, through previous: String) async -> Bool {
        state.withLock { state in
            state.catchUps.append(previous)
            state.applied = previous
            return true
        }
    }
    func handOverAnnounced(shard: Int) {}
    func handOverComing(shard: Int, through id: String) {}
    func handOverWithdrawn(shard: Int) {}
    func waitForRoom(shard: Int) async {}
    func wake() {}
}
