import BittenTestSupport
import EASimulator
import Foundation
import Logging
import Redis
import Testing
import ZeroMQ

extension EndToEnd {
    /// Faults with real processes: Redis goes away under load and comes back.
    @Suite("Faults: Redis outage under confirmation load", .serialized)
    struct FaultTests {
        @Test func confirmationsSurviveARedisOutageExactlyOnce() async throws {
            let redisServer = try RedisServerProcess(appendOnly: true)
            defer { redisServer.stop() }
            let bitten = try BittenProcess(environment: [
                "BITTEN_REDIS_URL": redisServer.url, "BITTEN_FIRE_TIMEOUT": "5",
                "BITTEN_MARKET_CLOSED_SILENCE": "false",
            ])
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let api = bitten.httpBase

            // Ten EAs, each with one open EURUSD position (the simulator confirms the fills).
            let fleet = try await startFleet(10, for: bitten)
            defer { fleet.stop() }
            let now = Int(Date().timeIntervalSince1970)
            let (signalStatus, _) = try await HTTP.sendJSON(
                "POST", api + "/signals",
                body:
                    #"{"signal_id":"OUTAGE_1","symbol":"EURUSD","direction":"BUY","entry_price":1.0852,"sl":1.0832,"tp":1.0892,"timestamp":\#(now)}"#
            )
            #expect(signalStatus == 201)
            for uuid in fleet.uuids {
                _ = try await HTTP.sendJSON("POST", api + "/users", body: #"{"uuid":"\#(uuid)","tier":"CORPORAL"}"#)
                let (status, body) = try await HTTP.sendJSON(
                    "POST", api + "/fire/OUTAGE_1", body: #"{"user_uuid":"\#(uuid)"}"#)
                #expect(status == 201, "\(body)")
            }
            var positions: [[String: Any]] = []
            #expect(
                try await eventually {
                    let (_, open) = try await HTTP.json(api + "/positions")
                    positions = open["positions"] as? [[String: Any]] ?? []
                    return positions.count == 10
                })
            let tickets = positions.compactMap { $0["ticket"] as? Int }
            var admin = try RedisConnection(url: RedisURL(host: "127.0.0.1", port: redisServer.port))
            let before = try TradeKeys.ledgerLength(admin)
            #expect(before == 10)

            // Confirmations keep arriving on 5558 (unknown fires, as from other traffic) while Redis is down
            // for 10 s; the ten positions are closed by their EAs during the outage.
            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setLinger(.seconds(5))
            try push.connect("tcp://127.0.0.1:\(bitten.confirmPort)")
            defer { push.close() }
            var sent = 0
            func confirmation(_ i: Int) -> String {
                #"{"type":"confirmation","command_type":"fire","fire_id":"F-OUTAGE-\#(i)","node_id":"NODE_1_1","user_uuid":"user_outage_\#(i % 7)","status":"success","ticket":\#(900_000 + i),"price":1.0853,"lot":0.1,"message":"ok","account":70000000,"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.25 14:00:00"}"#
            }
            for i in 0..<50 {
                try push.send(confirmation(i))
                sent += 1
            }
            redisServer.stop()
            let outageStart = ContinuousClock.now
            var sawDegraded = false
            var fireRefusal = ""
            var closeIndex = 0
            while ContinuousClock.now - outageStart < .seconds(10) {
                for _ in 0..<20 {
                    try push.send(confirmation(sent))
                    sent += 1
                }
                if closeIndex < tickets.count {
                    let ticket = tickets[closeIndex]
                    let uuid = positions[closeIndex]["user_uuid"] as? String ?? ""
                    // As the EA v2.05 answers: close price 0 (valued at the market), its account and its node id
                    // (anything else is untrusted and not applied).
                    let account = positions[closeIndex]["account"] as? Int ?? 0
                    let node = fleet.fleet.ea(uuid)?.nodeID ?? ""
                    try push.send(
                        #"{"type":"close_confirmation","command_type":"close_ticket","node_id":"\#(node)","user_uuid":"\#(uuid)","status":"success","ticket":\#(ticket),"close_price":0.00000,"lot":0.41,"message":"Position closed successfully","account":\#(account),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.25 14:00:05"}"#
                    )
                    sent += 1
                    closeIndex += 1
                }
                if !sawDegraded, let (_, health) = try? await HTTP.json(api + "/health") {
                    sawDegraded = health["status"] as? String == "degraded"
                }
                if fireRefusal.isEmpty {
                    let (status, body) = try await HTTP.sendJSON(
                        "POST", api + "/fire/OUTAGE_1", body: #"{"user_uuid":"\#(fleet.uuids[0])"}"#)
                    if status >= 400 {
                        fireRefusal = "\(status) \((body["error"] as? [String: Any])?["message"] as? String ?? "")"
                    }
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(sawDegraded, "/health did not say degraded while Redis was down")
            #expect(
                !fireRefusal.isEmpty && fireRefusal.lowercased().contains("redis"),
                "fire during the outage: \(fireRefusal)")
            let spool = bitten.dataDir.appendingPathComponent("spool/confirmations.spool")
            let spooledLines = (try? String(contentsOf: spool, encoding: .utf8))?.split(separator: "\n").count ?? 0
            #expect(spooledLines > 0, "nothing was spooled to disk during the outage:\n\(bitten.logTail(60))")

            try redisServer.start()
            let back = ContinuousClock.now
            admin = try RedisConnection(url: RedisURL(host: "127.0.0.1", port: redisServer.port))
            let expected = before + sent
            #expect(
                try await eventually(.seconds(30)) { (try? TradeKeys.ledgerLength(admin)) == expected },
                "the ledger has \((try? TradeKeys.ledgerLength(admin)) ?? -1) of \(expected)")
            let recovery = ContinuousClock.now - back
            print(
                "redis outage: \(sent) confirmations sent during/around a 10 s outage, \(spooledLines) spooled, all in the stream \(recovery) after Redis returned"
            )

            // Exactly once: every entry id appears once and the count matches what was sent.
            let ids = try TradeKeys.ledgerEntries(admin).compactMap { $0["entry_id"] }
            #expect(
                ids.count == expected && Set(ids).count == expected,
                "\(ids.count) ids, \(Set(ids).count) distinct, \(expected) expected")

            // The closes were applied once: statistics equal a recount of the trade records.
            #expect(
                try await eventually(.seconds(20)) {
                    let (_, stats) = try await HTTP.json(api + "/stats")
                    return stats["total"] as? Int == 10
                })
            var recount = 0.0
            for ticket in tickets {
                let uuid = positions.first { $0["ticket"] as? Int == ticket }?["user_uuid"] as? String ?? ""
                recount +=
                    Double(try admin.command(["HGET", TradeKeys.of(uuid).trade(ticket), "profit"]).string ?? "nan")
                    ?? .nan
            }
            let (_, stats) = try await HTTP.json(api + "/stats")
            #expect(
                abs((stats["net"] as? Double ?? .nan) - recount) < 0.005,
                "net \(stats["net"] ?? "?") vs recount \(recount)")
            let (_, open) = try await HTTP.json(api + "/positions")
            #expect((open["positions"] as? [Any])?.isEmpty == true, "\(open)")
        }
    }

    @Suite("Faults: a flooding EA", .serialized)
    struct FloodTests {
        @Test func aFloodingEAIsRateLimitedWithoutStarvingOthers() async throws {
            let bitten = try BittenProcess(environment: ["BITTEN_EA_RATE_LIMIT": "500"])
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let context = try Context()
            let sub = try Socket(context: context, type: .sub)
            try sub.setReceiveHighWaterMark(0)
            try sub.setReceiveTimeout(.seconds(3))
            try sub.subscribe("")
            try sub.connect("tcp://127.0.0.1:\(bitten.relayPort)")
            defer { sub.close() }
            try await Task.sleep(for: .milliseconds(400))
            func tick(_ uuid: String) -> String {
                #"{"type":"TICK","node_id":"NODE_1_1","user_uuid":"\#(uuid)","symbol":"EURUSD","bid":1.08512,"ask":1.08525,"spread":1.3,"volume":1,"timestamp":"2026.11.25 14:00:00"}"#
            }
            let flood = try Socket(context: context, type: .push)
            try flood.setLinger(.seconds(10))
            try flood.setSendHighWaterMark(200_000)
            try flood.connect("tcp://127.0.0.1:\(bitten.marketPort)")
            let calm = try Socket(context: context, type: .push)
            try calm.setLinger(.seconds(10))
            try calm.connect("tcp://127.0.0.1:\(bitten.marketPort)")
            defer {
                flood.close()
                calm.close()
            }
            let start = Date()
            let floodText = tick("user_flood_1")
            for i in 0..<100_000 {
                try flood.send(floodText)
                if i % 1000 == 0 { try calm.send(tick("user_calm_1")) }
            }
            var counts: [String: Int] = [:]
            while let message = try sub.receive() {
                let text = String(decoding: message.frames.last ?? [], as: UTF8.self)
                counts[text.contains("user_flood_1") ? "flood" : "calm", default: 0] += 1
                if counts["calm"] == 100 && Date().timeIntervalSince(start) > 2 { break }
            }
            let elapsed = Date().timeIntervalSince(start)
            #expect(counts["calm"] == 100, "the calm EA lost ticks: \(counts)")
            let flooded = counts["flood"] ?? 0
            #expect(
                flooded >= 1000 && Double(flooded) <= 1000 + 500 * elapsed + 50,
                "flood relayed \(flooded) in \(elapsed) s")
            // Every message the server took is either relayed or counted as rate_limited.
            var accounting = ""
            #expect(
                try await eventually(.seconds(20)) {
                    let (_, metrics) = try await HTTP.get(bitten.httpBase + "/metrics")
                    let line = String(decoding: metrics, as: UTF8.self).split(separator: "\n")
                        .first {
                            $0.contains("bitten_messages_rejected_total") && $0.contains("rate_limited")
                                && $0.contains("\"\(bitten.marketPort)\"")
                        }
                    let limited = Int(Double(line?.split(separator: " ").last ?? "0") ?? 0)
                    let (_, health) = try await HTTP.json(bitten.httpBase + "/health")
                    let ports = health["ports"] as? [[String: Any]] ?? []
                    let received = ports.first { $0["name"] as? String == "market" }?["received"] as? Int ?? 0
                    let relayed = ports.first { $0["name"] as? String == "relay" }?["sent"] as? Int ?? 0
                    accounting = "received \(received), relayed \(relayed), rate_limited \(limited)"
                    return received == 100_100 && relayed + limited == received
                }, "\(accounting)")
            let (status, health) = try await HTTP.json(bitten.httpBase + "/health")
            #expect(status == 200 && health["status"] as? String != nil)
        }
    }

}
