import BittenTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import Redis

/// The pure parts of the cluster client: slots, key positions, redirects, the slot map, back-off.
@Suite("Redis Cluster: slots, keys, redirects, back-off")
struct ClusterUnitTests {
    /// The Redis Cluster specification's test vector and hash-tag rules.
    @Test func slotsFollowTheSpecification() {
        #expect(ClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("{user1000}.followers"))
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("user1000"))
        #expect(
            Array(ClusterSlot.hashedPart(Array("foo{}{bar}".utf8))) == Array("foo{}{bar}".utf8),
            "an empty tag hashes the whole key")
        #expect(Array(ClusterSlot.hashedPart(Array("foo{{bar}}zap".utf8))) == Array("{bar".utf8))
        #expect(Array(ClusterSlot.hashedPart(Array("foo{bar}{zap}".utf8))) == Array("bar".utf8))
        #expect(
            Array(ClusterSlot.hashedPart(Array("foo{bar".utf8))) == Array("foo{bar".utf8),
            "no closing brace: the whole key")
        #expect(ClusterSlot.of("foo") == 12182 && ClusterSlot.of("somekey") == 11058)
        #expect((0..<2000).allSatisfy { (0..<ClusterSlot.count).contains(ClusterSlot.of("key:\($0)")) })
    }

    @Test func commandsFindTheirKeysAndRefuseToSpanSlots() throws {
        func args(_ words: String...) -> [[UInt8]] { words.map { Array($0.utf8) } }
        #expect(CommandKeys.of(args("HSET", "node:a", "f", "v")) == .keys(args("node:a")))
        #expect(CommandKeys.of(args("MSET", "a", "1", "b", "2")) == .keys(args("a", "b")))
        #expect(CommandKeys.of(args("EVALSHA", "abc", "2", "k1", "k2", "argv")) == .keys(args("k1", "k2")))
        #expect(CommandKeys.of(args("EVALSHA", "abc", "0", "argv")) == .none)
        #expect(CommandKeys.of(args("EVALSHA", "abc", "3", "k1")) == .unknown, "numkeys beyond the arguments")
        #expect(
            CommandKeys.of(
                args("XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "BLOCK", "100", "STREAMS", "s1", "s2", ">", ">"))
                == .keys(args("s1", "s2")))
        #expect(CommandKeys.of(args("BRPOP", "q1", "q2", "5")) == .keys(args("q1", "q2")))
        #expect(CommandKeys.of(args("PING")) == .none && CommandKeys.of(args("script", "load", "return 1")) == .none)
        #expect(CommandKeys.of(args("SPUBLISH", "chan", "msg")) == .channel(Array("chan".utf8)))
        #expect(CommandKeys.of(args("NOSUCHCOMMAND", "x")) == .unknown)
        #expect(try CommandKeys.slot(of: args("MGET", "{u1}.a", "{u1}.b")) == ClusterSlot.of("u1"))
        #expect(try CommandKeys.slot(of: args("PING")) == nil)
        #expect {
            try CommandKeys.slot(of: args("EVALSHA", "abc", "2", "fire:1", "user:2"))
        } throws: { error in
            let e = error as? RedisError
            return e?.code == .crossSlot && e!.message.contains("fire:1 (slot") && e!.message.contains("user:2 (slot")
        }
        #expect { try CommandKeys.slot(of: args("NOSUCHCOMMAND", "x")) } throws: {
            ($0 as? RedisError)?.code == .crossSlot
        }
    }

    @Test func redirectsAreRead() {
        #expect(
            ClusterRedirect(error: "MOVED 3999 127.0.0.1:6381")
                == .moved(slot: 3999, to: ClusterEndpoint(host: "127.0.0.1", port: 6381)))
        #expect(
            ClusterRedirect(error: "ASK 12182 10.0.0.7:7002")
                == .ask(slot: 12182, to: ClusterEndpoint(host: "10.0.0.7", port: 7002)))
        #expect(
            ClusterRedirect(error: "MOVED 3999 ::1:6381")
                == .moved(slot: 3999, to: ClusterEndpoint(host: "::1", port: 6381)))
        #expect(ClusterRedirect(error: "TRYAGAIN Multiple keys request during rehashing of slot") == .tryAgain)
        #expect(ClusterRedirect(error: "CLUSTERDOWN The cluster is down") == .clusterDown)
        for bad in [
            "MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 1.2.3.4:5", "MOVED 1 nohost", "MOVED 1 h:99999",
            "ERR wrong type", "",
        ] {
            #expect(ClusterRedirect(error: bad) == nil, "\(bad)")
        }
    }

    @Test func theSlotMapIsReadAndCorrectedByMoved() throws {
        func node(_ host: String, _ port: Int) -> RedisReply {
            .array([.string(Array(host.utf8)), .integer(port), .string(Array("id".utf8))])
        }
        let reply = RedisReply.array([
            .array([.integer(5461), .integer(10922), node("127.0.0.1", 7001), node("127.0.0.1", 7004)]),
            .array([.integer(0), .integer(5460), node("", 7000), node("127.0.0.1", 7003)]),
            .array([.integer(10923), .integer(16383), node("127.0.0.1", 7002)]),
        ])
        var map = try ClusterTopology(slotsReply: reply, askedHost: "10.1.1.1")
        #expect(map.coversAllSlots)
        #expect(map.primary(for: 0) == ClusterEndpoint(host: "10.1.1.1", port: 7000), "an empty host is the node asked")
        #expect(
            map.primary(for: 5461)?.port == 7001 && map.primary(for: 16383)?.port == 7002
                && map.primary(for: 10922)?.port == 7001)
        #expect(map.ranges.first?.replicas == [ClusterEndpoint(host: "127.0.0.1", port: 7003)])
        map.apply(moved: 42, to: ClusterEndpoint(host: "127.0.0.1", port: 7002))
        #expect(map.primary(for: 42)?.port == 7002 && map.primary(for: 43)?.port == 7000)
        #expect(Set(map.primaries.map(\.port)) == [7000, 7001, 7002])
        let partial = try ClusterTopology(
            slotsReply: .array([.array([.integer(0), .integer(100), node("h", 1)])]), askedHost: "")
        #expect(!partial.coversAllSlots && partial.primary(for: 101) == nil)
        #expect(throws: RedisError.self) {
            try ClusterTopology(slotsReply: .array([.array([.integer(9), .integer(3), node("h", 1)])]), askedHost: "")
        }
        #expect(throws: RedisError.self) { try ClusterTopology(slotsReply: .status("OK"), askedHost: "") }
        #expect(throws: RedisError.self) {
            try ClusterTopology(slotsReply: .array([.array([.integer(0), .integer(3), .integer(5)])]), askedHost: "")
        }
    }

    @Test func backOffGrowsResetsAndJitters() {
        let draws = Mutex<[Double]>([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 0])
        var backoff = ReconnectBackoff(initial: 0.1, maximum: 1, multiplier: 2, jitter: 0.2) {
            draws.withLock { $0.isEmpty ? 0.5 : $0.removeFirst() }
        }
        #expect(backoff.start(at: 0) == .connect)
        #expect(backoff.failed(at: 0) == .wait(until: 0.1))
        #expect(backoff.due(at: 0.05) == .wait(until: 0.1), "not yet")
        #expect(backoff.due(at: 0.1) == .connect)
        #expect(backoff.failed(at: 0.1) == .wait(until: 0.1 + 0.2))
        _ = backoff.due(at: 1)
        #expect(backoff.failed(at: 1) == .wait(until: 1.4))
        _ = backoff.due(at: 2)
        #expect(backoff.failed(at: 2) == .wait(until: 2.8))
        _ = backoff.due(at: 3)
        #expect(backoff.failed(at: 3) == .wait(until: 4), "capped at the maximum")
        _ = backoff.due(at: 5)
        #expect(backoff.failed(at: 5) == .wait(until: 6))
        _ = backoff.due(at: 6)
        #expect(backoff.failed(at: 6) == .wait(until: 7))
        _ = backoff.due(at: 7)
        // Jitter: ±20 % of the pause, from the injected draws (1 → +20 %, 0 → −20 %).
        #expect(backoff.failed(at: 7) == .wait(until: 8.2))
        _ = backoff.due(at: 9)
        #expect(backoff.failed(at: 9) == .wait(until: 9.8))
        _ = backoff.due(at: 10)
        backoff.connected(at: 10)
        #expect(backoff.state == .connected(since: 10))
        #expect(backoff.lost(at: 20) == .connect, "a lost connection is retried at once")
        #expect(backoff.failed(at: 20) == .wait(until: 20.1), "and the sequence starts again")
        #expect(backoff.lost(at: 21) == .none, "not connected: nothing to lose")
        backoff.stop()
        #expect(backoff.due(at: 100) == .none && backoff.state == .idle)
        #expect(
            backoff.delay(afterFailures: 0) == 0 && backoff.delay(afterFailures: 1) == 0.1
                && backoff.delay(afterFailures: 30) == 1)
    }
}

