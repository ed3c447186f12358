import BittenCore
import BittenServices
import BittenTestSupport
import EASimulator
import Foundation
import Synchronization
import Testing

extension EndToEnd {
    /// Trading states end to end: `bitten up`, EAs faithful to the v2.05, real Redis, the HTTP API and the CLI.
    @Suite("Trading controls end to end: halt, close-only, resume", .serialized)
    struct ControlEndToEndTests {
        let path = TradePathTests()

        /// Fires from three callers at once while an operator halts: every fire that reached an EA was sent before
        /// the halt was acknowledged, every fire asked after it is refused, and the EAs receive nothing more.
        @Test func aHaltDuringAStreamOfFiresSendsNothingOnceAcknowledged() async throws {
            let system = try await path.start(eas: 6)
            defer { system.stop() }
            let uuids = system.fleet.uuids
            for uuid in uuids { try await path.addUser(system, uuid, tier: "COMMANDER") }
            let signals = (0..<60).map { "HALT_STREAM_\($0)" }
            for id in signals { try await path.postSignal(system, path.signal(id)) }
            // COMMANDER: 15 slots; up to 60 signals x 6 users = 360 fires, more than the slots, so some are
            // no_free_slot.
            let api = system.api
            // When the halt was acknowledged: each caller goes on until it has asked a few fires after that (a
            // fixed number of fires could all be asked before a slow acknowledgement, which tests nothing).
            let acknowledged = Acknowledged()
            // Each caller returns its outcomes (asked at, status, code); the operator's task returns the moment its
            // halt was acknowledged, as status 0.
            let results = try await withThrowingTaskGroup(of: [(asked: Double, status: Int, code: String?)].self) {
                group in
                for caller in 0..<3 {
                    group.addTask {
                        var outcomes: [(asked: Double, status: Int, code: String?)] = []
                        for (index, id) in signals.enumerated() where index % 3 == caller {
                            for uuid in uuids {
                                if let at = acknowledged.at.withLock({ $0 }),
                                    outcomes.count(where: { $0.asked > at }) >= 3
                                {
                                    return outcomes
                                }
                                let asked = Date().timeIntervalSince1970
                                let (status, body) = try await HTTP.sendJSON(
                                    "POST", api + "/fire/\(id)", body: #"{"user_uuid":"\#(uuid)"}"#)
                                outcomes.append((asked, status, (body["error"] as? [String: Any])?["code"] as? String))
                                try await Task.sleep(for: .milliseconds(15))
                            }
                        }
                        return outcomes
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(900))
                    let (status, body) = try await HTTP.sendJSON(
                        "POST", api + "/control/halt", body: #"{"reason":"stream test","by":"tester"}"#)
                    #expect(status == 200, "\(body)")
                    #expect((body["acknowledged"] as? [String])?.count == 1, "one trade process: \(body)")
                    #expect((body["waiting"] as? [String]) == [], "\(body)")
                    let at = Date().timeIntervalSince1970
                    acknowledged.at.withLock { $0 = at }
                    return [(at, 0, nil)]
                }
                var all: [(asked: Double, status: Int, code: String?)] = []
                for try await part in group { all += part }
                return all
            }
            let ackAt = try #require(results.first { $0.status == 0 }?.asked)
            let all = results.filter { $0.status != 0 }
            let sentBefore = all.filter { $0.status == 201 }
            let after = all.filter { $0.asked > ackAt }
            #expect(sentBefore.count >= 10, "the stream fired before the halt: \(sentBefore.count)")
            #expect(!after.isEmpty, "the stream went on after the halt")
            #expect(
                after.allSatisfy { $0.status == 409 && $0.code == "trading_halted" },
                "after the halt: \(after.filter { $0.code != "trading_halted" })")
            // Every fire sent was sent before the acknowledgement. The EAs read one command per chart tick (the v2.05),
            // so the queued ones still arrive afterwards: exactly those, and nothing else.
            let (_, fires) = try await HTTP.json(system.api + "/fires?limit=1000")
            let records = fires["fires"] as? [[String: Any]] ?? []
            let sent = records.filter { $0["sent_at"] is Double }
            let sentAt = sent.compactMap { $0["sent_at"] as? Double }
            #expect(!sentAt.isEmpty && sentAt.allSatisfy { $0 <= ackAt }, "sent after \(ackAt): \(sentAt.max() ?? 0)")
            let sentIDs = Set(sent.compactMap { $0["fire_id"] as? String })
            #expect(try await eventually { system.fleet.fireReceiveTimes.count >= sentIDs.count })
            try await Task.sleep(for: .milliseconds(600))
            let received = Set(system.fleet.fireReceiveTimes.keys)
            #expect(received == sentIDs, "received but not sent before the halt: \(received.subtracting(sentIDs))")
            // Sent fires finish as before: filled by the EAs.
            #expect(
                try await eventually {
                    let (_, open) = try await HTTP.json(system.api + "/positions")
                    return (open["positions"] as? [Any])?.count == sentIDs.count
                })
        }

