import BittenTestSupport
import EASimulator
import Foundation
import Logging
import Redis
import Testing
import ZeroMQ

/// Polls `condition` until it holds or `timeout` passes.
func eventually(_ timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}

extension EndToEnd {
    @Suite("EA lifecycle end to end: bitten up + simulated EAs", .serialized)
    struct LifecycleTests {
        func startBitten() async throws -> (BittenProcess, RedisConnection) {
            let bitten = try BittenProcess(environment: [
                "BITTEN_HEARTBEAT_TIMEOUT": "4", "BITTEN_MARKET_CLOSED_SILENCE": "false", "BITTEN_PING_INTERVAL": "1",
            ])
            try await bitten.waitUntilHealthy()
            let redis = try #require(bitten.managedRedis)
            let connection = try RedisConnection(url: RedisURL(host: "127.0.0.1", port: redis.port))
            return (bitten, connection)
        }

        func fleet(_ count: Int, for bitten: BittenProcess) throws -> Fleet {
            var config = FleetConfiguration(
                count: count, commandPort: bitten.commandPort, marketPort: bitten.marketPort,
                confirmPort: bitten.confirmPort, heartbeatInterval: .milliseconds(400),
                tickInterval: .milliseconds(200))
            config.symbols = ["EURUSD", "XAUUSD"]
            return try Fleet(configuration: config, logger: Logger(label: "bitten.test"))
        }

        @Test func fiftyEAsRegisterRelayTimeOutAndSwitchAccounts() async throws {
            let (bitten, redis) = try await startBitten()
            let fleet = try fleet(50, for: bitten)
            let running = Task { try await fleet.run() }
            defer { running.cancel() }

            // 50 EAs → 50 node hashes with the right fields, and active_nodes = 50.
            #expect(
                try await eventually { try redis.command(["SCARD", "active_nodes"]).int == 50 }, "\(bitten.logTail())")
            let keys = try redis.command(["KEYS", "node:*"]).array?.compactMap(\.string) ?? []
            #expect(keys.count == 50)
            let first = fleet.uuids[0]
            let node = try #require(try redis.command(["HGETALL", "node:\(first)"]).hash)
            #expect(node["account"] == "70000000")
            // The simulated terminal writes its company name in Windows-1252 (é is the byte 0xE9), like the EA.
            #expect(node["broker"] == "Bitten Courtage Simulé")
            #expect(node["server"] == "Bitten-Sim")
            #expect(node["company"] == "Bitten Courtage Simulé")
            #expect(node["version"] == "2.05")
            #expect(node["currency"] == "USD")
            #expect(node["balance"] == "10000")
            #expect(node["leverage"] == "500")
            #expect(node["version"] == "2.05")
            #expect(node["status"] == "online")
            #expect(node["node_id"]?.hasPrefix("NODE_70000000_") == true)
            for field in [
                "first_seen", "last_seen", "gateway", "symbols", "margin", "free_margin", "margin_level", "equity",
            ] {
                #expect(node[field]?.isEmpty == false, "field \(field)")
            }
            #expect(try redis.command(["LLEN", "node_history:\(first)"]).int ?? 0 >= 1)
            #expect(try redis.command(["HGET", "broker_stats:Bitten_Courtage_Simul_", "nodes"]).string == "50")

            // Ticks arrive on the relay with the symbol as topic frame.
            let context = try Context()
            let sub = try Socket(context: context, type: .sub)
            try sub.setReceiveTimeout(.seconds(5))
            try sub.subscribe("XAUUSD")
            try sub.connect("tcp://127.0.0.1:\(bitten.relayPort)")
            let relayed = try #require(try sub.receive())
            #expect(relayed.frames.count == 2)
            #expect(String(decoding: relayed.frames[0], as: UTF8.self) == "XAUUSD")
            #expect(String(decoding: relayed.frames[1], as: UTF8.self).contains(#""type":"TICK""#))
            sub.close()

            // Pings go out and pongs come back: latency is recorded.
            #expect(
                try await eventually {
                    (try redis.command(["HGET", "node:\(first)", "latency_ms"]).string ?? "") != ""
                })

