import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

@testable import BittenCore
@testable import BittenServices

/// The node registry writes only what changed of a node (a heartbeat moves a few fields, not 44), and
/// the whole hash the first time and once a minute, so a hash lost in Redis comes back.
@Suite("Node registry flush: changed fields only")
struct NodeFlushTests {
    static func hello() throws -> EAMessage {
        try EAMessage.decode(try Fixtures.bytes("ea/hello.json"), channel: .command)
    }

    static func heartbeat() throws -> EAMessage {
        try EAMessage.decode(try Fixtures.bytes("ea/heartbeat_dealer.json"), channel: .command)
    }

    @Test func aHeartbeatWritesOnlyTheFieldsItChanged() throws {
        let registry = NodeRegistry(
            redis: RedisClient(url: RedisURL(host: "127.0.0.1", port: 1), logger: Logger(label: "bitten.test")),
            board: ServiceBoard(),
            logger: Logger(label: "test"), now: { 1000 })
        registry.handle(try Self.hello(), at: 1000)
        let first = try #require(registry.node("user_5512093"))
        var (changes, unchanged) = NodeRegistry.changes(of: [first], since: [:], at: 1000)
        #expect(changes.count == 1 && unchanged == 0)
        #expect(changes[0].fields.count == first.redisFields.count, "the first write is the whole hash")
        #expect(changes[0].status == true)
        let written = ["user_5512093": changes[0].written]

        (changes, unchanged) = NodeRegistry.changes(of: [first], since: written, at: 1001)
        #expect(changes.isEmpty && unchanged == 1, "nothing changed, nothing written")

        registry.handle(try Self.heartbeat(), at: 1030)
        let beaten = try #require(registry.node("user_5512093"))
        (changes, _) = NodeRegistry.changes(of: [beaten], since: written, at: 1030)
        let names = Set(changes.first?.fields.map(\.0) ?? [])
        #expect(names.contains("last_heartbeat") && names.contains("last_seen"))
        #expect(!names.contains("broker") && !names.contains("company") && !names.contains("pin_account"))
        #expect(names.count < first.redisFields.count / 2, "\(names.sorted())")
        #expect(changes.first?.status == nil, "still online: the active set is not touched")
        // Every changed field is really different, and every field left out is the same.
        let before = Dictionary(first.redisFields, uniquingKeysWith: { a, _ in a })
        for (name, value) in beaten.redisFields {
            #expect(names.contains(name) == (before[name] != value), "\(name)")
        }

        (changes, _) = NodeRegistry.changes(of: [beaten], since: written, at: 1000 + NodeRegistry.fullWriteInterval + 1)
        #expect(changes.first?.fields.count == beaten.redisFields.count, "the whole hash again after a minute")
    }