        /// When the operator's halt was acknowledged, shared with the callers.
        final class Acknowledged: Sendable {
            let at = Mutex<Double?>(nil)
        }

        /// `bitten halt` is kept in Redis: a server killed with SIGKILL comes back halted, with who and why; `bitten
        /// resume` lifts it.
        @Test func aHaltSurvivesKillAndRestart() async throws {
            let environment = ["BITTEN_FIRE_TIMEOUT": "3", "BITTEN_MARKET_CLOSED_SILENCE": "false"]
            let first = try BittenProcess(environment: environment)
            defer { first.terminateAndWait() }
            try await first.waitUntilHealthy()
            let running = try await startFleet(2, for: first)
            defer { running.stop() }
            let uuid = try #require(running.fleet.uuids.first)
            _ = try await HTTP.sendJSON(
                "POST", first.httpBase + "/users", body: #"{"uuid":"\#(uuid)","tier":"CAPTAIN"}"#)
            let (halted, output) = try cli(["halt", "--reason", "kill test", "--by", "ops-9"], against: first)
            #expect(halted == 0, "\(output)")
            #expect(output.contains("\"halted\"") && output.contains("kill test"), "\(output)")

            kill(first.pid, SIGKILL)
            #expect(try await eventually(.seconds(5)) { !first.isRunning })
            let second = try BittenProcess(environment: environment, dataDir: first.dataDir, ports: first.ports)
            defer { second.terminateAndWait() }
            try await second.waitUntilHealthy()
            let (_, control) = try await HTTP.json(second.httpBase + "/control")
            let state = control["system"] as? [String: Any] ?? [:]
            #expect(state["state"] as? String == "halted" && state["by"] as? String == "ops-9", "\(control)")
            #expect(state["reason"] as? String == "kill test")
            // Fires are refused as soon as the new process takes fires at all.
            #expect(
                try await eventually {
                    let (_, nodes) = try await HTTP.json(second.httpBase + "/nodes?status=online")
                    return nodes["total"] as? Int == 2
                })
            _ = try await HTTP.sendJSON("POST", second.httpBase + "/signals", body: path.signal("KILL_HALT_1"))
            let (status, body) = try await HTTP.sendJSON(
                "POST", second.httpBase + "/fire/KILL_HALT_1", body: #"{"user_uuid":"\#(uuid)"}"#)
            #expect(status == 409 && path.code(body) == "trading_halted", "\(body)")
            #expect(running.fleet.receivedFires().isEmpty)

            let (resumed, resumeOutput) = try cli(["resume", "--reason", "all clear"], against: second)
            #expect(resumed == 0, "\(resumeOutput)")
            let (fired, fireBody) = try await HTTP.sendJSON(
                "POST", second.httpBase + "/fire/KILL_HALT_1", body: #"{"user_uuid":"\#(uuid)"}"#)
            #expect(fired == 201, "\(fireBody)")
        }

        /// Close-only refuses new fires and lets a close-all through (answered once, ticket 0, as the v2.05 does);
        /// a halted user's close-all is refused unless the halt itself closes everything.
        @Test func closeOnlyAllowsACloseAllAndAHaltCanCloseEverything() async throws {
            let system = try await path.start(eas: 3)
            defer { system.stop() }
            let uuids = system.fleet.uuids
            for uuid in uuids { try await path.addUser(system, uuid, tier: "CAPTAIN") }
            for id in ["CO_1", "CO_2", "CO_3"] { try await path.postSignal(system, path.signal(id)) }
            for uuid in uuids {
                for id in ["CO_1", "CO_2"] {
                    let (status, body) = try await path.fire(system, id, uuid)
                    #expect(status == 201, "\(body)")
                }
            }
            #expect(try await eventually { try await openPositions(system) == 6 })

            // The whole system close-only: a new fire is refused, a close-all goes.
            let (status, body) = try await HTTP.sendJSON(
                "POST", system.api + "/control/close-only", body: #"{"reason":"NFP in 5 min"}"#)
            #expect(status == 200, "\(body)")
            let (refused, refusal) = try await path.fire(system, "CO_3", uuids[0])
            #expect(refused == 409 && path.code(refusal) == "close_only", "\(refusal)")
            let (closing, closes) = try await HTTP.sendJSON("POST", system.api + "/users/\(uuids[0])/close-all")
            #expect(closing == 202 && (closes["closes"] as? [Any])?.count == 2, "\(closes)")
            #expect(try await eventually { try await openPositions(system, of: uuids[0]) == 0 })
            _ = try await HTTP.sendJSON("POST", system.api + "/control/resume")

            // One user halted: that user's close-all is refused, the others' fires go.
            let (userHalt, haltBody) = try await HTTP.sendJSON(
                "POST", system.api + "/control/halt", body: #"{"user_uuid":"\#(uuids[1])","reason":"dispute"}"#)
            #expect(userHalt == 200, "\(haltBody)")
            let (blocked, blockedBody) = try await HTTP.sendJSON("POST", system.api + "/users/\(uuids[1])/close-all")
            #expect(blocked == 409 && path.code(blockedBody) == "trading_halted", "\(blockedBody)")
            let (userFire, userFireBody) = try await path.fire(system, "CO_3", uuids[1])
            #expect(userFire == 409 && path.code(userFireBody) == "trading_halted", "\(userFireBody)")
            let (other, otherBody) = try await path.fire(system, "CO_3", uuids[2])
            #expect(other == 201, "\(otherBody)")
            #expect(try await eventually { try await openPositions(system, of: uuids[2]) == 3 })

            // The system halted with close-all: every open position is closed, once, and nothing else is sent.
            let firesBefore = system.fleet.receivedFires().count
            let (all, allBody) = try await HTTP.sendJSON(
                "POST", system.api + "/control/halt", body: #"{"close_all":true,"reason":"end of day"}"#)
            #expect(all == 200, "\(allBody)")
            #expect(try await eventually { try await openPositions(system) == 0 })
            #expect(system.fleet.receivedFires().count == firesBefore)
            let closeAlls = uuids.map { uuid in
                system.fleet.commandsRead(by: uuid).filter { $0.contains("\"close_all\"") }.count
            }
            #expect(closeAlls == [1, 1, 1], "one close_all per user over the test: \(closeAlls)")
        }

        func openPositions(_ system: TradePathTests.System, of uuid: String? = nil) async throws -> Int {
            let (_, open) = try await HTTP.json(system.api + (uuid.map { "/users/\($0)/positions" } ?? "/positions"))
            return (open["positions"] as? [Any])?.count ?? -1
        }

        func cli(_ arguments: [String], against system: BittenProcess) throws -> (Int32, String) {
            var environment = system.ports.mapValues(String.init)
            environment["BITTEN_DATA_DIR"] = system.dataDir.path
            environment["BITTEN_BIND_HOST"] = "127.0.0.1"
            return try runBitten(arguments, environment: environment)
        }
    }
}
