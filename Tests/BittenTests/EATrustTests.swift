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
                if let message = try dealer.receive() { received.append(String(decoding: message.payload, as: UTF8.self)) }
            }
            return received
        }

        func close() {
            dealer.close()
            confirm.close()
        }
    }

    func fixture(_ name: String, _ replacements: [(String, String)]) throws -> String {
        var text = String(decoding: try Fixtures.data("ea/\(name)"), as: UTF8.self)
        for (from, to) in replacements { text = text.replacingOccurrences(of: from, with: to) }
        return text
    }

    @Test func aUUIDAloneCannotTakeTheCommandsNorForgeTrades() async throws {
        let system = try await start(eas: 1)
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        let victim = try #require(system.fleet.ea(uuid))
        try await addUser(system, uuid, tier: "CORPORAL")
        var (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
        let pin = try #require(node["pin"] as? [String: Any], "\(node)")
        #expect(pin["account"] as? Int == victim.account && pin["peer"] as? String == "127.0.0.1", "\(pin)")
        try await postSignal(system, signal("SIG_TRUST_1"))
        try await postSignal(system, signal("SIG_TRUST_2"))
        let (_, ticket) = try await fireAndFill(system, "SIG_TRUST_1", uuid)

        // The hijack: HELLO and HEARTBEAT with the victim's identity and another account.
        let intruder = try Intruder(system, identity: victim.identity)
        defer { intruder.close() }
        let intruderNode = "NODE_66600666_42"
        let hello = try fixture("hello.json", [("user_5512093", uuid), ("\"94017233\"", "\"66600666\""), ("NODE_94017233_1873450", intruderNode)])
        let heartbeat = try fixture("heartbeat_dealer.json", [("user_5512093", uuid), ("NODE_94017233_1873450", intruderNode)])
        try intruder.dealer.send(hello)
        try intruder.dealer.send(heartbeat)
        #expect(try await eventually {
            (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
            return node["pending_switch"] != nil
        }, "\(node)")
        #expect(node["account"] as? Int == victim.account, "the node's account did not switch: \(node)")
        #expect(node["account_switches"] as? Int == 0)
        #expect((node["last_refused"] as? [String: Any])?["peer"] as? String == "127.0.0.2", "\(node)")
        #expect(try await eventually {
            let (_, alerts) = try await HTTP.json(system.api + "/alerts?source=system")
            return (alerts["alerts"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "account_switch_pending" }.count == 1
        })
        // No fire while the switch waits: not to the intruder, not anywhere.
        var (status, body) = try await fire(system, "SIG_TRUST_2", uuid)
        #expect(status == 409 && code(body) == "pending_switch", "\(body)")
        // Dismissed, the switch no longer blocks; but ROUTER_HANDOVER gave the identity to the intruder's
        // connection and orphaned the EA's (see DuplicateIdentityTests), and a refused message never
        // sets a route: the fire is refused as offline rather than sent to the intruder.
        (status, body) = try await HTTP.sendJSON("POST", system.api + "/nodes/\(uuid)/dismiss")
        #expect(status == 200, "\(body)")
        (status, body) = try await fire(system, "SIG_TRUST_2", uuid)
        #expect(status == 409 && code(body) == "ea_offline", "\(body)")
        #expect(try intruder.commands(within: 1).filter { $0.contains(#""type":"fire""#) }.isEmpty, "the intruder got a fire")
        #expect(system.fleet.receivedFires(for: uuid).count == 1)

        // Forged answers from another machine: a close of the victim's position (with every field right)
        // and a fill in another account. Kept in the ledger as untrusted, nothing changes.
        let forgedClose = try fixture("close_confirmation_v205.json", [
            ("user_5512093", uuid), ("508812347", String(ticket)), ("NODE_94017233_1873450", victim.nodeID),
            ("\"account\":94017233", "\"account\":\(victim.account)"),
        ])
        try intruder.confirm.send(forgedClose)
        let forgedFill = try fixture("confirmation_success.json", [
            ("user_5512093", uuid), ("F-20261124-000042", "F-FORGED-1"), ("508812347", "777000777"),
            ("NODE_94017233_1873450", intruderNode), ("\"account\":94017233", "\"account\":66600666"),
        ])
        try intruder.confirm.send(forgedFill)
        let redis = system.redis
        #expect(try await eventually { try redis.command(["LLEN", "confirmations:untrusted"]).int == 2 }, "\(system.bitten.logTail())")
        #expect(try await position(system, ticket)["status"] as? String == "open")
        #expect(try redis.command(["EXISTS", "position:777000777"]).int == 0)
        let (_, metrics) = try await HTTP.get(system.api + "/metrics")
        #expect(String(decoding: metrics, as: UTF8.self).contains(#"outcome="rejected_untrusted""#))
        #expect(try await eventually {
            let (_, alerts) = try await HTTP.json(system.api + "/alerts?source=system")
            return (alerts["alerts"] as? [[String: Any]] ?? []).filter { $0["kind"] as? String == "untrusted_confirmation" }.count == 2
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
        system.fleet.restart(uuid)
        let newNode = try #require(system.fleet.ea(uuid)).nodeID
        #expect(try await eventually {
            let (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
            return node["node_id"] as? String == newNode
        })
        _ = try await fireAndFill(system, "SIG_MOVE_1", uuid)
        print("restart: the restarted EA's first fire was filled \(ContinuousClock.now - restartedAt) after the restart")
        // Another account: pending, no fires, then approved.
        system.fleet.restart(uuid, account: 81_000_001)
        var node: [String: Any] = [:]
        #expect(try await eventually {
            (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
            return (node["pending_switch"] as? [String: Any])?["account"] as? Int == 81_000_001
        }, "\(node)")
        var (status, body) = try await fire(system, "SIG_MOVE_2", uuid)
        #expect(status == 409 && code(body) == "pending_switch", "\(body)")
        let (code, output) = try runBitten(["node", "approve", uuid], environment: ["BITTEN_HTTP_PORT": String(system.bitten.ports["BITTEN_HTTP_PORT"] ?? 0)])
        #expect(code == 0, "\(output)")
        (_, node) = try await HTTP.json(system.api + "/nodes/\(uuid)")
        #expect(node["account"] as? Int == 81_000_001 && node["pending_switch"] == nil, "\(node)")
        #expect((node["pin"] as? [String: Any])?["account"] as? Int == 81_000_001)
        try await Task.sleep(for: .milliseconds(1500))  // the EA's next heartbeat on the new account routes it
        (status, body) = try await fire(system, "SIG_MOVE_2", uuid)
        #expect(status == 201, "\(body)")
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
        #expect(try await eventually(.seconds(10)) {
            (status, _) = try await HTTP.json(system.api + "/nodes/user_outside_01")
            return status == 200
        }, "\(system.bitten.logTail())")
    }
}
