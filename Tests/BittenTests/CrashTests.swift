import BittenTestSupport
import EASimulator
import Foundation
import Logging
import Redis
import Testing
import ZeroMQ

extension EndToEnd {
    @Suite("Faults: bitten killed with SIGKILL", .serialized)
    struct CrashTests {
        @Test func aKilledServerRestartsWithItsStateAndNeverResends() async throws {
            let environment = ["BITTEN_FIRE_TIMEOUT": "3", "BITTEN_MARKET_CLOSED_SILENCE": "false"]
            let first = try BittenProcess(environment: environment)
            defer { first.terminateAndWait() }
            try await first.waitUntilHealthy()
            let api = first.httpBase
            let running = try await startFleet(5, for: first)
            let fleet = running.fleet
            defer { running.stop() }
            let uuids = fleet.uuids
            let now = Int(Date().timeIntervalSince1970)
            _ = try await HTTP.sendJSON(
                "POST", api + "/signals",
                body:
                    #"{"signal_id":"CRASH_1","symbol":"EURUSD","direction":"BUY","entry_price":1.0852,"sl":1.0832,"tp":1.0892,"timestamp":\#(now)}"#
            )
            for uuid in uuids {
                _ = try await HTTP.sendJSON("POST", api + "/users", body: #"{"uuid":"\#(uuid)","tier":"CORPORAL"}"#)
            }
            // Three fills; two EAs take the command but never answer (fires stay `sent`).
            let stuck = Array(uuids.suffix(2))
            fleet.mute(stuck)
            var stuckFires: [String] = []
            for uuid in uuids {
                let (status, body) = try await HTTP.sendJSON(
                    "POST", api + "/fire/CRASH_1", body: #"{"user_uuid":"\#(uuid)"}"#)
                #expect(status == 201, "\(body)")
                if stuck.contains(uuid), let id = body["fire_id"] as? String { stuckFires.append(id) }
            }
            #expect(
                try await eventually {
                    let (_, open) = try await HTTP.json(api + "/positions")
                    return (open["positions"] as? [Any])?.count == 3
                })
            let redisBefore = try #require(first.managedRedis)

            // SIGKILL: no graceful anything. The managed redis-server keeps running.
            kill(first.pid, SIGKILL)
            #expect(try await eventually(.seconds(5)) { !first.isRunning })
            #expect(kill(redisBefore.pid, 0) == 0, "the managed redis-server died with bitten")

            // Same data directory and ports: the managed Redis is found and reused, not duplicated.
            let second = try BittenProcess(environment: environment, dataDir: first.dataDir, ports: first.ports)
            defer { second.terminateAndWait() }
            try await second.waitUntilHealthy()
            #expect(second.managedRedis?.pid == redisBefore.pid && second.managedRedis?.port == redisBefore.port)
            #expect(second.logTail(200).contains("reusing managed redis-server"))
            let servers = try String(contentsOfFile: "/proc/\(redisBefore.pid)/cmdline", encoding: .utf8)
            #expect(servers.contains("redis-server"))

            // Nodes and open positions are intact.
            // (The registry reloads its nodes from Redis as it starts, within moments of the first request.)
            #expect(
                try await eventually(.seconds(5)) {
                    let (_, nodes) = try await HTTP.json(api + "/nodes")
                    return nodes["total"] as? Int == 5
                })
            let (_, open) = try await HTTP.json(api + "/positions")
            #expect((open["positions"] as? [Any])?.count == 3)
            // The pins survived the restart.
            let (_, pinned) = try await HTTP.json(api + "/nodes/\(uuids[0])")
            #expect((pinned["pin"] as? [String: Any])?["account"] as? Int == fleet.ea(uuids[0])?.account, "\(pinned)")

            // The unanswered fires time out on the new process and are never sent again.
            for fireID in stuckFires {
                #expect(
                    try await eventually(.seconds(15)) {
                        let (_, fire) = try await HTTP.json(api + "/fires/\(fireID)")
                        return fire["state"] as? String == "timed_out"
                    }, "\(fireID) did not time out:\n\(second.logTail())")
            }
            try await Task.sleep(for: .seconds(1))
            for uuid in stuck {
                #expect(
                    fleet.receivedFires(for: uuid).count == 1,
                    "\(uuid) got \(fleet.receivedFires(for: uuid).count) fire commands")
            }

