import BittenTestSupport
import Foundation
import Logging
import Redis
import Testing

@testable import BittenServices

/// The ledger append script against real Redis: once per (writer, sequence), and whether the stream ended
/// where the caller's engine stands (the hand-over's condition).
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
}