/// A real cluster on loopback: three primaries with one replica each.
@Suite("Redis Cluster on loopback", .serialized)
final class LocalClusterTests {
    let running: TestCluster
    var cluster: LocalRedisCluster { running.cluster }

    init() async throws { running = try await TestCluster.start() }

    @Test func theClientsSlotsAndMapAgreeWithTheServers() throws {
        let asked = try RedisConnection(url: cluster.servers[0].url)
        let fromSlots = try ClusterTopology(
            slotsReply: try asked.command(["CLUSTER", "SLOTS"]), askedHost: "127.0.0.1")
        let fromShards = try ClusterTopology(
            shardsReply: try asked.command(["CLUSTER", "SHARDS"]), askedHost: "127.0.0.1")
        #expect(fromSlots.coversAllSlots && fromShards.coversAllSlots)
        #expect(fromSlots.primaries.count == 3 && Set(fromSlots.primaries) == Set(fromShards.primaries))
        #expect(fromSlots.ranges.allSatisfy { $0.replicas.count == 1 })
        var connections: [ClusterEndpoint: RedisConnection] = [:]
        for endpoint in fromSlots.primaries {
            connections[endpoint] = try RedisConnection(url: RedisURL(host: endpoint.host, port: endpoint.port))
        }
        for index in 0..<300 {
            let key = index % 3 == 0 ? "{user_\(index % 7)}:fire:\(index)" : "node:user_sim_\(index)"
            #expect(try asked.command(["CLUSTER", "KEYSLOT", key]).int == ClusterSlot.of(key), "\(key)")
            let slot = ClusterSlot.of(key)
            let owner = try #require(fromShards.primary(for: slot))
            #expect(fromSlots.primary(for: slot) == owner)
            #expect(try connections[owner]!.command(["SET", key, "v"]) == .status("OK"), "\(key) on \(owner)")
            // Any other primary answers MOVED to the owner, which the client reads.
            let other = try #require(fromSlots.primaries.first { $0 != owner })
            let wrong = try connections[other]!.command(["GET", key])
            guard case .error(let message) = wrong else {
                Issue.record("\(other) answered \(wrong) for \(key)")
                continue
            }
            #expect(ClusterRedirect(error: message) == .moved(slot: slot, to: owner), "\(message)")
        }
        // Keys that span slots are refused by the server too (what the client checks before sending).
        let crossSlot = try asked.command(["MSET", "a", "1", "b", "2"])
        if case .error(let message) = crossSlot {
            #expect(message.hasPrefix("CROSSSLOT"))
        } else {
            Issue.record("\(crossSlot)")
        }
        #expect(throws: RedisError.self) {
            try CommandKeys.slot(of: [Array("MSET".utf8), Array("a".utf8), [49], Array("b".utf8), [50]])
        }
    }
}

