import BittenServices
import BittenTestSupport
import EASimulator
import Foundation
import Redis
import Testing

extension EndToEnd {
    /// Two gateway processes and a third with the trade path, sharing one Redis; the EAs are split
    /// between the gateways. A fire for any EA is delivered exactly once, through its own gateway.
    @Suite("Scale-out: two gateways and a trade process on one Redis", .serialized)
    struct ScaleOutTests {
        @Test func firesReachEAsOnEitherGatewayExactlyOnce() async throws {
            let redisServer = try RedisServerProcess(appendOnly: false)
            defer { redisServer.stop() }
            let shared = [
                "BITTEN_REDIS_URL": redisServer.url, "BITTEN_MARKET_CLOSED_SILENCE": "false",
                "BITTEN_FIRE_TIMEOUT": "5",
            ]
            let gatewayServices = ["run", "gateway", "telemetry", "confirmations", "nodes", "monitor", "http"]
            let g1 = try BittenProcess(arguments: gatewayServices + ["--gateway-id", "g1"], environment: shared)
            defer { g1.terminateAndWait() }
            let g2 = try BittenProcess(arguments: gatewayServices + ["--gateway-id", "g2"], environment: shared)
            defer { g2.terminateAndWait() }
            let desk = try BittenProcess(
                arguments: ["run", "trade", "citadel", "http", "--gateway-id", "desk"], environment: shared)
            defer { desk.terminateAndWait() }
            try await g1.waitUntilHealthy()
            try await g2.waitUntilHealthy()
            try await desk.waitUntilHealthy()

            let running1 = try await startFleet(3, for: g1, prefix: "user_g1_", account: 71_000_000)
            let running2 = try await startFleet(3, for: g2, prefix: "user_g2_", account: 72_000_000)
            let fleet1 = running1.fleet
            let fleet2 = running2.fleet
            defer {
                running1.stop()
                running2.stop()
            }
            let redis = try RedisConnection(url: RedisURL(host: "127.0.0.1", port: redisServer.port))
            #expect(try await eventually(.seconds(20)) { try redis.command(["SCARD", "active_nodes"]).int == 6 })
            for uuid in fleet1.uuids { #expect(try redis.command(["HGET", "node:\(uuid)", "gateway"]).string == "g1") }
            for uuid in fleet2.uuids { #expect(try redis.command(["HGET", "node:\(uuid)", "gateway"]).string == "g2") }

            let api = desk.httpBase
            let now = Int(Date().timeIntervalSince1970)
            let (signalStatus, signalBody) = try await HTTP.sendJSON(
                "POST", api + "/signals",
                body:
                    #"{"signal_id":"SCALE_1","symbol":"EURUSD","direction":"BUY","entry_price":1.0852,"sl":1.0832,"tp":1.0892,"timestamp":\#(now)}"#
            )
            #expect(signalStatus == 201, "\(signalBody)")
            var fires: [String: String] = [:]
            for uuid in fleet1.uuids + fleet2.uuids {
                _ = try await HTTP.sendJSON("POST", api + "/users", body: #"{"uuid":"\#(uuid)","tier":"CORPORAL"}"#)
                let (status, body) = try await HTTP.sendJSON(
                    "POST", api + "/fire/SCALE_1", body: #"{"user_uuid":"\#(uuid)"}"#)
                #expect(status == 201, "\(uuid): \(body)\n\(desk.logTail())")
                fires[uuid] = body["fire_id"] as? String
            }
            // Each EA got its fire once, through its own gateway, and the fills came back.
            #expect(
                try await eventually(.seconds(15)) {
                    fleet1.receivedFires().count == 3 && fleet2.receivedFires().count == 3
                }, "g1 \(fleet1.receivedFires().count), g2 \(fleet2.receivedFires().count)")
            for (uuid, fireID) in fires {
                #expect(
                    try await eventually(.seconds(15)) {
                        let (_, record) = try await HTTP.json(api + "/fires/\(fireID)")
                        return record["state"] as? String == "filled"
                    }, "\(uuid) \(fireID)")
            }
            try await Task.sleep(for: .seconds(1))
            for uuid in fleet1.uuids { #expect(fleet1.receivedFires(for: uuid).map(\.fireID) == [fires[uuid]]) }
            for uuid in fleet2.uuids { #expect(fleet2.receivedFires(for: uuid).map(\.fireID) == [fires[uuid]]) }
            #expect(
                try redis.command(["LLEN", "gateway:g1:inbox"]).int == 0
                    && redis.command(["LLEN", "gateway:g2:inbox"]).int == 0)

            // An EA that is not connected anywhere is refused with the reason.
            _ = try await HTTP.sendJSON("POST", api + "/users", body: #"{"uuid":"user_nowhere_1","tier":"CORPORAL"}"#)
            let (refused, body) = try await HTTP.sendJSON(
                "POST", api + "/fire/SCALE_1", body: #"{"user_uuid":"user_nowhere_1"}"#)
            #expect(refused == 409, "\(body)")

            // A gateway that dies without a word leaves its nodes "online" in their hashes; its liveness key
            // expires, and a fire for one of its EAs is refused `ea_offline` instead of waiting in a dead inbox.
            kill(g2.pid, SIGKILL)
            let (_, second) = try await HTTP.sendJSON(
                "POST", api + "/signals",
                body:
                    #"{"signal_id":"SCALE_2","symbol":"EURUSD","direction":"BUY","entry_price":1.0852,"sl":1.0832,"tp":1.0892,"timestamp":\#(now)}"#
            )
            #expect(second["signal_id"] as? String == "SCALE_2", "\(second)")
            let orphaned = try #require(fleet2.uuids.first)
            #expect(try redis.command(["HGET", "node:\(orphaned)", "status"]).string == "online")
            #expect(try await eventually(.seconds(15)) { try redis.command(["EXISTS", "gateway:g2:alive"]).int == 0 })
            let (status, answer) = try await HTTP.sendJSON(
                "POST", api + "/fire/SCALE_2", body: #"{"user_uuid":"\#(orphaned)"}"#)
            #expect(
                status == 409 && (answer["error"] as? [String: Any])?["code"] as? String == "ea_offline", "\(answer)")
            #expect(try redis.command(["LLEN", "gateway:g2:inbox"]).int == 0)
            // The EAs of the live gateway are still reached.
            let (alive, fired) = try await HTTP.sendJSON(
                "POST", api + "/fire/SCALE_2", body: #"{"user_uuid":"\#(fleet1.uuids[0])"}"#)
            #expect(alive == 201, "\(fired)")
        }

        /// Two trade processes on one Redis: `owner` holds every shard (and the EAs' gateway); `other` holds
        /// none. Fires and closes asked of `other` go through the shard's inbox to `owner`, which performs them
        /// once: the EA gets each command once, a repeat is the first fire, a refusal keeps its reason.
        @Test func firesAndClosesForAnotherProcessesShardGoThroughItsInbox() async throws {
            let redisServer = try RedisServerProcess(appendOnly: false)
            defer { redisServer.stop() }
            let shared = [
                "BITTEN_REDIS_URL": redisServer.url, "BITTEN_MARKET_CLOSED_SILENCE": "false",
                "BITTEN_FIRE_TIMEOUT": "5",
            ]
            let owner = try BittenProcess(
                arguments: [
                    "run", "gateway", "telemetry", "confirmations", "nodes", "trade", "citadel", "http", "--gateway-id",
                    "owner",
                ],
                environment: shared)
            defer { owner.terminateAndWait() }
            try await owner.waitUntilHealthy()
            let redis = try RedisConnection(url: RedisURL(host: "127.0.0.1", port: redisServer.port))
            #expect(
                try await eventually {
                    try TradeKeys.all.allSatisfy {
                        (try redis.command(["GET", $0.lease]).string ?? "").hasPrefix("owner/")
                    }
                }, "\(owner.logTail())")
            let other = try BittenProcess(
                arguments: ["run", "trade", "http", "--gateway-id", "other"], environment: shared)
            defer { other.terminateAndWait() }
            try await other.waitUntilHealthy()
            let running = try await startFleet(2, for: owner, prefix: "user_routed_", account: 73_000_000)
            let fleet = running.fleet
            defer { running.stop() }
            for uuid in fleet.uuids {
                let (created, body) = try await HTTP.sendJSON(
                    "POST", owner.httpBase + "/users", body: #"{"uuid":"\#(uuid)","tier":"CORPORAL"}"#)
                #expect(created == 201, "\(body)")
            }
            let now = Int(Date().timeIntervalSince1970)
            let (signalStatus, signalBody) = try await HTTP.sendJSON(
                "POST", owner.httpBase + "/signals",
                body:
                    #"{"signal_id":"ROUTED_1","symbol":"EURUSD","direction":"BUY","entry_price":1.0852,"sl":1.0832,"tp":1.0892,"timestamp":\#(now)}"#
            )
            #expect(signalStatus == 201, "\(signalBody)")

            // Bad entries in an inbox (not JSON, a field missing, a field of the wrong type, oversized) are
            // counted and dropped; the owner keeps serving the inbox.
            let oversized =
                #"{"request":"r4","operation":"fire","userUUID":"u","expiresAt":1e12,"signalID":"\#(String(repeating: "X", count: 70_000))"}"#
            for bad in [
                "not json", #"{"request":"r2","operation":"fire"}"#,
                #"{"request":"r3","operation":"fire","userUUID":7,"expiresAt":"soon"}"#, oversized,
            ] {
                _ = try redis.command(["LPUSH", ShardRouting.inbox(0), bad])
            }

            // Fired through `other`: performed by `owner`, once.
            var fires: [String: String] = [:]
            for uuid in fleet.uuids {
                let (status, body) = try await HTTP.sendJSON(
                    "POST", other.httpBase + "/fire/ROUTED_1", body: #"{"user_uuid":"\#(uuid)"}"#)
                #expect(status == 201, "\(body)\n\(other.logTail())")
                fires[uuid] = body["fire_id"] as? String
            }
            for (uuid, fireID) in fires {
                #expect(
                    try await eventually(.seconds(15)) {
                        let (_, record) = try await HTTP.json(other.httpBase + "/fires/\(fireID)")
                        return record["state"] as? String == "filled"
                    }, "\(uuid) \(fireID)\n\(owner.logTail())")
            }
            // A repeat is the first fire; refusals keep their reasons.
            let (again, repeated) = try await HTTP.sendJSON(
                "POST", other.httpBase + "/fire/ROUTED_1", body: #"{"user_uuid":"\#(fleet.uuids[0])"}"#)
            #expect(
                again == 200 && repeated["fire_id"] as? String == fires[fleet.uuids[0]]
                    && repeated["duplicate"] as? Bool == true, "\(repeated)")
            let (unknown, missing) = try await HTTP.sendJSON(
                "POST", other.httpBase + "/fire/NO_SUCH_SIGNAL", body: #"{"user_uuid":"\#(fleet.uuids[0])"}"#)
            #expect(
                unknown == 404 && (missing["error"] as? [String: Any])?["code"] as? String == "signal_not_found",
                "\(missing)")
            let (nobody, stranger) = try await HTTP.sendJSON(
                "POST", other.httpBase + "/fire/ROUTED_1", body: #"{"user_uuid":"user_routed_nobody"}"#)
            #expect(
                nobody == 404 && (stranger["error"] as? [String: Any])?["code"] as? String == "user_not_found",
                "\(stranger)")

            // A close by ticket and a close-all, asked of `other`: the EAs close (the EA v2.05's way), once.
            let (_, open) = try await HTTP.json(other.httpBase + "/positions")
            let positions = open["positions"] as? [[String: Any]] ?? []
            #expect(positions.count == 2, "\(open)")
            let first = try #require(
                positions.first { $0["user_uuid"] as? String == fleet.uuids[0] }?["ticket"] as? Int)
            let (closing, close) = try await HTTP.sendJSON("POST", other.httpBase + "/positions/\(first)/close")
            #expect(closing == 202 && close["state"] as? String == "sent", "\(close)")
            let (closingAll, all) = try await HTTP.sendJSON(
                "POST", other.httpBase + "/users/\(fleet.uuids[1])/close-all")
            #expect(closingAll == 202 && (all["closes"] as? [Any])?.count == 1, "\(all)")
            #expect(
                try await eventually(.seconds(15)) {
                    let (_, left) = try await HTTP.json(other.httpBase + "/positions")
                    return (left["positions"] as? [Any])?.isEmpty == true
                }, "\(owner.logTail())")
            try await Task.sleep(for: .seconds(1))
            for uuid in fleet.uuids { #expect(fleet.receivedFires(for: uuid).map(\.fireID) == [fires[uuid]]) }
            // Each close command read once: a close_ticket by the first EA, a close_all by the second.
            let closes0 = fleet.commandsRead(by: fleet.uuids[0]).filter { $0.contains("close") }
            let closes1 = fleet.commandsRead(by: fleet.uuids[1]).filter { $0.contains("close") }
            #expect(closes0.count == 1 && closes0[0].contains("close_ticket"), "\(closes0)")
            #expect(closes1.count == 1 && closes1[0].contains("close_all"), "\(closes1)")
            for shard in 0..<TradeKeys.shards {
                #expect(try redis.command(["LLEN", ShardRouting.inbox(shard)]).int == 0)
            }
            // All of it was performed by `owner` (it still holds every shard) through its inboxes: two fires, the
            // repeat, the two refusals, the close and the close-all.
            #expect(
                try TradeKeys.all.allSatisfy {
                    (try redis.command(["GET", $0.lease]).string ?? "").hasPrefix("owner/")
                })
            let (_, health) = try await HTTP.json(owner.httpBase + "/health")
            let inbox = (health["services"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "trade_inbox" }
            #expect(inbox?["messages_in"] as? Int == 7 && inbox?["errors"] as? Int == 4, "\(String(describing: inbox))")
        }
    }
}
