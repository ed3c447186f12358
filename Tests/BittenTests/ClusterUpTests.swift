import BittenTestSupport
import EASimulator
import Foundation
import Logging
import Redis
import Testing
import ZeroMQ

extension EndToEnd {
    /// `bitten up` with its state on a Redis Cluster (three primaries, one replica each, on loopback):
    /// registration, heartbeats, pings, the relay, CITADEL, node alerts and the dashboard, with the keys
    /// spread over the primaries, and the trade path with its shard keys each in one slot.
    @Suite("bitten up on a Redis Cluster", .serialized)
    struct ClusterUpTests {
        /// `node:*` keys held by each primary (replicas answer for their primary's slots only with READONLY).
        func nodeKeysPerPrimary(_ cluster: LocalRedisCluster) throws -> [Int] {
            try cluster.servers.compactMap { server -> Int? in
                let connection = try RedisConnection(url: server.url)
                guard (try connection.command(["ROLE"]).array?.first?.string) == "master" else { return nil }
                return try connection.command(["KEYS", "node:*"]).array?.count ?? 0
            }
        }

        @Test func nodesHeartbeatsRelayAlertsAndTheDashboardOnAnExternalCluster() async throws {
            let test = try await TestCluster.start()
            let url = try RedisClusterURL(parsing: test.cluster.urlText)
            let bitten = try BittenProcess(environment: [
                "BITTEN_REDIS_URL": test.cluster.urlText, "BITTEN_HEARTBEAT_TIMEOUT": "4",
                "BITTEN_MARKET_CLOSED_SILENCE": "false", "BITTEN_PING_INTERVAL": "1",
            ])
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let redis = RedisClient(cluster: url, logger: Logger(label: "bitten.test"))
            defer { redis.shutdown() }

            var config = FleetConfiguration(
                count: 30, commandPort: bitten.commandPort, marketPort: bitten.marketPort,
                confirmPort: bitten.confirmPort, heartbeatInterval: .milliseconds(400),
                tickInterval: .milliseconds(200))
            config.symbols = ["EURUSD", "XAUUSD"]
            // A broker that decorates its names, as real ones do: the EAs send EURUSD.r and GOLD.
            config.symbolSuffix = ".r"
            config.brokerSymbols = ["XAUUSD": "GOLD"]
            let fleet = try Fleet(configuration: config, logger: Logger(label: "bitten.test"))
            let running = Task { try await fleet.run() }
            defer { running.cancel() }

            // 30 EAs registered: the node hashes are spread over the primaries, active_nodes holds them all.
            #expect(
                try await eventually { try await redis.command(["SCARD", "active_nodes"]).int == 30 },
                "\(bitten.logTail())")
            let perPrimary = try nodeKeysPerPrimary(test.cluster)
            #expect(perPrimary.count == 3 && perPrimary.reduce(0, +) == 30, "\(perPrimary)")
            #expect(perPrimary.filter { $0 > 0 }.count >= 2, "node hashes on one primary only: \(perPrimary)")
            let first = fleet.uuids[0]
            let node = try #require(try await redis.command(["HGETALL", "node:\(first)"]).hash)
            #expect(node["status"] == "online" && node["account"] == "70000000" && node["version"] == "2.05")
            #expect(try await redis.command(["LLEN", "node_history:\(first)"]).int ?? 0 >= 1)

            // Pings go out and pongs come back over the command channel.
            #expect(
                try await eventually {
                    (try await redis.command(["HGET", "node:\(first)", "latency_ms"]).string ?? "") != ""
                })

            // Ticks reach the relay, with the canonical symbol as topic.
            let context = try Context()
            let sub = try Socket(context: context, type: .sub)
            try sub.setLinger(.zero)
            try sub.setReceiveTimeout(.seconds(5))
            try sub.subscribe("XAUUSD")
            try sub.connect("tcp://127.0.0.1:\(bitten.relayPort)")
            let relayed = try #require(try sub.receive())
            #expect(String(decoding: relayed.frames[0], as: UTF8.self) == "XAUUSD", "the topic is the canonical name")
            #expect(
                String(decoding: relayed.frames[1], as: UTF8.self).contains(#""symbol":"GOLD""#),
                "the body is the EA's own")
            sub.close()

            // CITADEL reads the same market.
            #expect(try await eventually { (try? await HTTP.get(bitten.httpBase + "/citadel/EURUSD"))?.0 == 200 })

