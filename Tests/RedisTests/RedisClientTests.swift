import BittenTestSupport
import Foundation
import Logging
import Testing

@testable import Redis

@Suite("Redis client against a real redis-server", .serialized)
final class RedisClientTests {
    let server: RedisServerProcess
    let url: RedisURL

    init() throws {
        server = try RedisServerProcess()
        url = try RedisURL(parsing: server.url)
    }

    deinit { server.stop() }

    @Test func singleCommandsAndTypedReplies() throws {
        let connection = try RedisConnection(url: url)
        #expect(try connection.command(["SET", "k", "v"]) == .status("OK"))
        #expect(try connection.command(["GET", "k"]).string == "v")
        #expect(try connection.command(["GET", "missing"]) == .null)
        #expect(try connection.command(["INCRBY", "n", "5"]) == .integer(5))
        _ = try connection.command(["RPUSH", "l", "a", "b"])
        #expect(try connection.command(["LRANGE", "l", "0", "-1"]).array?.compactMap(\.string) == ["a", "b"])
        if case .error(let message) = try connection.command(["INCR", "k"]) {
            #expect(message.contains("not an integer"))
        } else {
            Issue.record("INCR on a string should be an error reply")
        }
        // Binary-safe values survive the round trip.
        let binary: [UInt8] = [0, 255, 10, 13, 34]
        _ = try connection.command(bytes: [Array("SET".utf8), Array("bin".utf8), binary])
        #expect(try connection.command(["GET", "bin"]) == .string(binary))
    }

    /// The client's threads carry their names to the kernel, so `top -H` and `perf` tell them apart (a name set on a
    /// Foundation `Thread` before its start does not get there on Linux).
    /// A connection reuses the memory of its last batch for the next: batches of every size, one after the
    /// other (the largest past what it keeps), text and bytes, empty arguments, each answered in full.
    @Test func batchesOfEverySizeOneAfterTheOtherOnOneConnection() throws {
        let connection = try RedisConnection(url: url)
        let big = String(repeating: "v", count: 2_000)
        for count in [3, 6_000, 2, 0, 5] {
            let commands = (0..<count).map { ["SET", "batch:\($0)", $0 % 2 == 0 ? big + String($0) : ""] }
            #expect(try connection.pipeline(commands).allSatisfy { $0 == .status("OK") })
            let read = try connection.pipeline(joining: [[["GET", "batch:0"]], [], [["GET", "batch:1"], ["PING"]]])
            #expect(read.count == 3 && read[2] == .status("PONG"))
            if count > 1 { #expect(read[0].string == big + "0" && read[1].string == "") }
        }
        let bytes: [[[UInt8]]] = [
            [Array("SET".utf8), Array("batch:b".utf8), [0, 255, 10]], [Array("GET".utf8), Array("batch:b".utf8)],
        ]
        #expect(try connection.pipeline(bytes: bytes).last == .string([0, 255, 10]))
        #expect(try connection.pipeline([["DBSIZE"]]).first?.int == 6_001)
    }

    @Test func theClientsThreadsAreNamedForTheKernel() async throws {
        let client = RedisClient(url: url, poolSize: 1, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        _ = try await client.command(["PING"])
        _ = try await client.withConnection { try $0.command(["PING"]) }
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap {
            try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(names.contains("redis-io-test"), "\(names)")
        #expect(names.contains("redis-test-0"), "\(names)")
    }

    @Test func aTaskPreferringTheWorkerExecutorRunsWithItsBlockingWorkOnTheWorkerThread() async throws {
        let client = RedisClient(url: url, poolSize: 1, logger: Logger(label: "bitten.redis.lane"))
        @Sendable func thread() -> String {
            (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        }
        let (before, inside, after, reply) = try await withTaskExecutorPreference(client.executor) {
            let before = thread()
            let (inside, reply) = try await client.withConnection { (thread(), try $0.command(["PING"])) }
            return (before, inside, thread(), reply)
        }
        #expect(reply == .status("PONG"))
        #expect(
            before == "redis-lane-0" && inside == "redis-lane-0" && after == "redis-lane-0",
            "\(before) \(inside) \(after)")
        // Shut down, the executor still runs what prefers it (on Swift's pool): nothing waits for ever.
        client.shutdown()
        let late = await withTaskExecutorPreference(client.executor) { thread() }
        #expect(late != "redis-lane-0")
        await #expect(throws: RedisError.self) {
            try await withTaskExecutorPreference(client.executor) { try await client.withConnection { _ in 1 } }
        }
    }

    @Test func threadNamesTellTheClientsApartWithinTheKernelsFifteenBytes() {
        #expect(RedisClient.threadName("redis", label: "bitten.redis", index: 3) == "redis-3")
        #expect(RedisClient.threadName("redis", label: "bitten.redis.trade", index: 11) == "redis-trade-11")
        #expect(RedisClient.threadName("redis", label: "bitten.redis.commit", index: 0) == "redis-commit-0")
        #expect(RedisClient.threadName("redis-io", label: "bitten.redis.commit") == "redis-io-commit")
        #expect(RedisClient.threadName("redis-io", label: "bitten.redis") == "redis-io")
        #expect(RedisClient.threadName("redis", label: "bitten.redis.trade_inbox", index: 0) == "redis-tinbox-0")
        #expect(RedisClient.threadName("redis-io", label: "bitten.redis.gateway_inbox") == "redis-io-ginbox")
        let long = RedisClient.threadName("redis", label: "a.verylonglabel", index: 123)
        #expect(long == "redis-verylo-12" && long.utf8.count == 15)
    }

    @Test func serverVersionIsReadFromInfo() throws {
        let connection = try RedisConnection(url: url)
        let version = try connection.serverVersion()
        #expect(version.count >= 2 && version[0] >= 6, "\(version)")
        #expect(
            RedisConnection.version(fromInfo: "# Server\r\nredis_version:6.0.16\r\nredis_mode:standalone\r\n") == [
                6, 0, 16,
            ])
        #expect(RedisConnection.version(fromInfo: "# Server\r\nredis_mode:standalone\r\n") == nil)
        #expect(RedisConnection.version(fromInfo: "redis_version:seven\r\n") == nil)
    }

    @Test func pipelineRepliesComeBackInOrder() throws {
        let connection = try RedisConnection(url: url)
        let commands = (0..<500).map { ["HSET", "h:\($0)", "f", String($0)] } + [["HGET", "h:42", "f"], ["BAD"]]
        let replies = try connection.pipeline(commands)
        #expect(replies.count == 502)
        #expect(replies[0] == .integer(1))
        #expect(replies[500].string == "42")
        if case .error = replies[501] {} else { Issue.record("unknown command should be an error reply") }
    }

    @Test func multiExecIsAtomic() throws {
        let connection = try RedisConnection(url: url)
        let results = try connection.transaction([["SET", "a", "1"], ["INCR", "a"], ["SADD", "s", "x"]])
        #expect(results == [.status("OK"), .integer(2), .integer(1)])
        #expect {
            try connection.transaction([["SET", "b", "1"], ["NOSUCHCOMMAND"]])
        } throws: { ($0 as? RedisError)?.code == .server }
        #expect(try connection.command(["EXISTS", "b"]) == .integer(0))
    }

