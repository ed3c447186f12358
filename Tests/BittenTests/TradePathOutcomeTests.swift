import BittenCore
import BittenServices
import BittenTestSupport
import EASimulator
import Foundation
import Hummingbird
import Logging
import Redis
import Synchronization
import Testing
import ZeroMQ

/// The trade path end to end: timeouts, rejections, the engine intake socket and the webhook.
extension EndToEnd.TradePathTests {
    @Test(arguments: Backend.allCases)
    func unansweredFireTimesOutFreesTheSlotAndIsNeverResent(_ backend: Backend) async throws {
        let system = try await start(backend, eas: 1)
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        system.fleet.mute([uuid])
        try await addUser(system, uuid, tier: "RECRUIT")
        try await postSignal(system, signal("SIG_SILENT_1"))
        let (status, body) = try await fire(system, "SIG_SILENT_1", uuid)
        #expect(status == 201, "\(body)")
        let fireID = try #require(body["fire_id"] as? String)
        #expect(
            try await eventually {
                let (_, record) = try await HTTP.json(system.api + "/fires/\(fireID)")
                return record["state"] as? String == "timed_out"
            }, "\(system.bitten.logTail())")
        let (_, user) = try await HTTP.json(system.api + "/users/\(uuid)")
        #expect(user["slots_used"] as? Int == 0)
        try await Task.sleep(for: .seconds(1))
        #expect(system.fleet.receivedFires().count == 1)
    }

    @Test(arguments: Backend.allCases)
    func failedConfirmationIsARejectionWithTheEAMessage(_ backend: Backend) async throws {
        let system = try await start(backend, eas: 1, failureRate: 1.0)
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "RECRUIT")
        try await postSignal(system, signal("SIG_FAIL_1"))
        let (status, body) = try await fire(system, "SIG_FAIL_1", uuid)
        #expect(status == 201, "\(body)")
        let fireID = try #require(body["fire_id"] as? String)
        var record: [String: Any] = [:]
        #expect(
            try await eventually {
                (_, record) = try await HTTP.json(system.api + "/fires/\(fireID)")
                return record["state"] as? String == "rejected"
            })
        #expect((record["ea_message"] as? String)?.contains("10019") == true)
        let (_, open) = try await HTTP.json(system.api + "/positions")
        #expect((open["positions"] as? [Any])?.isEmpty == true)
        let (_, user) = try await HTTP.json(system.api + "/users/\(uuid)")
        #expect(user["slots_used"] as? Int == 0)
    }

    @Test(arguments: Backend.allCases)
    func engineSignalsOnTheIntakeSocketArePublishedShielded(_ backend: Backend) async throws {
        let system = try await start(backend, eas: 1)
        defer { system.stop() }
        let context = try Context()
        let sub = try Socket(context: context, type: .sub)
        try sub.setReceiveTimeout(.seconds(5))
        try sub.subscribe("ELITE_GUARD_SIGNAL")
        try sub.connect("tcp://127.0.0.1:\(system.bitten.ports["BITTEN_SIGNAL_PORT"] ?? 0)")
        let push = try Socket(context: context, type: .push)
        let intakePort = system.bitten.ports["BITTEN_SIGNAL_IN_PORT"] ?? 0
        try push.connect("tcp://127.0.0.1:\(intakePort)")
        try await Task.sleep(for: .milliseconds(300))  // let the subscription reach the PUB
        try push.send("ELITE_GUARD_SIGNAL {\"signal_id\":\"BROKEN_1\",")
        // The engine's own shape and prefix, with an expiry still ahead.
        let future = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600)).replacingOccurrences(
            of: "Z", with: "")
        let engine = String(decoding: try Fixtures.data("ea/signal_elite_guard.json"), as: UTF8.self)
            .replacingOccurrences(of: "2026-11-24T16:10:00", with: future)
        try push.send("ELITE_GUARD_SIGNAL " + engine)
        let message = try #require(try sub.receive())
        let frame = String(decoding: message.frames[0], as: UTF8.self)
        #expect(frame.hasPrefix("ELITE_GUARD_SIGNAL {"))
        let published = try #require(
            try JSONSerialization.jsonObject(with: Data(frame.dropFirst("ELITE_GUARD_SIGNAL ".count).utf8))
                as? [String: Any])
        #expect(published["signal_id"] as? String == "ELITE_GUARD_GBPUSD_1795961400")
        #expect(published["citadel_shielded"] as? Bool == true)
        // Scored by CITADEL: a score in 1–10, its level, the level's multiplier and plain-word insights.
        let score = try #require(published["citadel_score"] as? Double)
        #expect((1...10).contains(score))
        let level = RiskLevel(score: score)
        #expect(published["citadel_level"] as? String == level.rawValue)
        #expect(published["citadel_multiplier"] as? Double == CitadelSettings().multiplier(for: level))
        #expect(((published["citadel_insights"] as? [String]) ?? []).count >= 1)
        #expect(published["xp_reward"] as? Int == 120)  // the engine's extras are kept
        let (status, stored) = try await HTTP.json(system.api + "/signals/ELITE_GUARD_GBPUSD_1795961400")
        #expect(status == 200 && stored["risk_level"] as? String == level.rawValue)
        let (_, metricsData) = try await HTTP.get(system.api + "/metrics")
        #expect(String(decoding: metricsData, as: UTF8.self).contains(#"port="\#(intakePort)",reason="truncated""#))
        sub.close()
        push.close()
    }

    @Test func tradeEventsReachTheWebhook() async throws {
        let received = Mutex<[[String: String]]>([])
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            if let event = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] {
                let strings = event.compactMapValues { $0 as? String }
                received.withLock { $0.append(strings) }
            }
            return .ok
        }
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } })
        let server = Task { try await app.runService() }
        defer { server.cancel() }
        #expect(try await eventually { port.withLock { $0 } != nil })
        let hook = "http://127.0.0.1:\(port.withLock { $0 } ?? 0)/hook"
        let system = try await start(eas: 1, environment: ["BITTEN_WEBHOOK_URL": hook])
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "RECRUIT")
        try await postSignal(system, signal("SIG_HOOK_1"))
        let (status, body) = try await fire(system, "SIG_HOOK_1", uuid)
        #expect(status == 201, "\(body)")
        let fireID = try #require(body["fire_id"] as? String)
        #expect(
            try await eventually {
                received.withLock { events in
                    events.contains { $0["event"] == "fire.filled" && $0["fire_id"] == fireID }
                }
            }, "\(system.bitten.logTail())")
    }
}