@Suite("A local cluster restarted in its directory")
struct LocalClusterRestartTests {
    /// Blocking starts and stops (seconds of waits) on a thread of their own.
    func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// What `bitten up --redis-cluster` relies on: the servers started again on the same ports and
    /// directories rejoin from their nodes.conf (no new cluster is created) and keep their data (AOF).
    @Test func itComesBackOnItsPortsWithItsData() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "bitten-cluster-restart-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await offPool { try LocalRedisCluster(directory: directory, appendOnly: true) }
        let url = try RedisClusterURL(parsing: first.urlText)
        let ports = first.ports
        let ids = try first.servers.map { try RedisConnection(url: $0.url).command(["CLUSTER", "MYID"]).string ?? "" }
        var client = RedisClient(cluster: url, logger: Logger(label: "bitten.test"))
        for index in 0..<200 { try await client.command(["SET", "node:user_\(index)", String(index)]) }
        client.shutdown()
        try await offPool { first.stop() }

        let second = try await offPool { try LocalRedisCluster(ports: ports, directory: directory, appendOnly: true) }
        defer { second.stop() }
        #expect(
            try second.servers.map { try RedisConnection(url: $0.url).command(["CLUSTER", "MYID"]).string ?? "" }
                == ids,
            "the same nodes, not a new cluster")
        client = RedisClient(cluster: url, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        for index in 0..<200 {
            #expect(try await client.command(["GET", "node:user_\(index)"]).string == String(index))
        }
    }
}

