import BittenCore
import BittenTestSupport
import EASimulator
import Foundation
import Testing
import ZeroMQ

/// Without CURVE the EA channel is open: knowing a UUID must not be enough to take a user's commands
/// or forge their trades. The intruder connects from another source address (127.0.0.2).
extension EndToEnd.TradePathTests {
    /// An intruder's DEALER: the victim's identity frame, another account, from 127.0.0.2.
    struct Intruder {
        let context: Context
        let dealer: Socket
        let confirm: Socket

        init(_ system: System, identity: [UInt8]) throws {
            context = try Context()
            dealer = try Socket(context: context, type: .dealer)
            try dealer.setIdentity(identity)
            try dealer.setReceiveTimeout(.milliseconds(200))
            try dealer.connect("tcp://127.0.0.2:0;127.0.0.1:\(system.bitten.commandPort)")
            confirm = try Socket(context: context, type: .push)
            try confirm.connect("tcp://127.0.0.2:0;127.0.0.1:\(system.bitten.confirmPort)")
        }

        /// Every command that reached the intruder within `seconds`.
        func commands(within seconds: Double) throws -> [String] {
            var received: [String] = []
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let message = try dealer.receive() {
                    received.append(String(decoding: message.payload, as: UTF8.self))
                }
            }
            return received
        }