    /// The typed diff against the formatted one: every field whose text differs is in it, and any other
    /// field in it has the same text (a change below the sixth decimal: written again, harmlessly).
    @Test func theTypedDiffCoversEveryFieldThatReadsDifferently() throws {
        let registry = NodeRegistry(
            redis: RedisClient(url: RedisURL(host: "127.0.0.1", port: 1), logger: Logger(label: "bitten.test")),
            board: ServiceBoard(),
            logger: Logger(label: "test"), now: { 1000 })
        registry.handle(try Self.hello(), at: 1000)
        let base = try #require(registry.node("user_5512093"))
        var random = SplitMix64(seed: 15)
        let edits: [(inout NodeRecord, inout SplitMix64) -> Void] = [
            { r, g in r.balance = Double(g.next() % 100_000) / 100 }, { r, g in r.equity += g.nextUnit() },
            { r, _ in r.nodeID = "NODE_1_\(r.nodeID.count)" }, { r, g in r.account = Int(g.next() % 1000) },
            { r, _ in r.broker += "x" }, { r, _ in r.online.toggle() },
            { r, _ in r.offlineReason = r.offlineReason == nil ? "timeout" : nil },
            { r, g in r.lastSeen += g.nextUnit() }, { r, g in r.lastHeartbeat += 1e-9 * g.nextUnit() },
            { r, g in r.heartbeatInterval = g.next() % 2 == 0 ? nil : 30 }, { r, g in r.latencyMs = g.nextUnit() },
            { r, _ in r.reconnects += 1 }, { r, _ in r.commandsUnread.toggle() }, { r, _ in r.gateway = "g2" },
            { r, _ in r.brokerSymbols = BrokerSymbolMap(encoded: "EURUSD=EURUSD.r") },
            { r, g in r.pin = NodePin(account: Int(g.next() % 9), server: "S", peer: "10.0.0.1", since: 1) },
            { r, _ in r.pin?.peer = "10.0.0.2" }, { r, g in r.pinnedSeenAt = g.nextUnit() },
            { r, _ in r.pendingSwitch = PendingSwitch(account: 7, server: "S2", peer: "10.0.0.3", at: 2) },
            { r, _ in r.pendingSwitch = nil },
            { r, _ in r.lastRefused = RefusedAttempt(peer: "p", account: 1, reason: "why", at: 3) },
            { r, g in r.marginLevel = -g.nextUnit() }, { r, _ in r.symbols += 1 }, { r, _ in r.connectedSince += 5 },
        ]
        for _ in 0..<2_000 {
            var changed = base
            for _ in 0..<(Int(random.next() % 4) + 1) {
                edits[Int(random.next() % UInt64(edits.count))](&changed, &random)
            }
            let before = Dictionary(base.redisFields, uniquingKeysWith: { a, _ in a })
            let after = Dictionary(changed.redisFields, uniquingKeysWith: { a, _ in a })
            let typed = Dictionary(changed.redisFields(changedSince: base), uniquingKeysWith: { a, _ in a })
            for (name, value) in after where before[name] != value {
                #expect(typed[name] == value, "\(name) reads differently but is not in the diff")
            }
            for (name, value) in typed { #expect(after[name] == value, "\(name)") }
        }
    }

    /// Against a real redis-server: the hash is complete after the first flush, a heartbeat updates its
    /// fields with a short HSET, and a hash deleted behind the registry's back is whole again a minute later.
    @Test func theHashStaysCompleteInRedis() async throws {
        let server = try RedisServerProcess()
        let redis = RedisClient(url: try RedisURL(parsing: server.url), logger: Logger(label: "bitten.test"))
        defer { redis.shutdown() }
        let clock = Mutex(1000.0)
        let registry = NodeRegistry(
            redis: redis, board: ServiceBoard(), logger: Logger(label: "test"),
            now: { clock.withLock { $0 } })
        let probe = try RedisConnection(url: try RedisURL(parsing: server.url))
        func hash() throws -> [String: String] {
            let items = (try probe.command(["HGETALL", "node:user_5512093"]).array ?? []).compactMap(\.string)
            return Dictionary(
                stride(from: 0, to: items.count - 1, by: 2).map { (items[$0], items[$0 + 1]) },
                uniquingKeysWith: { a, _ in a })
        }
        registry.handle(try Self.hello(), at: 1000)
        await registry.flush()
        let record = try #require(registry.node("user_5512093"))
        #expect(try hash() == Dictionary(record.redisFields, uniquingKeysWith: { a, _ in a }))
        #expect(try probe.command(["SISMEMBER", "active_nodes", "user_5512093"]).int == 1)

        clock.withLock { $0 = 1030 }
        registry.handle(try Self.heartbeat(), at: 1030)
        await registry.flush()
        let beaten = try #require(registry.node("user_5512093"))
        #expect(try hash() == Dictionary(beaten.redisFields, uniquingKeysWith: { a, _ in a }))

        _ = try probe.command(["DEL", "node:user_5512093"])
        clock.withLock { $0 = 1030 + NodeRegistry.fullWriteInterval + 1 }
        registry.handle(try Self.heartbeat(), at: 1030 + NodeRegistry.fullWriteInterval + 1)
        await registry.flush()
        let healed = try #require(registry.node("user_5512093"))
        #expect(try hash() == Dictionary(healed.redisFields, uniquingKeysWith: { a, _ in a }))
    }
}

extension NodeFlushTests {
    /// A heartbeat's figures are written every `heartbeatWriteInterval`, not every flush; a status change
    /// goes out with the next flush whatever the interval; the last flush at shutdown writes everything.
    @Test func heartbeatFiguresWaitForTheirIntervalAndStatusDoesNot() async throws {
        let server = try RedisServerProcess()
        let redis = RedisClient(url: try RedisURL(parsing: server.url), logger: Logger(label: "bitten.test"))
        defer { redis.shutdown() }
        let clock = Mutex(1000.0)
        let registry = NodeRegistry(
            redis: redis, board: ServiceBoard(), heartbeatWriteInterval: 5, logger: Logger(label: "test"),
            now: { clock.withLock { $0 } })
        let probe = try RedisConnection(url: try RedisURL(parsing: server.url))
        func lastSeen() throws -> String? { try probe.command(["HGET", "node:user_5512093", "last_seen"]).string }
        registry.handle(try Self.hello(), at: 1000)
        await registry.flush()
        #expect(try lastSeen() == "1000")

        clock.withLock { $0 = 1002 }
        registry.handle(try Self.heartbeat(), at: 1002)
        await registry.flush()
        #expect(try lastSeen() == "1000", "a heartbeat's figures wait for the interval")
        clock.withLock { $0 = 1005 }
        await registry.flush()
        #expect(try lastSeen() == "1002", "and are written once it has passed")

        // A DISCONNECT (status) is written by the next flush, with the figures that waited.
        clock.withLock { $0 = 1006 }
        registry.handle(try Self.heartbeat(), at: 1006)
        let bye = try EAMessage.decode(try Fixtures.bytes("ea/disconnect.json"), channel: .market)
        registry.handle(bye, at: 1006.5)
        await registry.flush()
        #expect(try probe.command(["HGET", "node:user_5512093", "status"]).string == "offline")
        #expect(try probe.command(["SISMEMBER", "active_nodes", "user_5512093"]).int == 0)

        // The final flush writes what waits.
        clock.withLock { $0 = 1007 }
        registry.handle(try Self.heartbeat(), at: 1007)
        await registry.flush(all: true)
        let record = try #require(registry.node("user_5512093"))
        #expect(try lastSeen() == Dictionary(record.redisFields, uniquingKeysWith: { a, _ in a })["last_seen"])
        #expect(try lastSeen() != "1006")
    }
}

extension NodeFlushTests {
    /// A heartbeat write of thousands of nodes is spread over the flushes that follow (a share each, the whole
    /// queue within half the interval) instead of one flush holding the registry for all of them; a status change
    /// still goes out with the next flush, and the last flush at shutdown writes whatever still waits.
    @Test func aLargeHeartbeatWriteIsSpreadOverTheNextFlushes() async throws {
        let server = try RedisServerProcess()
        let redis = RedisClient(url: try RedisURL(parsing: server.url), logger: Logger(label: "bitten.test"))
        defer { redis.shutdown() }
        let clock = Mutex(1000.0)
        // 5 s between heartbeat writes, a flush every 200 ms: the queue goes out over 12 flushes.
        let registry = NodeRegistry(
            redis: redis, board: ServiceBoard(), flushInterval: .milliseconds(200), heartbeatWriteInterval: 5,
            logger: Logger(label: "test"), now: { clock.withLock { $0 } })
        let probe = try RedisConnection(url: try RedisURL(parsing: server.url))
        let count = 2_400
        let uuids = (0..<count).map { "user_spread_\($0)" }
        let hello = String(decoding: try Fixtures.bytes("ea/hello.json"), as: UTF8.self)
        let beat = String(decoding: try Fixtures.bytes("ea/heartbeat_dealer.json"), as: UTF8.self)
        func message(_ template: String, _ uuid: String) throws -> EAMessage {
            try EAMessage.decode(
                Array(template.replacingOccurrences(of: "user_5512093", with: uuid).utf8), channel: .command)
        }
        func written(_ at: String, of nodes: [String]) throws -> Int {
            try probe.pipeline(nodes.map { ["HGET", "node:\($0)", "last_seen"] }).filter { $0.string == at }.count
        }
        for uuid in uuids { registry.handle(try message(hello, uuid), at: 1000) }
        await registry.flush()
        #expect(try written("1000", of: uuids) == count, "new nodes (a status change) go out with the next flush, all")

        for uuid in uuids { registry.handle(try message(beat, uuid), at: 1002) }
        clock.withLock { $0 = 1005 }
        await registry.flush()
        #expect(try written("1002", of: uuids) == 200, "the first flush after the interval writes a share: 2 400 / 12")
        // The node last in the queue: its status changes now, and must not wait for its turn.
        let last = try #require(registry.state.withLock { $0.lazyDue.last })
        let others = uuids.filter { $0 != last }
        clock.withLock { $0 = 1005.2 }
        await registry.flush()
        #expect(try written("1002", of: others) == 400, "the next flush the next share")

        let bye = try EAMessage.decode(
            Array(
                String(decoding: try Fixtures.bytes("ea/disconnect.json"), as: UTF8.self)
                    .replacingOccurrences(of: "user_5512093", with: last).utf8), channel: .market)
        registry.handle(bye, at: 1005.3)
        clock.withLock { $0 = 1005.4 }
        await registry.flush()
        #expect(try probe.command(["HGET", "node:\(last)", "status"]).string == "offline", "not behind the queue")
        #expect(try written("1002", of: others) == 600)

        for step in 3..<12 {
            clock.withLock { $0 = 1005.4 + Double(step) * 0.2 }
            await registry.flush()
        }
        #expect(try written("1002", of: others) == count - 1, "the whole queue within 12 flushes")

        // The last flush writes everything that waits, whatever the share.
        for uuid in others { registry.handle(try message(beat, uuid), at: 1011) }
        clock.withLock { $0 = 1011 }
        await registry.flush()
        // (The node that went offline may be in this share or not: the queue's order is the table's.)
        #expect((199...200).contains(try written("1011", of: others)), "a new heartbeat write: a share again")
        await registry.flush(all: true)
        #expect(try written("1011", of: others) == count - 1, "and at shutdown every node at once")
    }
}

/// The node registry on a Redis Cluster (three primaries on loopback): what one registry flushes, a
/// new one restores, the node hashes spread over the primaries.
@Suite("Node registry on a Redis Cluster", .serialized)
final class NodeRegistryClusterTests {
    let running: TestCluster
    var cluster: LocalRedisCluster { running.cluster }