    @Test func evalshaLoadsScriptsAndSurvivesFlush() throws {
        let connection = try RedisConnection(url: url)
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try connection.evaluate(script, keys: ["counter"], args: ["3"]) == .integer(3))
        _ = try connection.command(["SCRIPT", "FLUSH"])
        #expect(try connection.evaluate(script, keys: ["counter"], args: ["4"]) == .integer(7))
    }

    @Test func streamsWithConsumerGroups() throws {
        let connection = try RedisConnection(url: url)
        try connection.xgroupCreate("stream:test", group: "g")
        try connection.xgroupCreate("stream:test", group: "g")  // idempotent
        let first = try connection.xadd("stream:test", fields: [("ticket", "1"), ("event", "open")])
        _ = try connection.xadd("stream:test", fields: [("ticket", "2"), ("event", "open")], maxLength: 1000)
        let entries = try connection.xreadgroup(group: "g", consumer: "c1", stream: "stream:test")
        #expect(entries.count == 2)
        #expect(entries[0].id == first)
        #expect(entries[0]["ticket"] == "1")
        #expect(try connection.xpendingCount("stream:test", group: "g") == 2)
        #expect(try connection.xack("stream:test", group: "g", ids: [first]) == 1)
        #expect(try connection.xpendingCount("stream:test", group: "g") == 1)
        let again = try connection.xreadgroup(group: "g", consumer: "c1", stream: "stream:test", id: "0")
        #expect(again.map { $0["ticket"] } == ["2"])
    }

    @Test func publishSubscribeOnDedicatedConnection() async throws {
        let subscriber = RedisSubscriber(
            url: url, channels: ["gateway:a", "gateway:b"], logger: Logger(label: "bitten.test"))
        for _ in 0..<200 where !subscriber.isSubscribed { try await Task.sleep(for: .milliseconds(10)) }
        #expect(subscriber.isSubscribed)
        let publisher = try RedisConnection(url: url)
        #expect(try publisher.command(["PUBLISH", "gateway:b", "fire-1"]) == .integer(1))
        var iterator = subscriber.messages.makeAsyncIterator()
        let message = await iterator.next()
        #expect(message == PubSubMessage(channel: "gateway:b", payload: "fire-1"))
        subscriber.stop()
    }

    @Test func authAndSelectFromURL() throws {
        let admin = try RedisConnection(url: url)
        _ = try admin.command(["CONFIG", "SET", "requirepass", "s3cret"])
        defer {
            _ = try? RedisConnection(url: RedisURL(parsing: "redis://:s3cret@127.0.0.1:\(server.port)")).command([
                "CONFIG", "SET", "requirepass", "",
            ])
        }
        let authed = try RedisConnection(url: RedisURL(parsing: "redis://:s3cret@127.0.0.1:\(server.port)/3"))
        _ = try authed.command(["SET", "only-in-3", "x"])
        #expect(try authed.command(["GET", "only-in-3"]).string == "x")
        #expect(try authed.command(["SELECT", "0"]) == .status("OK"))
        #expect(try authed.command(["GET", "only-in-3"]) == .null)
        #expect {
            try RedisConnection(url: RedisURL(parsing: "redis://:wrong@127.0.0.1:\(server.port)"))
        } throws: { ($0 as? RedisError)?.code == .connectionFailed }
    }

    @Test func aclUserFromURL() throws {
        let admin = try RedisConnection(url: url)
        _ = try admin.command(["ACL", "SETUSER", "bitten_app", "on", ">app-pw", "~*", "+@all"])
        defer { _ = try? admin.command(["ACL", "DELUSER", "bitten_app"]) }
        let user = try RedisConnection(url: RedisURL(parsing: "redis://bitten_app:app-pw@127.0.0.1:\(server.port)"))
        #expect(try user.command(["ACL", "WHOAMI"]).string == "bitten_app")
        #expect {
            try RedisConnection(url: RedisURL(parsing: "redis://bitten_app:nope@127.0.0.1:\(server.port)"))
        } throws: { ($0 as? RedisError)?.code == .connectionFailed }
    }

    @Test func urlParsing() throws {
        let full = try RedisURL(parsing: "redis://bob:pw@redis.local:6380/2")
        #expect(full == RedisURL(host: "redis.local", port: 6380, user: "bob", password: "pw", database: 2))
        #expect(!full.description.contains("pw"))
        #expect(try RedisURL(parsing: "redis://localhost") == RedisURL(host: "localhost"))
        for bad in ["http://x", "redis://", "redis://host:99999", "redis://host:abc", "redis://host/x"] {
            #expect(throws: RedisError.self) { try RedisURL(parsing: bad) }
        }
    }

    @Test func poolSurvivesServerRestart() async throws {
        let client = RedisClient(
            url: url, poolSize: 2, minBackoff: .milliseconds(50), maxBackoff: .milliseconds(200),
            logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        try await client.command("SET", "before", "1")
        #expect(client.state == .ready)
        server.stop()
        await #expect {
            try await client.command("GET", "before")
        } throws: { ($0 as? RedisError)?.isConnectionProblem == true }
        if case .unavailable = client.state {} else { Issue.record("state should be unavailable, is \(client.state)") }
        try server.start()
        var recovered = false
        for _ in 0..<100 {
            if (try? await client.command("SET", "after", "2")) != nil {
                recovered = true
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(recovered)
        #expect(client.state == .ready)
        #expect(try await client.command("GET", "after").string == "2")
    }
}

extension RedisClientTests {
    /// A blocking pop waits on a worker connection of its own: the shared connections keep answering while
    /// it waits, and a wait longer than the connections' read timeout (2 s) ends with nil, not an error.
    @Test func blockingCommandsNeverHoldASharedConnection() async throws {
        let client = RedisClient(
            url: url, poolSize: 2, connections: 1, connectTimeout: .seconds(1), logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let probe = try RedisConnection(url: url)
        let popped = Task { try await client.blockingCommand(["BRPOP", "inbox:test", "3"], waitsUpTo: 3) }
        // Wait until the server has the BRPOP parked on some connection.
        var parked = false
        for _ in 0..<200 where !parked {
            parked = (try probe.command(["CLIENT", "LIST"]).string ?? "").contains("cmd=brpop")
            if !parked { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(parked)
        // Shared connections answer while it waits (had the BRPOP been on one of them, this would queue for 3 s).
        for index in 0..<50 { #expect(try await client.command(["INCR", "n"]).int == index + 1) }
        #expect(
            try probe.command(["CLIENT", "LIST"]).string?.contains("cmd=brpop") == true, "the pop was still waiting")
        // Nothing arrives: after 3 s (beyond the 1 s read timeout) the pop ends with nil, not a broken connection.
        let reply = try await popped.value
        #expect(reply == .null || reply.array == nil, "\(reply)")
        // A value pushed while a pop waits reaches it.
        let second = Task { try await client.blockingCommand(["BRPOP", "inbox:test", "5"], waitsUpTo: 5) }
        for _ in 0..<200 {
            if (try probe.command(["CLIENT", "LIST"]).string ?? "").contains("cmd=brpop") { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        _ = try probe.command(["LPUSH", "inbox:test", "hello"])
        #expect(try await second.value.array?.last?.string == "hello")
    }
}

@Suite("Stream entry ids")
struct StreamEntryIDTests {
    /// Stream order compares the milliseconds, then the sequence, as numbers (not as text: "9-0" < "10-0").
    @Test(arguments: [
        ("10-0", "9-0", true), ("9-0", "10-0", false), ("5-3", "5-3", true), ("5-10", "5-9", true),
        ("5-9", "5-10", false), ("0", "1-0", false), ("1-0", "0", true), ("1700000000000-0", "1699999999999-42", true),
    ])
    func order(_ a: String, _ b: String, _ atOrAfter: Bool) {
        #expect(StreamEntry.id(a, isAtOrAfter: b) == atOrAfter)
    }
}