        func close() {
            dealer.close()
            confirm.close()
        }
    }

    /// The value of one series in a `/metrics` text (0 when absent).
    func metricValue(_ metrics: Data, _ series: String) -> Double {
        let line = String(decoding: metrics, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix(series + " ") }
        return Double(line?.split(separator: " ").last ?? "0") ?? 0
    }

    func fixture(_ name: String, _ replacements: [(String, String)]) throws -> String {
        var text = String(decoding: try Fixtures.data("ea/\(name)"), as: UTF8.self)
        for (from, to) in replacements { text = text.replacingOccurrences(of: from, with: to) }
        return text
    }

    @Test func aUUIDAloneCannotTakeTheCommandsNorForgeTrades() async throws {
        let system = try await start(eas: 1, environment: ["BITTEN_EA_LINK_TIMEOUT": "1.5"])
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        let victim = try #require(system.fleet.ea(uuid))
        try await addUser(system, uuid, tier: "LIEUTENANT")
        var (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
        let pin = try #require(node["pin"] as? [String: Any], "\(node)")
        #expect(pin["account"] as? Int == victim.account && pin["peer"] as? String == "127.0.0.1", "\(pin)")
        try await postSignal(system, signal("SIG_TRUST_1"))
        try await postSignal(system, signal("SIG_TRUST_2"))
        try await postSignal(system, signal("SIG_TRUST_3"))
        let (_, ticket) = try await fireAndFill(system, "SIG_TRUST_1", uuid)

        // The hijack: HELLO and HEARTBEAT with the victim's identity and another account, from another machine.
        let intruder = try Intruder(system, identity: victim.identity)
        defer { intruder.close() }
        let intruderNode = "NODE_66600666_42"
        let hello = try fixture(
            "hello.json",
            [("user_5512093", uuid), ("\"94017233\"", "\"66600666\""), ("NODE_94017233_1873450", intruderNode)])
        let heartbeat = try fixture(
            "heartbeat_dealer.json", [("user_5512093", uuid), ("NODE_94017233_1873450", intruderNode)])
        try intruder.dealer.send(hello)
        try intruder.dealer.send(heartbeat)
        // The victim's connection holds the routing id, so the intruder's gets no route: nothing it sends
        // arrives, and the next fire goes to the victim.
        let (_, second) = try await fireAndFill(system, "SIG_TRUST_2", uuid)
        #expect(second != ticket)
        #expect(system.fleet.receivedFires(for: uuid).count == 2)
        #expect(
            try intruder.commands(within: 1).filter { $0.contains(#""type":"fire""#) }.isEmpty,
            "the intruder got a fire")
        (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
        #expect(node["account"] as? Int == victim.account && node["account_switches"] as? Int == 0, "\(node)")
        #expect(node["pending_switch"] == nil && node["node_id"] as? String == victim.nodeID, "\(node)")
        // Silent past the link timeout, the intruder's connection is dropped (it reconnects, and is refused
        // again): counted, and one alert names its address.
        var duplicates: [[String: Any]] = []
        #expect(
            try await eventually {
                let (_, alerts) = try await HTTP.json(system.api + "/alerts?source=system")
                duplicates = (alerts["alerts"] as? [[String: Any]] ?? []).filter {
                    $0["kind"] as? String == "duplicate_ea"
                }
                return !duplicates.isEmpty
            }, "\(system.bitten.logTail())")
        #expect((duplicates.first?["reason"] as? String ?? "").contains("127.0.0.2"), "\(duplicates)")
        let (_, metricsBefore) = try await HTTP.get(system.api + "/metrics")
        #expect(metricValue(metricsBefore, #"bitten_ea_links_dropped_total{reason="silent"}"#) >= 1)
        try intruder.dealer.send(heartbeat)
        _ = try await fireAndFill(system, "SIG_TRUST_3", uuid)
        #expect(
            try intruder.commands(within: 0.5).filter { $0.contains(#""type":"fire""#) }.isEmpty,
            "the reconnected intruder got a fire")

        // Forged answers from another machine: a close of the victim's position (with every field right)
        // and a fill in another account. Kept in the ledger as untrusted, nothing changes.
        let forgedClose = try fixture(
            "close_confirmation_v205.json",
            [
                ("user_5512093", uuid), ("508812347", String(ticket)), ("NODE_94017233_1873450", victim.nodeID),
                ("\"account\":94017233", "\"account\":\(victim.account)"),
            ])
        try intruder.confirm.send(forgedClose)
        let forgedFill = try fixture(
            "confirmation_success.json",
            [
                ("user_5512093", uuid), ("F-20261124-000042", "F-FORGED-1"), ("508812347", "777000777"),
                ("NODE_94017233_1873450", intruderNode), ("\"account\":94017233", "\"account\":66600666"),
            ])
        try intruder.confirm.send(forgedFill)
        let redis = system.redis
        let keys = TradeKeys.of(uuid)
        #expect(
            try await eventually { try redis.command(["LLEN", keys.list("confirmations:untrusted")]).int == 2 },
            "\(system.bitten.logTail())")
        #expect(try await position(system, ticket)["status"] as? String == "open")
        #expect(try redis.command(["EXISTS", keys.position(777_000_777)]).int == 0)
        let (_, metrics) = try await HTTP.get(system.api + "/metrics")
        #expect(String(decoding: metrics, as: UTF8.self).contains(#"outcome="rejected_untrusted""#))
        #expect(
            try await eventually {
                let (_, alerts) = try await HTTP.json(system.api + "/alerts?source=system")
                return (alerts["alerts"] as? [[String: Any]] ?? []).filter {
                    $0["kind"] as? String == "untrusted_confirmation"
                }.count == 2
            })
    }

    /// The user really moves the EA to another account: the switch waits for the operator, then works.
    /// A restart on the same account is taken at once.
    @Test func aRealAccountSwitchWaitsForApprovalAndARestartIsTakenAtOnce() async throws {
        let system = try await start(eas: 1)
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "CORPORAL")
        try await postSignal(system, signal("SIG_MOVE_1"))
        try await postSignal(system, signal("SIG_MOVE_2"))
        // A restart on the same account and machine: fires reach the new start right away.
        let restartedAt = ContinuousClock.now
        await system.fleet.restart(uuid)
        let newNode = try #require(system.fleet.ea(uuid)).nodeID
        #expect(
            try await eventually {
                let (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
                return node["node_id"] as? String == newNode
            })
        _ = try await fireAndFill(system, "SIG_MOVE_1", uuid)
        print(
            "restart: the restarted EA's first fire was filled \(ContinuousClock.now - restartedAt) after the restart")
        // Another account: pending, no fires, then approved.
        await system.fleet.restart(uuid, account: 81_000_001)
        var node: [String: Any] = [:]
        #expect(
            try await eventually {
                (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
                return (node["pending_switch"] as? [String: Any])?["account"] as? Int == 81_000_001
            }, "\(node)")
        var (status, body) = try await fire(system, "SIG_MOVE_2", uuid)
        #expect(status == 409 && code(body) == "pending_switch", "\(body)")
        let (code, output) = try runBitten(
            ["node", "approve", uuid],
            environment: ["BITTEN_HTTP_PORT": String(system.bitten.ports["BITTEN_HTTP_PORT"] ?? 0)])
        #expect(code == 0, "\(output)")
        (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
        #expect(node["account"] as? Int == 81_000_001 && node["pending_switch"] == nil, "\(node)")
        #expect((node["pin"] as? [String: Any])?["account"] as? Int == 81_000_001)
        try await Task.sleep(for: .milliseconds(1500))  // the EA's next heartbeat on the new account routes it
        (status, body) = try await fire(system, "SIG_MOVE_2", uuid)
        #expect(status == 201, "\(body)")
    }

    /// The EA restarts while its old connection still holds the routing id: the path to the old terminal
    /// went dead without a close (a relay frozen mid-connection, which keeps ACKing). The gateway drops that
    /// link as stale (silent past the timeout while the EA is heard on 5556), the
    /// restarted EA's connection (refused meanwhile, silent) is dropped at once, reconnects by itself and
    /// takes the route; its fires fill.
    @Test func aRestartBehindADeadConnectionGetsTheRouteOnceHeartbeatsCloseIt() async throws {
        var relay: TCPRelay?
        let system = try await start(eas: 1, environment: ["BITTEN_EA_LINK_TIMEOUT": "1.5"]) { config in
            relay = try? TCPRelay(to: config.commandPort)
            config.commandPort = relay?.port ?? config.commandPort
        }
        defer {
            system.stop()
            relay?.stop()
        }
        let path = try #require(relay)
        defer { print("relay test log: \(system.bitten.logFile.path)") }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "CORPORAL")
        try await postSignal(system, signal("SIG_DEAD_1"))
        try await postSignal(system, signal("SIG_DEAD_2"))
        // The EA's HELLO crosses the relay after its telemetry registered it: wait until a fire is taken.
        var first: (status: Int, body: [String: Any]) = (0, [:])
        #expect(
            try await eventually {
                first = try await fire(system, "SIG_DEAD_1", uuid)
                return first.status == 201
            }, "\(first.body)")
        let firstID = try #require(first.body["fire_id"] as? String)
        #expect(
            try await eventually {
                let (_, record) = try await HTTP.json(system.api + "/fires/\(firstID)")
                return record["state"] as? String == "filled"
            }, "\(system.bitten.logTail())")
        // A live EA is never taken for stale: two link timeouts with both channels beating, nothing dropped.
        try await Task.sleep(for: .seconds(3))
        let (_, before) = try await HTTP.get(system.api + "/metrics")
        #expect(metricValue(before, #"bitten_ea_links_dropped_total{reason="stale"}"#) == 0)
        path.freeze()
        let restartedAt = ContinuousClock.now
        await system.fleet.restart(uuid)
        // Until the new start's command connection speaks, no fire goes out (the old route may be the dead
        // connection): refused as offline, never lost.
        var (status, body) = try await fire(system, "SIG_DEAD_2", uuid)
        #expect(status == 409 && code(body) == "ea_offline", "\(body)")
        #expect(
            try await eventually {
                (status, body) = try await fire(system, "SIG_DEAD_2", uuid)
                return status == 201
            }, "\(body) \(system.bitten.logTail())")
        let fireID = try #require(body["fire_id"] as? String)
        #expect(
            try await eventually {
                let (_, record) = try await HTTP.json(system.api + "/fires/\(fireID)")
                return record["state"] as? String == "filled"
            }, "\(system.bitten.logTail())")
        print(
            "restart behind a dead connection (link timeout 1.5 s): first fire filled \(ContinuousClock.now - restartedAt) after the restart"
        )
        let (_, metrics) = try await HTTP.get(system.api + "/metrics")
        #expect(
            metricValue(metrics, #"bitten_ea_links_dropped_total{reason="restart"}"#) >= 1,
            "\(String(decoding: metrics, as: UTF8.self).split(separator: "\n").filter { $0.contains("links_dropped") })"
        )
        #expect(
            metricValue(metrics, #"bitten_ea_links_dropped_total{reason="stale"}"#) >= 1,
            "the frozen link was not dropped as stale")
    }

    /// `BITTEN_EA_NETWORKS`: a source network outside the list cannot connect at all (ZAP refuses it,
    /// CURVE or not); one added to the Redis set is let in without a restart.
    @Test func sourceNetworksOutsideTheAllowListCannotConnect() async throws {
        let system = try await start(eas: 1, environment: ["BITTEN_EA_NETWORKS": "127.0.0.1/32"])
        defer { system.stop() }
        let outsider = try Intruder(system, identity: Array("user_outside_0".utf8))
        defer { outsider.close() }
        let hello = try fixture("hello.json", [("user_5512093", "user_outside_01")])
        try outsider.dealer.send(hello)
        try await Task.sleep(for: .seconds(2))
        var (status, _) = try await HTTP.json(system.api + "/nodes/user_outside_01")
        #expect(status == 404, "a node registered from outside the allowed networks")
        let (_, metrics) = try await HTTP.get(system.api + "/metrics")
        #expect(String(decoding: metrics, as: UTF8.self).contains("bitten_ea_connections_refused_total"))
        // The simulated EA (127.0.0.1) is in.
        (status, _) = try await HTTP.json(system.api + "/nodes/\(system.fleet.uuids[0])")
        #expect(status == 200)
        // Allowed through Redis (re-read every 2 s, no restart): a new connection from there gets in.
        _ = try system.redis.command(["SADD", "ea:allowed_networks", "127.0.0.2/32"])
        try await Task.sleep(for: .seconds(3))
        let admitted = try Intruder(system, identity: Array("user_outside_0".utf8))
        defer { admitted.close() }
        try admitted.dealer.send(hello)
        #expect(
            try await eventually(.seconds(10)) {
                (status, _) = try await HTTP.json(system.api + "/nodes/user_outside_01")
                return status == 200
            }, "\(system.bitten.logTail())")
    }
}