            // A confirmation that arrives late is reconciled (filled, marked late), not lost, and the
            // position takes the slot the timeout gave back.
            let lateFire = stuckFires[0]
            let (_, beforeLate) = try await HTTP.json(api + "/users/\(stuck[0])")
            #expect(beforeLate["slots_used"] as? Int == 0, "\(beforeLate)")
            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setLinger(.seconds(5))
            try push.connect("tcp://127.0.0.1:\(first.confirmPort)")
            defer { push.close() }
            // From that EA: its account and node id (the pins survived the restart).
            let lateNode = fleet.ea(stuck[0])?.nodeID ?? ""
            let lateAccount = fleet.ea(stuck[0])?.account ?? 0
            try push.send(
                #"{"type":"confirmation","command_type":"fire","fire_id":"\#(lateFire)","node_id":"\#(lateNode)","user_uuid":"\#(stuck[0])","status":"success","ticket":777000111,"price":1.0853,"lot":0.41,"message":"late fill","account":\#(lateAccount),"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.25 14:00:00"}"#
            )
            #expect(
                try await eventually(.seconds(10)) {
                    let (_, fire) = try await HTTP.json(api + "/fires/\(lateFire)")
                    return fire["state"] as? String == "filled" && fire["late"] as? Bool == true
                })
            let (_, afterLate) = try await HTTP.json(api + "/positions")
            #expect((afterLate["positions"] as? [Any])?.count == 4)
            let (_, lateUser) = try await HTTP.json(api + "/users/\(stuck[0])")
            #expect(lateUser["slots_used"] as? Int == 1, "\(lateUser)")
        }
    }

    /// The trade engine's owner dying around a fire's group commit (`BITTEN_FAULT_INJECT`, `_exit` with no
    /// clean-up): the fire's command goes to the EA only after its reservation is stored, so in neither case
    /// has the EA received anything, and a restart leaves no trace counted twice.
    @Suite("Faults: the owner dies around a fire's commit", .serialized)
    struct CommitCrashTests {
        let environment = ["BITTEN_FIRE_TIMEOUT": "3", "BITTEN_MARKET_CLOSED_SILENCE": "false"]

        func prepare(_ bitten: BittenProcess, _ uuid: String, signal: String) async throws {
            let now = Int(Date().timeIntervalSince1970)
            let (signalStatus, _) = try await HTTP.sendJSON(
                "POST", bitten.httpBase + "/signals",
                body:
                    #"{"signal_id":"\#(signal)","symbol":"EURUSD","direction":"BUY","entry_price":1.0852,"sl":1.0832,"tp":1.0892,"timestamp":\#(now)}"#
            )
            #expect(signalStatus == 201)
            let (userStatus, _) = try await HTTP.sendJSON(
                "POST", bitten.httpBase + "/users", body: #"{"uuid":"\#(uuid)","tier":"CORPORAL"}"#)
            #expect(userStatus == 201)
        }

        /// Fires and expects the process to die instead of answering.
        func fireIntoTheCrash(_ bitten: BittenProcess, _ uuid: String, signal: String) async throws {
            let answer = try? await HTTP.sendJSON(
                "POST", bitten.httpBase + "/fire/\(signal)", body: #"{"user_uuid":"\#(uuid)"}"#)
            #expect(answer == nil || (answer?.0 ?? 0) >= 500, "the fire was answered: \(String(describing: answer))")
            #expect(try await eventually(.seconds(10)) { !bitten.isRunning }, "\(bitten.logTail())")
            #expect(bitten.logTail(400).contains("fault injection"))
        }

        /// The dead first run, the second on its data and ports, and the EA.
        struct Restarted {
            let first: BittenProcess
            let second: BittenProcess
            let running: RunningFleet
            var fleet: Fleet { running.fleet }
            var uuid: String { running.uuids[0] }

            func stop() {
                running.stop()
                second.terminateAndWait()
                first.terminateAndWait()
            }
        }

        /// One EA, a user and `signal`; the owner dies (`fault`) firing it, and the same instance is started
        /// again on its data directory and ports. The caller stops it all (`Restarted.stop`).
        func crashAndRestart(_ fault: String, signal: String) async throws -> Restarted {
            let first = try BittenProcess(environment: environment.merging(["BITTEN_FAULT_INJECT": fault]) { $1 })
            do {
                try await first.waitUntilHealthy()
                let running = try await startFleet(1, for: first)
                try await prepare(first, running.uuids[0], signal: signal)
                try await fireIntoTheCrash(first, running.uuids[0], signal: signal)
                let second = try BittenProcess(environment: environment, dataDir: first.dataDir, ports: first.ports)
                try await second.waitUntilHealthy()
                return Restarted(first: first, second: second, running: running)
            } catch {
                first.terminateAndWait()
                throw error
            }
        }

        @Test func diedAfterTheReservationWasStoredTheFireTimesOutUnsent() async throws {
            let system = try await crashAndRestart("exit_after_commit", signal: "FAULT_AFTER_1")
            defer { system.stop() }
            let (second, fleet, uuid) = (system.second, system.fleet, system.uuid)
            // The reservation was stored: the same fire comes back for a repeat (idempotent), and it is not sent.
            let (status, repeated) = try await HTTP.sendJSON(
                "POST", second.httpBase + "/fire/FAULT_AFTER_1", body: #"{"user_uuid":"\#(uuid)"}"#)
            #expect(status == 200, "\(repeated)")
            let fireID = try #require(repeated["fire_id"] as? String, "\(repeated)")
            #expect(
                try await eventually(.seconds(15)) {
                    let (_, fire) = try await HTTP.json(second.httpBase + "/fires/\(fireID)")
                    return fire["state"] as? String == "timed_out"
                }, "\(second.logTail())")
            let (_, user) = try await HTTP.json(second.httpBase + "/users/\(uuid)")
            #expect(user["slots_used"] as? Int == 0, "\(user)")
            try await Task.sleep(for: .seconds(1))
            #expect(
                fleet.receivedFires(for: uuid).isEmpty,
                "the EA got \(fleet.receivedFires(for: uuid).count) fire commands")
        }

        @Test func diedBeforeTheReservationWasStoredNothingIsLeftAndTheNextFireWorks() async throws {
            let system = try await crashAndRestart("exit_before_commit", signal: "FAULT_BEFORE_1")
            defer { system.stop() }
            let (second, fleet, uuid) = (system.second, system.fleet, system.uuid)
            // Online as reloaded from Redis is not enough: the EA's command link must have reached the new process
            // (its next heartbeat), or the send fails ea_offline.
            let restarted = Date().timeIntervalSince1970
            #expect(
                try await eventually(.seconds(10)) {
                    let (_, node) = try await HTTP.json(second.httpBase + "/nodes/\(uuid)")
                    return node["status"] as? String == "online" && (node["last_heartbeat"] as? Double ?? 0) > restarted
                })
            let (_, before) = try await HTTP.json(second.httpBase + "/users/\(uuid)")
            #expect(before["slots_used"] as? Int == 0, "\(before)")
            // Nothing was stored: the fire is new, sent once, and filled.
            let (status, body) = try await HTTP.sendJSON(
                "POST", second.httpBase + "/fire/FAULT_BEFORE_1", body: #"{"user_uuid":"\#(uuid)"}"#)
            #expect(status == 201, "\(body)")
            let fireID = try #require(body["fire_id"] as? String)
            #expect(
                try await eventually(.seconds(10)) {
                    let (_, fire) = try await HTTP.json(second.httpBase + "/fires/\(fireID)")
                    return fire["state"] as? String == "filled"
                }, "\(second.logTail())")
            #expect(fleet.receivedFires(for: uuid).count == 1)
        }
    }
}