            // Five EAs fall silent: exactly those go offline, with five alerts stored on the cluster and shown by the API.
            let silent = Array(fleet.uuids.suffix(5))
            fleet.silence(silent)
            #expect(
                try await eventually { try await redis.command(["SCARD", "active_nodes"]).int == 25 },
                "\(bitten.logTail())")
            for uuid in silent {
                #expect(try await redis.command(["HGET", "node:\(uuid)", "offline_reason"]).string == "timeout")
            }
            #expect(try await eventually { try await redis.command(["LLEN", "system_alerts"]).int == 5 })
            let (_, alerts) = try await HTTP.json(bitten.httpBase + "/alerts?source=system")
            let listed = (alerts["alerts"] as? [[String: Any]] ?? []).compactMap { $0["uuid"] as? String }
            #expect(Set(listed) == Set(silent), "\(alerts)")

            // The health report and the dashboard: Redis is a cluster of three primaries; nothing is left out.
            let (status, health) = try await HTTP.json(bitten.httpBase + "/health")
            #expect(status == 200)
            let redisStatus = try #require(health["redis"] as? [String: Any])
            #expect(redisStatus["mode"] as? String == "cluster" && redisStatus["primaries"] as? Int == 3)
            #expect(redisStatus["reachable"] as? Bool == true && (redisStatus["used_memory_bytes"] as? Int ?? 0) > 0)
            #expect(health["not_running"] == nil, "\(health)")
            #expect((health["nodes"] as? [String: Any])?["online"] as? Int == 25)
            #expect(health["health_score"] as? Int != nil)
            let (pageStatus, page) = try await HTTP.get(bitten.httpBase + "/")
            #expect(pageStatus == 200 && page.count > 1000)
            let (_, snapshot) = try await HTTP.json(bitten.httpBase + "/snapshot")
            let snapshotNodes = try #require(snapshot["nodes"] as? [String: Any])
            #expect(snapshotNodes["total"] as? Int == 30 && snapshotNodes["online"] as? Int == 25, "\(snapshotNodes)")
            #expect((snapshotNodes["recent"] as? [[String: Any]] ?? []).count == 30)

            // The trade path on the cluster: a user, a signal, a fire to the EA (named the broker's way), its
            // fill, a close answered the EA v2.05's way (price 0, valued at the market) and the statistics;
            // the user's shard keys are all in one slot.
            let api = bitten.httpBase
            let trader = fleet.uuids[1]
            let (userStatus, userBody) = try await HTTP.sendJSON(
                "POST", api + "/users", body: #"{"uuid":"\#(trader)","tier":"CORPORAL"}"#)
            #expect(userStatus == 201, "\(userBody)")
            let now = Int(Date().timeIntervalSince1970)
            let (signalStatus, signalBody) = try await HTTP.sendJSON(
                "POST", api + "/signals",
                body:
                    #"{"signal_id":"CLUSTER_1","symbol":"EURUSD","direction":"BUY","entry_price":1.0852,"sl":1.0832,"tp":1.0892,"timestamp":\#(now)}"#
            )
            #expect(signalStatus == 201, "\(signalBody)")
            let (fireStatus, fire) = try await HTTP.sendJSON(
                "POST", api + "/fire/CLUSTER_1", body: #"{"user_uuid":"\#(trader)"}"#)
            #expect(fireStatus == 201, "\(fire)\n\(bitten.logTail())")
            // The EA reads its commands on its next chart tick (the v2.05): received soon after the 201, not at it.
            #expect(try await eventually(.seconds(5)) { fleet.receivedFires(for: trader).first?.symbol == "EURUSD.r" })
            var ticket = 0
            #expect(
                try await eventually {
                    let (_, open) = try await HTTP.json(api + "/users/\(trader)/positions")
                    ticket = (open["positions"] as? [[String: Any]])?.first?["ticket"] as? Int ?? 0
                    return ticket > 0
                }, "\(bitten.logTail())")
            let (closeStatus, closeBody) = try await HTTP.sendJSON(
                "POST", api + "/positions/\(ticket)/close", body: "{}")
            #expect(closeStatus == 202, "\(closeBody)")
            #expect(
                try await eventually {
                    let (_, stats) = try await HTTP.json(api + "/stats")
                    return stats["total"] as? Int == 1
                }, "\(bitten.logTail())")
            let keys = TradeKeys.of(trader)
            let position = try #require(try await redis.command(["HGETALL", keys.position(ticket)]).hash)
            #expect(position["status"] == "closed" && position["close_price_source"] == "market", "\(position)")
            #expect(try await redis.command(["EXISTS", keys.trade(ticket)]).int == 1)
            #expect(
                try await redis.command(["HGET", keys.fire(fire["fire_id"] as? String ?? ""), "state"]).string
                    == "filled")
            #expect(
                Set(
                    [keys.position(ticket), keys.trade(ticket), keys.confirmations, keys.state, keys.lease].map(
                        ClusterSlot.of)
                ).count == 1)

            running.cancel()
            _ = try? await running.value
            #expect(await bitten.terminate() != nil)
            // An external cluster is not bitten's to stop.
            #expect(test.cluster.servers.allSatisfy { $0.isRunning })
        }

        @Test func upWithRedisClusterStartsAManagedClusterAndStopsIt() async throws {
            let bitten = try BittenProcess(arguments: ["up", "--redis-cluster"])
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy(timeout: .seconds(60))
            let state = bitten.dataDir.appendingPathComponent("redis-cluster/managed-cluster.state")
            let lines = (try String(contentsOf: state, encoding: .utf8)).split(separator: "\n")
            let pids = lines.compactMap { $0.split(separator: " ").first.flatMap { Int32($0) } }
            #expect(pids.count == 6 && pids.allSatisfy(processExists))
            let (_, health) = try await HTTP.json(bitten.httpBase + "/health")
            let redisStatus = try #require(health["redis"] as? [String: Any])
            #expect(
                redisStatus["mode"] as? String == "cluster" && redisStatus["primaries"] as? Int == 3, "\(redisStatus)")
            #expect(redisStatus["reachable"] as? Bool == true)
            // AOF on in each server's own directory.
            let ports = lines.compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
            for port in ports {
                let dir = bitten.dataDir.appendingPathComponent("redis-cluster/\(port)")
                #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("nodes.conf").path))
                #expect(
                    FileManager.default.fileExists(atPath: dir.appendingPathComponent("appendonlydir").path)
                        || FileManager.default.fileExists(atPath: dir.appendingPathComponent("appendonly.aof").path))
            }
            let took = await bitten.terminate(timeout: .seconds(20))
            #expect(took != nil, "\(bitten.logTail())")
            #expect(pids.allSatisfy { !processExists($0) }, "the managed cluster must stop with bitten")
        }
    }
}