            // 10 EAs stop heartbeating → exactly those 10 go offline, with exactly 10 alerts.
            let silent = Array(fleet.uuids.suffix(10))
            fleet.silence(silent)
            #expect(
                try await eventually { try redis.command(["SCARD", "active_nodes"]).int == 40 }, "\(bitten.logTail())")
            try await Task.sleep(for: .seconds(3))  // more sweeps: the cooldown must hold the alert count
            let active = Set(try redis.command(["SMEMBERS", "active_nodes"]).array?.compactMap(\.string) ?? [])
            #expect(active == Set(fleet.uuids.prefix(40)))
            for uuid in silent {
                #expect(try redis.command(["HGET", "node:\(uuid)", "status"]).string == "offline")
                #expect(try redis.command(["HGET", "node:\(uuid)", "offline_reason"]).string == "timeout")
            }
            let alerts = try redis.command(["LRANGE", "system_alerts", "0", "-1"]).array?.compactMap(\.string) ?? []
            let decoded = alerts.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(decoded.count == 10)
            #expect(Set(decoded.compactMap { $0["uuid"] as? String }) == Set(silent))
            #expect(decoded.allSatisfy { $0["kind"] as? String == "node_timeout" })

            // The API shows the same picture.
            let (_, page) = try await HTTP.json(bitten.httpBase + "/nodes?status=offline&limit=100")
            #expect(page["total"] as? Int == 10)

            // Restarting one EA on another account waits for the operator (the node is pinned to its first
            // account), then records an account switch.
            await fleet.restart(first, account: 81_000_001)
            #expect(
                try await eventually {
                    try redis.command(["HGET", "node:\(first)", "switch_account"]).string == "81000001"
                })
            #expect(try redis.command(["HGET", "node:\(first)", "account"]).string == "70000000")
            let (approved, _) = try await HTTP.sendJSON("POST", bitten.httpBase + "/nodes/\(first)/approve")
            #expect(approved == 200)
            #expect(try await eventually { try redis.command(["LLEN", "account_switches:\(first)"]).int == 1 })
            #expect(try redis.command(["HGET", "node:\(first)", "account"]).string == "81000001")
            let switchRecord = try redis.command(["LINDEX", "account_switches:\(first)", "0"]).string ?? ""
            #expect(switchRecord.contains("70000000") && switchRecord.contains("81000001"))

            // A DISCONNECT marks a node offline at once, with reason disconnect and no alert.
            let leaving = fleet.uuids[1]
            fleet.disconnect([leaving])
            #expect(
                try await eventually(.seconds(5)) {
                    try redis.command(["HGET", "node:\(leaving)", "offline_reason"]).string == "disconnect"
                })
            #expect(try redis.command(["LLEN", "system_alerts"]).int == 10)

            running.cancel()
            _ = try? await running.value
            _ = await bitten.terminate()
        }

        @Test func malformedInputIsCountedAndTheServiceKeepsRunning() async throws {
            let (bitten, redis) = try await startBitten()
            let context = try Context()
            let dealer = try Socket(context: context, type: .dealer)
            try dealer.setIdentity(Array("user_bad_000".utf8))
            try dealer.connect("tcp://127.0.0.1:\(bitten.commandPort)")
            let push = try Socket(context: context, type: .push)
            try push.connect("tcp://127.0.0.1:\(bitten.marketPort)")
            var sent = 0
            for name in try Fixtures.files(in: "ea/malformed") {
                let bytes = try Fixtures.bytes("ea/malformed/\(name)")
                try dealer.send(Message([bytes]))
                try push.send(Message([bytes]))
                sent += 1
            }
            let huge = [UInt8](repeating: 0x7B, count: 1_000_000)
            try dealer.send(Message([huge]))
            try push.send(Message([huge]))
            let junk: [UInt8] = (0..<512).map { UInt8(truncatingIfNeeded: $0 &* 37) }
            try dealer.send(Message([junk]))
            try push.send(Message([junk]))
            sent += 2

            func rejected(_ port: Int) async throws -> Int {
                let (_, data) = try await HTTP.get(bitten.httpBase + "/metrics")
                return String(decoding: data, as: UTF8.self).split(separator: "\n")
                    .filter { $0.hasPrefix("bitten_messages_rejected_total") && $0.contains(#"port="\#(port)""#) }
                    .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
                    .reduce(0, +)
            }
            #expect(try await eventually { try await rejected(bitten.commandPort) == sent }, "\(bitten.logTail())")
            #expect(try await eventually { try await rejected(bitten.marketPort) == sent })
            let (_, metricsData) = try await HTTP.get(bitten.httpBase + "/metrics")
            let metrics = String(decoding: metricsData, as: UTF8.self)
            for reason in [
                "oversized", "unknown_type", "missing_field", "wrong_type", "non_finite", "truncated", "malformed",
            ] {
                #expect(metrics.contains(#"port="\#(bitten.marketPort)",reason="\#(reason)""#), "reason \(reason)")
            }

            // Still running: a valid HELLO after the junk is registered.
            var hello = try Fixtures.bytes("ea/hello.json")
            hello = Array(
                String(decoding: hello, as: UTF8.self).replacingOccurrences(of: "user_5512093", with: "user_good_001")
                    .utf8)
            try dealer.send(Message([hello]))
            #expect(
                try await eventually { try redis.command(["SISMEMBER", "active_nodes", "user_good_001"]).int == 1 })
            let (status, _) = try await HTTP.get(bitten.httpBase + "/health")
            #expect(status == 200)
            dealer.close()
            push.close()
            _ = await bitten.terminate()
        }
    }
}
