import BittenTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import Redis

/// The shared non-blocking connections (`RedisMultiplexer`), on the client suite's real redis-server.
extension RedisClientTests {
    /// Connections named `name` (a client of another test that outlived its server may connect to this one
    /// when it reuses the port: counting every connection saw such strangers).
    static func clients(_ probe: RedisConnection, named name: String) throws -> Int {
        (try probe.command(["CLIENT", "LIST"]).string ?? "").split(separator: "\n")
            .filter { $0.split(separator: " ").contains("name=\(name)") }.count
    }

    /// 64 callers at once, 200 commands each, on two connections: every caller gets its own replies in
    /// order, and the server sees two connections, not 64.
    @Test func concurrentCallersShareTwoConnectionsAndGetTheirOwnReplies() async throws {
        let mux = RedisMultiplexer(
            url: url, connections: 2, clientName: "mux-share-test", logger: Logger(label: "bitten.test"))
        defer { mux.stop() }
        let probe = try RedisConnection(url: url)
        #expect(try Self.clients(probe, named: "mux-share-test") == 0, "nothing connects before the first call")
        let url = self.url
        final class Peak: Sendable { let value = Mutex(0) }
        let peak = Peak()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<64 {
                group.addTask {
                    for expected in 1...200 {
                        let reply = try await mux.command(["INCR", "counter:\(caller)"])
                        guard reply.int == expected else {
                            throw RedisError(.unexpectedReply, "caller \(caller) got \(reply), wanted \(expected)")
                        }
                    }
                }
            }
            group.addTask {
                let counter = try RedisConnection(url: url)
                for _ in 0..<20 {
                    let count = try Self.clients(counter, named: "mux-share-test")
                    peak.value.withLock { $0 = max($0, count) }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            try await group.waitForAll()
        }
        let seen = peak.value.withLock { $0 }
        #expect(seen >= 1 && seen <= 2, "\(seen) connections seen during the load")
        #expect(try probe.command(["GET", "counter:63"]).int == 200)
        #expect(mux.state == .ready)
    }

    /// A cancelled caller returns at once; its reply, when it comes, reaches nobody else.
    @Test func aCancelledCallsReplyDoesNotReachTheNextCaller() async throws {
        let mux = RedisMultiplexer(url: url, connections: 1, logger: Logger(label: "bitten.test"))
        defer { mux.stop() }
        _ = try await mux.command(["PING"])
        // A script far longer than the test (so a loaded machine cannot let it finish before the cancel),
        // killed afterwards: other clients are served (BUSY, SCRIPT KILL) once it has run 50 ms.
        let probe = try RedisConnection(url: url)
        try probe.command(["CONFIG", "SET", "lua-time-limit", "50"]).orThrow()
        let slow = Task {
            try await mux.command(["EVAL", "local x = 0 for i = 1, 4000000000 do x = x + 1 end return 'slow'", "0"])
        }
        try await Task.sleep(for: .milliseconds(30))
        let cancelledAt = ContinuousClock.now
        slow.cancel()
        let outcome = await slow.result
        #expect(ContinuousClock.now - cancelledAt < .milliseconds(100), "the cancelled caller waited for the reply")
        guard case .failure(let error) = outcome, error is CancellationError else {
            Issue.record("the cancelled call returned \(outcome)")
            return
        }
        // The script's reply (killed: an error) comes later on the same connection and must reach nobody.
        for _ in 0..<200 {
            let killed = try probe.command(["SCRIPT", "KILL"])
            if killed == .status("OK") { break }
            if case .error(let message) = killed, message.hasPrefix("NOTBUSY") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await mux.command(["ECHO", "next"]) == .string(Array("next".utf8)))
        #expect(try await mux.command(["ECHO", "after"]) == .string(Array("after".utf8)))
    }

    /// Down: calls fail at once (no connection attempt per call) and name the server; back up, the
    /// connections come back by themselves.
    @Test func callsFailFastWhileTheServerIsDownAndRecover() async throws {
        let mux = RedisMultiplexer(
            url: url, connections: 2, connectTimeout: .milliseconds(500), logger: Logger(label: "bitten.test"))
        defer { mux.stop() }
        _ = try await mux.command(["SET", "k", "1"])
        server.stop()
        var failures = 0
        let started = ContinuousClock.now
        for _ in 0..<50 {
            do { _ = try await mux.command(["GET", "k"]) } catch let error as RedisError {
                #expect(error.isConnectionProblem && error.message.contains("\(url.port)"), "\(error)")
                failures += 1
            }
        }
        #expect(failures == 50 && ContinuousClock.now - started < .seconds(2))
        if case .unavailable = mux.state {} else { Issue.record("state \(mux.state)") }
        try server.start()
        #expect(try await eventuallyTrue { (try? await mux.command(["PING"])) == .status("PONG") })
        #expect(mux.state == .ready)
    }

    /// AUTH (and SELECT) go first on every connection, also after a reconnect.
    @Test func logInGoesFirstOnEveryConnection() async throws {
        let admin = try RedisConnection(url: url)
        try admin.command(["CONFIG", "SET", "requirepass", "s3cret"]).orThrow()
        defer {
            _ = try? RedisConnection(url: RedisURL(host: url.host, port: url.port, password: "s3cret")).command([
                "CONFIG", "SET", "requirepass", "",
            ])
        }
        let mux = RedisMultiplexer(
            url: RedisURL(host: url.host, port: url.port, password: "s3cret", database: 3), connections: 2,
            logger: Logger(label: "bitten.test"))
        defer { mux.stop() }
        _ = try await mux.command(["SET", "in-three", "yes"])
        let check = try RedisConnection(url: RedisURL(host: url.host, port: url.port, password: "s3cret", database: 3))
        #expect(try check.command(["GET", "in-three"]).string == "yes")
        let wrong = RedisMultiplexer(
            url: RedisURL(host: url.host, port: url.port, password: "nope"), connections: 1,
            logger: Logger(label: "bitten.test"))
        defer { wrong.stop() }
        await #expect(throws: RedisError.self) { _ = try await wrong.command(["PING"]).orThrow() }
    }
}