@Suite("Redis Cluster URL")
struct ClusterURLTests {
    @Test func parsesSeedsAndCredentialsAndNamesWhatIsWrong() throws {
        let url = try RedisClusterURL(parsing: "redis-cluster://bitten:s3cret@10.0.0.1:7000, 10.0.0.2:7001,redis-c")
        #expect(
            url.seeds == [
                ClusterEndpoint(host: "10.0.0.1", port: 7000), ClusterEndpoint(host: "10.0.0.2", port: 7001),
                ClusterEndpoint(host: "redis-c", port: 6379),
            ])
        #expect(url.user == "bitten" && url.password == "s3cret")
        #expect(!url.description.contains("s3cret") && url.description.contains("***"))
        #expect(url.url(of: url.seeds[1]) == RedisURL(host: "10.0.0.2", port: 7001, user: "bitten", password: "s3cret"))
        #expect(try RedisClusterURL(parsing: "redis-cluster://127.0.0.1:7000/").seeds.count == 1)
        for (bad, says) in [
            ("redis://h:1", "must start with"), ("redis-cluster://h:1,,h:2", "empty node"),
            ("redis-cluster://h:99999", "not host:port"), ("redis-cluster://h:1/3", "database 0"),
            ("redis-cluster://:pw@", "empty node"),
        ] {
            #expect {
                try RedisClusterURL(parsing: bad)
            } throws: { error in
                let e = error as? RedisError
                return e?.code == .invalidURL && e!.message.contains(says) && !e!.message.contains("pw")
            }
        }
    }
}

extension LocalClusterTests {
    /// Through the cluster client: every command reaches its slot's primary; a slot migrated by hand (the
    /// steps of a resharding) is followed through ASK while it moves and MOVED once it has moved.
    @Test func theClusterClientRoutesAndFollowsAMigratingSlot() async throws {
        let client = RedisClusterClient(
            url: try RedisClusterURL(parsing: cluster.urlText), logger: Logger(label: "bitten.test"))
        defer { client.stop() }
        for index in 0..<300 { try await client.command(["SET", "k:\(index)", "\(index)"]) }
        let replies = try await client.pipeline((0..<300).map { [Array("GET".utf8), Array("k:\($0)".utf8)] })
        #expect(replies.map(\.string) == (0..<300).map { "\($0)" })
        await #expect(throws: RedisError.self) { try await client.command(["MSET", "k:1", "a", "k:2", "b"]) }

        let key = "k:7"
        let slot = ClusterSlot.of(key)
        let map = try #require(client.topology)
        let source = try #require(map.primary(for: slot))
        let target = try #require(map.primaries.first { $0 != source })
        let from = try RedisConnection(url: RedisURL(host: source.host, port: source.port))
        let to = try RedisConnection(url: RedisURL(host: target.host, port: target.port))
        let sourceID = try #require(try from.command(["CLUSTER", "MYID"]).string)
        let targetID = try #require(try to.command(["CLUSTER", "MYID"]).string)
        try to.command(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID]).orThrow()
        try from.command(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID]).orThrow()
        let keys = (try from.command(["CLUSTER", "GETKEYSINSLOT", String(slot), "1000"]).array ?? []).compactMap(
            \.string)
        #expect(keys.contains(key))
        try from.command(["MIGRATE", target.host, String(target.port), "", "0", "5000", "KEYS"] + keys).orThrow()
        // Moved keys, slot not yet reassigned: the source answers ASK, the client follows it once.
        let asksBefore = try commandCalls("asking", on: to)
        #expect(try await client.command(["GET", key]).string == "7")
        #expect(
            try commandCalls("asking", on: to) == asksBefore + 1,
            "\(asksBefore) \((try? to.command(["INFO", "commandstats"]).string) ?? "")")
        #expect(client.topology?.primary(for: slot) == source, "an ASK does not change the map")
        for primary in map.primaries {
            let connection = try RedisConnection(url: RedisURL(host: primary.host, port: primary.port))
            try connection.command(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID]).orThrow()
        }
        // Reassigned: MOVED, the map follows.
        #expect(try await client.command(["GET", key]).string == "7")
        #expect(client.topology?.primary(for: slot) == target)
        #expect(try await client.command(["INCR", "k:7:n"]).int == 1)
    }

    func commandCalls(_ name: String, on connection: RedisConnection) throws -> Int {
        let info = try connection.command(["INFO", "commandstats"]).string ?? ""
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(name):") }),
            let calls = line.split(separator: ",").first?.split(separator: "=").last
        else { return 0 }
        return Int(calls.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }
}

