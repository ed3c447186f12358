import BittenTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import Redis

/// The cluster client under load on the loopback cluster: a slot moving while 64 callers write to it,
/// and a primary killed.
extension LocalClusterTests {
    /// Runs blocking work (the resharding steps, waits on the servers) on a thread of its own.
    private static func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    /// 64 callers INCR their own key of one slot while that slot moves to another primary by the steps of
    /// a resharding (IMPORTING/MIGRATING, MIGRATE a few keys at a time, SETSLOT NODE): every caller sees
    /// every one of its replies in sequence (no error reaches it), and every increment is in the end value.
    @Test func aSlotMovesUnder64WritersWithoutAnErrorOrALostWrite() async throws {
        let client = RedisClusterClient(
            url: try RedisClusterURL(parsing: cluster.urlText), logger: Logger(label: "bitten.test"))
        defer { client.stop() }
        let slot = ClusterSlot.of("hot")
        try await client.command(["SET", "{hot}:ready", "1"])
        let map = try #require(client.topology)
        let source = try #require(map.primary(for: slot))
        let target = try #require(map.primaries.first { $0 != source })
        let primaries = map.primaries
        final class Progress: Sendable {
            let migrating = Atomic<Int>(0)  // 0 before, 1 while the slot moves, 2 after
            let started = Atomic<Int>(0)
        }
        let progress = Progress()
        let writers = 64

        let counts: [Int] = try await withThrowingTaskGroup(of: Int?.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var count = 0
                    var after = 0
                    while after < 30 {
                        count += 1
                        let reply = try await client.command(["INCR", "{hot}:writer:\(writer)"])
                        guard reply.int == count else {
                            throw RedisError(
                                .unexpectedReply, "writer \(writer): INCR answered \(reply), expected \(count)")
                        }
                        if count == 5 { progress.started.add(1, ordering: .relaxed) }
                        if progress.migrating.load(ordering: .acquiring) == 2 { after += 1 }
                        // Keep the load going while the slot moves, without flooding the loopback.
                        if count % 8 == 0 { try await Task.sleep(for: .milliseconds(1)) }
                    }
                    return count
                }
            }
            group.addTask {
                while progress.started.load(ordering: .relaxed) < writers {
                    try await Task.sleep(for: .milliseconds(5))
                }
                progress.migrating.store(1, ordering: .releasing)
                try await Self.onThread {
                    try Self.moveSlot(slot, from: source, to: target, primaries: primaries)
                }
                progress.migrating.store(2, ordering: .releasing)
                return nil
            }
            var counts: [Int] = []
            for try await count in group { if let count { counts.append(count) } }
            return counts
        }
        #expect(counts.count == writers)
        // What each caller was told is what the new owner holds.
        let holder = try RedisConnection(url: RedisURL(host: target.host, port: target.port))
        let total = try (0..<writers).reduce(0) { sum, writer in
            sum + (try holder.command(["GET", "{hot}:writer:\(writer)"]).string.flatMap { Int($0) } ?? -1)
        }
        #expect(total == counts.reduce(0, +))
        #expect(client.topology?.primary(for: slot) == target)
        #expect(try commandCalls("asking", on: holder) > 0, "no caller met the slot while it moved")
    }

    /// The steps `redis-cli --cluster reshard` takes for one slot, keys moved four at a time.
    private static func moveSlot(
        _ slot: Int, from source: ClusterEndpoint, to target: ClusterEndpoint,
        primaries: [ClusterEndpoint]
    ) throws {
        let from = try RedisConnection(url: RedisURL(host: source.host, port: source.port))
        let to = try RedisConnection(url: RedisURL(host: target.host, port: target.port))
        let sourceID = try from.command(["CLUSTER", "MYID"]).orThrow().string ?? ""
        let targetID = try to.command(["CLUSTER", "MYID"]).orThrow().string ?? ""
        try to.command(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID]).orThrow()
        try from.command(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID]).orThrow()
        while true {
            let keys = (try from.command(["CLUSTER", "GETKEYSINSLOT", String(slot), "4"]).array ?? []).compactMap(
                \.string)
            if keys.isEmpty { break }
            try from.command(["MIGRATE", target.host, String(target.port), "", "0", "5000", "KEYS"] + keys).orThrow()
            usleep(5_000)
        }
        // The new owner first, then the old one, then the rest (as redis-cli does).
        let order = [target, source] + primaries.filter { $0 != target && $0 != source }
        for primary in order {
            let connection = try RedisConnection(url: RedisURL(host: primary.host, port: primary.port))
            try connection.command(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID]).orThrow()
        }
    }

    /// A primary killed (SIGKILL): its replica is promoted after the fail-over window, the client finds
    /// the new primary by itself, what was replicated before the kill is all there, and calls of many
    /// callers go on.
    @Test func aKilledPrimarysReplicaTakesOverAndCallsGoOn() async throws {
        let client = RedisClusterClient(
            url: try RedisClusterURL(parsing: cluster.urlText), logger: Logger(label: "bitten.test"))
        defer { client.stop() }
        for index in 0..<300 { try await client.command(["SET", "f:\(index)", "\(index)"]) }
        let map = try #require(client.topology)
        let victim = try #require(map.primaries.first)
        let victimKeys = (0..<300).filter { map.primary(for: ClusterSlot.of("f:\($0)")) == victim }
        try #require(!victimKeys.isEmpty)
        let server = try #require(cluster.servers.first { $0.port == victim.port })
        // Everything written so far is on the replica before the kill (replication is asynchronous).
        let synced = try await Self.onThread {
            try RedisConnection(url: RedisURL(host: victim.host, port: victim.port)).command(["WAIT", "1", "5000"]).int
        }
        #expect(synced == 1)
        server.kill9()

        let key = "f:\(victimKeys[0])"
        let clock = ContinuousClock()
        let killedAt = clock.now
        var failures = 0
        var tookOverAfter: Duration?
        while clock.now - killedAt < .seconds(40) {
            do {
                try await client.command(["SET", key, "after"])
                tookOverAfter = clock.now - killedAt
                break
            } catch {
                failures += 1
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        let window = try #require(tookOverAfter, "no write to the dead primary's slots went through within 40 s")
        print(
            "fail-over: writes to the killed primary's slots went through again after \(window) (\(failures) calls failed meanwhile)"
        )
        let newOwner = try #require(client.topology?.primary(for: ClusterSlot.of(key)))
        #expect(newOwner != victim)
        #expect(map.ranges.contains { $0.replicas.contains(newOwner) }, "the new primary is the old one's replica")

        for index in victimKeys.dropFirst() {
            #expect(try await client.command(["GET", "f:\(index)"]).string == "\(index)")
        }
        // Many callers at once across every slot, after the window: no error.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<64 {
                group.addTask {
                    for round in 1...20 {
                        let reply = try await client.command(["INCR", "after:\(caller)"])
                        guard reply.int == round else {
                            throw RedisError(.unexpectedReply, "caller \(caller): \(reply)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

extension LocalClusterTests {
    /// The services' client (`RedisClient`) on a cluster: commands and pipelines across every primary with
    /// replies in order, a transaction and a script in one slot, the ones that span slots refused before
    /// they are sent, and blocking work refused with the reason.
    @Test func theServicesClientSpeaksCluster() async throws {
        let client = RedisClient(
            cluster: try RedisClusterURL(parsing: cluster.urlText), logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        #expect(client.isCluster)
        for index in 0..<100 { try await client.command(["SET", "c:\(index)", "\(index)"]) }
        let replies = try await client.pipeline((0..<100).map { ["GET", "c:\($0)"] })
        #expect(replies.map(\.string) == (0..<100).map { "\($0)" })
        let slots = Set((0..<100).map { ClusterSlot.of("c:\($0)") })
        #expect(slots.count > 50, "the keys are spread over the slots")
        let exec = try await client.transaction([["INCR", "{u:1}:a"], ["INCR", "{u:1}:b"], ["GET", "{u:1}:a"]])
        #expect(exec.count == 3 && exec[0].int == 1 && exec[1].int == 1 && exec[2].string == "1", "\(exec)")
        await #expect {
            try await client.transaction([["INCR", "{u:1}:a"], ["INCR", "{u:2}:a"]])
        } throws: { ($0 as? RedisError)?.code == .crossSlot }
        #expect(try await client.command(["GET", "{u:1}:a"]).string == "1", "the refused transaction wrote nothing")
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await client.evaluate(script, keys: ["{u:1}:a"], args: ["5"]).int == 6)
        await #expect {
            try await client.evaluate(script, keys: ["{u:1}:a", "{u:2}:a"], args: ["5"])
        } throws: { ($0 as? RedisError)?.code == .crossSlot }
        await #expect {
            try await client.withConnection { _ in 1 }
        } throws: { ($0 as? RedisError)?.message.contains("Redis Cluster") == true }
        #expect(client.state == .ready)
    }
}
