import BittenTestSupport
import EASimulator
import Foundation
import Testing

extension EndToEnd {
    /// The flight recorder end to end: `bitten up`, an EA faithful to the v2.05, real Redis, the API and the CLI.
    @Suite("Flight recorder end to end", .serialized)
    struct TraceEndToEndTests {
        let path = TradePathTests()

        @Test func aTraceHoldsEveryStepOfAFiredAndClosedTrade() async throws {
            let system = try await path.start(eas: 1)
            defer { system.stop() }
            let uuid = try #require(system.fleet.uuids.first)
            try await path.addUser(system, uuid, tier: "CAPTAIN")
            try await path.postSignal(system, path.signal("TRACE_1"))
            let (unknown, _) = try await path.fire(system, "TRACE_1", "nobody_here")
            #expect(unknown == 404)
            let (status, fire) = try await path.fire(system, "TRACE_1", uuid)
            #expect(status == 201, "\(fire)")
            let fireID = try #require(fire["fire_id"] as? String)
            var ticket = 0
            #expect(
                try await eventually {
                    let (_, record) = try await HTTP.json(system.api + "/fires/\(fireID)")
                    ticket = record["ticket"] as? Int ?? 0
                    return ticket > 0
                })
            let (closing, closeBody) = try await HTTP.sendJSON("POST", system.api + "/positions/\(ticket)/close")
            #expect(closing == 202, "\(closeBody)")
            var steps: [[String: Any]] = []
            #expect(
                try await eventually {
                    let (_, trace) = try await HTTP.json(system.api + "/fires/\(fireID)/trace")
                    steps = trace["steps"] as? [[String: Any]] ?? []
                    return steps.contains { $0["step"] as? String == "closed" }
                }, "\(steps)")
            let names = steps.compactMap { $0["step"] as? String }
            #expect(
                names == ["checks", "sent", "filled", "position_opened", "close_pending", "close_sent", "closed"],
                "\(names)")
            func data(_ step: String) -> [String: String] {
                steps.first { $0["step"] as? String == step }?["data"] as? [String: String] ?? [:]
            }
            let checks = data("checks")
            for key in [
                "balance", "lot", "risk_percent", "risk_amount", "tier", "tier_risk_multiplier", "citadel_multiplier",
                "stop_distance", "tick_size", "tick_value", "conversion", "broker_symbol", "base_risk_percent",
            ] {
                #expect(checks[key] != nil, "checks lacks \(key): \(checks)")
            }
            #expect(data("sent")["command"]?.contains(fireID) == true, "the command as sent: \(data("sent"))")
            #expect(data("filled")["ticket"] == String(ticket) && data("filled")["ea_message"] != nil)
            #expect(data("close_sent")["command"]?.contains("close") == true)
            let closed = data("closed")
            #expect(closed["close_price_source"] != nil && closed["profit"] != nil, "\(closed)")
            #expect(closed["close_price"] != "0", "the v2.05 reports close price 0; the trace has the valued one")

            let (_, signal) = try await HTTP.json(system.api + "/signals/TRACE_1/trace")
            let signalSteps = signal["steps"] as? [[String: Any]] ?? []
            let intake = signalSteps.first?["data"] as? [String: String] ?? [:]
            #expect(signalSteps.first?["step"] as? String == "intake")
            #expect(intake["raw"]?.contains("TRACE_1") == true && intake["citadel_score"] != nil, "\(intake)")
            let refused = signalSteps.first { $0["step"] as? String == "refused" }?["data"] as? [String: String]
            #expect(refused?["user_uuid"] == "nobody_here" && refused?["code"] == "user_not_found")
            let fires = signal["fires"] as? [[String: Any]] ?? []
            #expect(fires.map { $0["fire_id"] as? String } == [fireID] && signal["total_fires"] as? Int == 1)
            let (missing, _) = try await HTTP.json(system.api + "/fires/F-20990101-00-000001/trace")
            #expect(missing == 404)

            var environment = system.bitten.ports.mapValues(String.init)
            environment["BITTEN_DATA_DIR"] = system.bitten.dataDir.path
            environment["BITTEN_BIND_HOST"] = "127.0.0.1"
            let (code, output) = try runBitten(["trace", "TRACE_1"], environment: environment)
            #expect(code == 0, "\(output)")
            for line in ["signal TRACE_1", "intake", "refused", "fire \(fireID)", "checks", "closed", "command:"] {
                #expect(output.contains(line), "`bitten trace` lacks \(line):\n\(output)")
            }
        }

        /// A recorded day replayed with a tighter limit: the trades past it are refused, the rest unchanged.
        @Test func aRecordedDayReplayedWithATighterLimitRefusesWhatItShould() async throws {
            let system = try await path.start(eas: 1)
            defer { system.stop() }
            let uuid = try #require(system.fleet.uuids.first)
            try await path.addUser(system, uuid, tier: "CAPTAIN")
            var fireIDs: [String] = []
            for id in ["REPLAY_1", "REPLAY_2", "REPLAY_3"] {
                try await path.postSignal(system, path.signal(id))
                let (status, fire) = try await path.fire(system, id, uuid)
                #expect(status == 201, "\(fire)")
                fireIDs.append(fire["fire_id"] as? String ?? "")
            }
            #expect(
                try await eventually {
                    let (_, open) = try await HTTP.json(system.api + "/users/\(uuid)/positions")
                    return (open["positions"] as? [Any])?.count == 3
                })
            let (closing, _) = try await HTTP.sendJSON("POST", system.api + "/users/\(uuid)/close-all")
            #expect(closing == 202)
            #expect(
                try await eventually {
                    var closed = 0
                    for id in fireIDs {
                        let (_, trace) = try await HTTP.json(system.api + "/fires/\(id)/trace")
                        let steps = trace["steps"] as? [[String: Any]] ?? []
                        if steps.contains(where: { $0["step"] as? String == "closed" }) { closed += 1 }
                    }
                    return closed == 3
                })
            var environment = system.bitten.ports.mapValues(String.init)
            environment["BITTEN_DATA_DIR"] = system.bitten.dataDir.path
            environment["BITTEN_BIND_HOST"] = "127.0.0.1"
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyy-MM-dd"
            formatter.timeZone = TimeZone(identifier: "UTC")
            let today = formatter.string(from: Date())
            // The configuration in force: nothing differs.
            let (same, sameOutput) = try runBitten(["replay", "--from", today], environment: environment)
            #expect(same == 0 && sameOutput.contains("refused: 0; resized: 0; unchanged: 3"), "\(sameOutput)")
            // Two trades a day for CAPTAIN: the third is refused, and its P&L is gone from the replayed total.
            let path = NSTemporaryDirectory() + "bitten-replay-\(getpid()).yaml"
            try "tiers:\n  CAPTAIN: {trades_per_day: 2}\n".write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (code, output) = try runBitten(["replay", "--from", today, "--config", path], environment: environment)
            #expect(code == 0, "\(output)")
            #expect(output.contains("refused: 1 (trades_per_day_limit 1); resized: 0; unchanged: 2"), "\(output)")
            let refusedLine = output.split(separator: "\n").first { $0.hasPrefix(fireIDs[2]) } ?? ""
            #expect(refusedLine.contains("refused trades_per_day_limit"), "\(output)")
            // One fire alone, and a signal.
            let (one, oneOutput) = try runBitten(["replay", "--from", fireIDs[0], "--all"], environment: environment)
            #expect(one == 0 && oneOutput.contains("1 recorded fire(s) of 1 signal(s)"), "\(oneOutput)")
        }
    }
}