func eventuallyTrue(_ timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return false
}

extension LocalClusterTests {
    /// Sharded pub/sub: SPUBLISH through the cluster client reaches a sharded subscriber on the slot's
    /// primary; when the slot moves to another primary, the server ends the subscription and the
    /// subscriber follows the slot, so later messages arrive again.
    @Test func shardedSubscribersFollowTheirSlot() async throws {
        let url = try RedisClusterURL(parsing: cluster.urlText)
        let client = RedisClient(cluster: url, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        #expect(throws: RedisError.self) {
            try RedisShardedSubscriber(
                cluster: url, channels: ["events:a", "events:b"], logger: Logger(label: "bitten.test"))
        }
        let channel = "bitten:events"
        let subscriber = try RedisShardedSubscriber(
            cluster: url, channels: [channel], logger: Logger(label: "bitten.test"))
        defer { subscriber.stop() }
        final class Received: Sendable { let payloads = Mutex<[String]>([]) }
        let received = Received()
        let reader = Task {
            for await message in subscriber.messages { received.payloads.withLock { $0.append(message.payload) } }
        }
        defer { reader.cancel() }
        func eventually(_ condition: () throws -> Bool) async throws -> Bool {
            for _ in 0..<300 {
                if try condition() { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
            return try condition()
        }

        let asked = try RedisConnection(url: cluster.servers[0].url)
        let map = try ClusterTopology(slotsReply: try asked.command(["CLUSTER", "SLOTS"]), askedHost: "127.0.0.1")
        let source = try #require(map.primary(for: ClusterSlot.of(channel)))
        #expect(try await eventually { subscriber.subscribedOn == source })
        // Published before and after: what arrives while subscribed is received, in order.
        for payload in ["one", "two"] { try await client.command(["SPUBLISH", channel, payload]) }
        #expect(try await eventually { received.payloads.withLock { $0 } == ["one", "two"] })

        // The slot moves to another primary (a channel holds no keys: the owner changes at once).
        let slot = ClusterSlot.of(channel)
        let target = try #require(map.primaries.first { $0 != source })
        let targetID = try #require(
            try RedisConnection(url: RedisURL(host: target.host, port: target.port)).command(["CLUSTER", "MYID"]).string
        )
        for primary in [target] + map.primaries.filter({ $0 != target }) {
            let connection = try RedisConnection(url: RedisURL(host: primary.host, port: primary.port))
            try connection.command(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID]).orThrow()
        }
        #expect(
            try await eventually { subscriber.subscribedOn == target },
            "subscribed on \(String(describing: subscriber.subscribedOn))")
        // The client follows the MOVED; the message reaches the subscriber on the new owner.
        try await client.command(["SPUBLISH", channel, "three"])
        #expect(
            try await eventually { received.payloads.withLock { $0 }.last == "three" },
            "\(received.payloads.withLock { $0 })")
    }
}