    init() async throws { running = try await TestCluster.start() }

    @Test func nodesAreWrittenAndRestoredAcrossThePrimaries() async throws {
        let client = RedisClient(
            cluster: try RedisClusterURL(parsing: cluster.urlText), logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        let registry = NodeRegistry(redis: client, board: ServiceBoard(), logger: Logger(label: "test"))
        let template = String(decoding: try Fixtures.bytes("ea/hello.json"), as: UTF8.self)
        let uuids = (0..<40).map { "user_cluster_\($0)" }
        for uuid in uuids {
            registry.handle(
                try EAMessage.decode(
                    Array(template.replacingOccurrences(of: "user_5512093", with: uuid).utf8),
                    channel: .command), at: 1000)
        }
        await registry.flush()
        // redis-cli --cluster create gives each of three primaries a third of the slots.
        let owners = Set(uuids.map { ClusterSlot.of("node:\($0)") / 5462 })
        #expect(owners.count >= 2, "the hashes sit on more than one primary")
        #expect(try await client.command(["SCARD", "active_nodes"]).int == uuids.count)

        let restored = NodeRegistry(redis: client, board: ServiceBoard(), logger: Logger(label: "test"))
        let running = Task { try await restored.run() }
        defer { running.cancel() }
        let deadline = ContinuousClock.now + .seconds(10)
        while restored.node(uuids[39]) == nil && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        for uuid in uuids {
            #expect(restored.node(uuid)?.redisFields.map(\.1) == registry.node(uuid)?.redisFields.map(\.1), "\(uuid)")
        }
    }
}
