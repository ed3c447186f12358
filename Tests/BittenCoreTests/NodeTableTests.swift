import BittenTestSupport
import Testing

@testable import BittenCore

@Suite("Node table and alert policy (pure, manual time)")
struct NodeTableTests {
    func hello(_ uuid: String = "user_5512093", account: String = "94017233", node: String = "NODE_1_1") throws -> Hello
    {
        var text = String(decoding: try Fixtures.bytes("ea/hello.json"), as: UTF8.self)
        text = text.replacingOccurrences(of: "user_5512093", with: uuid)
            .replacingOccurrences(of: "\"94017233\"", with: "\"\(account)\"")
            .replacingOccurrences(of: "NODE_94017233_1873450", with: node)
        guard case .hello(let m) = try EAMessage.decode(Array(text.utf8)) else { throw TestSupportError("not a hello") }
        return m
    }

    func heartbeat(_ uuid: String = "user_5512093", node: String = "NODE_1_1") throws -> TelemetryHeartbeat {
        var text = String(decoding: try Fixtures.bytes("ea/heartbeat.json"), as: UTF8.self)
        text = text.replacingOccurrences(of: "user_5512093", with: uuid).replacingOccurrences(
            of: "NODE_94017233_1873450", with: node)
        guard case .telemetryHeartbeat(let m) = try EAMessage.decode(Array(text.utf8)) else {
            throw TestSupportError("not a heartbeat")
        }
        return m
    }

    /// The login read in place agrees with the plain definition (split on "_", empty parts dropped).
    @Test func loginOfNodeIDReadsTheSecondPart() {
        func reference(_ nodeID: String) -> Int? {
            let parts = nodeID.split(separator: "_")
            guard parts.count >= 3, parts[0] == "NODE" else { return nil }
            return Int(parts[1])
        }
        #expect(NodeTable.login(ofNodeID: "NODE_94017233_1873450") == 94_017_233)
        #expect(NodeTable.login(ofNodeID: "NODE_94017233") == nil)
        #expect(NodeTable.login(ofNodeID: "NOD_1_2") == nil)
        #expect(NodeTable.login(ofNodeID: "NODE_x1_2") == nil)
        let alphabet = Array("NODE_0123456789-+x\u{e9}")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...16, using: &generator)
            var text = Bool.random(using: &generator) ? "NODE_" : ""
            for _ in 0..<length { text.append(alphabet.randomElement(using: &generator)!) }
            #expect(NodeTable.login(ofNodeID: text) == reference(text), "\(text)")
        }
    }

    @Test func helloRegistersAndHeartbeatsMeasureTheInterval() throws {
        var table = NodeTable()
        let events = table.apply(try hello(), at: 1000)
        #expect(events.count == 1)
        let node = try #require(table.nodes["user_5512093"])
        #expect(
            node.online && node.broker == "MetaQuotes Ltd." && node.server == "MetaQuotes-Demo"
                && node.account == 94_017_233)
        _ = table.apply(try heartbeat(), at: 1030)
        _ = table.apply(try heartbeat(), at: 1030.2)  // the twin heartbeat on the other channel
        _ = table.apply(try heartbeat(), at: 1062)
        let measured = try #require(table.nodes["user_5512093"])
        #expect(measured.heartbeatInterval.map { abs($0 - 30.4) < 0.01 } == true)  // 0.8 × 30 + 0.2 × 32
        #expect(measured.lastHeartbeat == 1062)
        #expect(measured.uptime(at: 1100) == 100)
    }

    /// The EA reads one command per chart tick: a ping must never queue ahead of a fire.
    @Test func atMostOnePingOutstandingAndNoneWhileACommandWaits() throws {
        var table = NodeTable()
        _ = table.apply(try hello(), at: 1000)
        let uuid = "user_5512093"
        func decide(_ at: Double, _ closed: Bool) -> NodeTable.PingDecision {
            table.pingDecision(uuid, at: at, fireTimeout: 30, marketClosed: closed)
        }
        #expect(decide(1001, false) == .send)
        table.pingSent(uuid: uuid, pingID: "P-1", at: 1001)
        // Unanswered: no second ping, however many rounds pass within the fire timeout.
        for at in stride(from: 1002.0, through: 1031, by: 1) {
            #expect(decide(at, false) == .wait)
        }
        // Past the fire timeout: marked commands_unread once, then still no ping.
        #expect(decide(1032, false) == .unread)
        #expect(table.nodes[uuid]?.commandsUnread == true)
        #expect(decide(1100, false) == .wait)
        // The pong clears it; the next ping may go.
        guard
            case .pong(let pong) = try EAMessage.decode(
                Array(
                    #"{"type":"pong","ping_id":"P-1","node_id":"NODE_1_1","user_uuid":"user_5512093","timestamp":"2026.11.24 14:03:41"}"#
                        .utf8))
        else {
            Issue.record("not a pong")
            return
        }
        table.apply(pong, at: 1101)
        #expect(table.nodes[uuid]?.commandsUnread == false)
        #expect(table.nodes[uuid]?.latencyMs == 100_000)
        // A fire in flight holds pings back until it is answered (or has timed out).
        table.commandSent(uuid: uuid, at: 1102)
        #expect(decide(1103, false) == .wait)
        table.commandAnswered(uuid: uuid)
        #expect(decide(1104, false) == .send)
        table.commandSent(uuid: uuid, at: 1105)
        #expect(decide(1140, false) == .send)
        // None while the market is closed, none to an offline node.
        #expect(decide(1141, true) == .wait)
        _ = table.markOffline(uuid, reason: "timeout", at: 1142)
        #expect(decide(1143, false) == .wait)
    }

    @Test func brokerSymbolsAreLearnedFromTheHandshakeAndTicks() throws {
        var table = NodeTable()
        var text = String(decoding: try Fixtures.bytes("ea/handshake.json"), as: UTF8.self)
        text = text.replacingOccurrences(of: "EURUSD,GBPUSD", with: "EURUSD.r,GBPUSD.r").replacingOccurrences(
            of: "XAUUSD", with: "GOLD")
        guard case .handshake(let handshake) = try EAMessage.decode(Array(text.utf8)) else {
            Issue.record("not a handshake")
            return
        }
        _ = table.apply(handshake, at: 1000)
        let node = try #require(table.nodes["user_5512093"])
        #expect(node.brokerSymbols["EURUSD"] == "EURUSD.r")
        #expect(node.brokerSymbols["GBPUSD"] == "GBPUSD.r")
        #expect(node.brokerSymbols["XAUUSD"] == "GOLD")
        #expect(node.brokerSymbols["USDJPY"] == "USDJPY")
        let first = table.learnSymbol("user_5512093", broker: "[DJI30]", canonical: "US30")
        let again = table.learnSymbol("user_5512093", broker: "[DJI30]", canonical: "US30")
        #expect(first && !again)
        // The map survives the node hash.
        let restored = try #require(
            NodeRecord(redisHash: Dictionary(uniqueKeysWithValues: table.nodes["user_5512093"]!.redisFields)))
        #expect(restored.brokerSymbols["US30"] == "[DJI30]" && restored.brokerSymbols["XAUUSD"] == "GOLD")
    }

    /// The first HELLO pins account, server and machine; what disagrees later is refused or waits.
    @Test func pinsRefuseIntrudersAndHoldAccountSwitches() throws {
        var table = NodeTable()
        let uuid = "user_5512093"
        func admit(_ message: EAMessage, _ peer: String?, _ at: Double) -> (NodeTable.Verdict, [NodeEvent]) {
            table.admit(message, peer: peer, at: at)
        }
        let first = try hello()
        #expect(admit(.hello(first), "10.0.0.5", 1000).0 == .accepted)
        _ = table.apply(first, at: 1000, peer: "10.0.0.5")
        #expect(
            table.nodes[uuid]?.pin
                == NodePin(account: 94_017_233, server: "MetaQuotes-Demo", peer: "10.0.0.5", since: 1000))
        // Another account claims the UUID: refused, pending, one event; the node keeps its account.
        let intruder = try hello(account: "66666666", node: "NODE_66666666_9")
        let (verdict, events) = admit(.hello(intruder), "10.9.9.9", 1010)
        guard case .refused = verdict else {
            Issue.record("an intruder was accepted")
            return
        }
        #expect(events.count == 1)
        #expect(table.nodes[uuid]?.pendingSwitch?.account == 66_666_666)
        #expect(table.nodes[uuid]?.lastRefused?.peer == "10.9.9.9")
        #expect(table.nodes[uuid]?.account == 94_017_233)
        #expect(admit(.hello(intruder), "10.9.9.9", 1011).1.isEmpty, "the same pending switch is raised once")
        // Its heartbeats (the account is in the node id) are refused too; the pinned EA's are taken.
        let dealer = try #require(
            try EAMessage.decode(
                Array(
                    String(decoding: try Fixtures.bytes("ea/heartbeat_dealer.json"), as: UTF8.self)
                        .replacingOccurrences(of: "NODE_94017233_1873450", with: "NODE_66666666_9").utf8)))
        if case .refused = admit(dealer, "10.9.9.9", 1012).0 {
        } else {
            Issue.record("an intruder's heartbeat was taken")
        }
        let own = try EAMessage.decode(try Fixtures.bytes("ea/heartbeat_dealer.json"))
        #expect(admit(own, "10.0.0.5", 1013).0 == .accepted)
        // A DISCONNECT for the UUID from another node id does not take the EA offline.
        let disconnect = try EAMessage.decode(
            Array(
                String(decoding: try Fixtures.bytes("ea/disconnect.json"), as: UTF8.self)
                    .replacingOccurrences(of: "NODE_94017233_1873450", with: "NODE_66666666_9").utf8))
        if case .refused = admit(disconnect, nil, 1014).0 {} else { Issue.record("a foreign DISCONNECT was taken") }
        // The same account from another machine while the pinned EA is alive: a duplicate.
        let twin = try hello(node: "NODE_94017233_2")
        let (twinVerdict, twinEvents) = admit(.hello(twin), "10.7.7.7", 1015)
        if case .refused = twinVerdict {} else { Issue.record("a duplicate was accepted") }
        #expect(twinEvents.contains { if case .duplicateEA = $0 { true } else { false } })
        // The EA's own restart (same account, same machine) is taken at once.
        #expect(admit(.hello(twin), "10.0.0.5", 1016).0 == .accepted)
        // Confirmations must fit the pin.
        _ = table.apply(try hello(node: "NODE_94017233_1873450"), at: 1017, peer: "10.0.0.5")
        #expect(
            table.untrusted(uuid: uuid, account: 94_017_233, nodeID: "NODE_94017233_1873450", peer: "10.0.0.5") == nil)
        #expect(
            table.untrusted(uuid: uuid, account: 66_666_666, nodeID: "NODE_94017233_1873450", peer: "10.0.0.5") != nil)
        #expect(table.untrusted(uuid: uuid, account: 94_017_233, nodeID: "NODE_94017233_9", peer: "10.0.0.5") != nil)
        #expect(
            table.untrusted(uuid: uuid, account: 94_017_233, nodeID: "NODE_94017233_1873450", peer: "10.9.9.9") != nil)
        #expect(
            PeerMatch.subnet24.matches("10.0.0.99", "10.0.0.5") && !PeerMatch.subnet24.matches("10.0.1.5", "10.0.0.5"))
        #expect(PeerMatch.off.matches("1.2.3.4", "10.0.0.5"))
        // The operator approves: the pin moves; an account switch is recorded.
        let approved = table.approveSwitch(uuid, at: 1100)
        #expect(approved == [.accountSwitch(uuid: uuid, oldAccount: 94_017_233, newAccount: 66_666_666, at: 1100)])
        #expect(table.nodes[uuid]?.pin?.account == 66_666_666 && table.nodes[uuid]?.pendingSwitch == nil)
        #expect(admit(.hello(intruder), "10.9.9.9", 1101).0 == .accepted)
        // Dismiss keeps the pin; unpin clears it; the quiet period approves when the old account never came back.
        _ = admit(.hello(first), "10.0.0.5", 1200)
        #expect(table.dismissSwitch(uuid) && table.nodes[uuid]?.pin?.account == 66_666_666)
        _ = admit(.hello(first), "10.0.0.5", 1300)
        #expect(table.approveQuietSwitches(at: 1350, after: 100).isEmpty)
        #expect(table.approveQuietSwitches(at: 1400, after: 100).count == 1)
        #expect(table.nodes[uuid]?.pin?.account == 94_017_233)
        #expect(table.unpin(uuid) && table.nodes[uuid]?.pin == nil)
        // The pin survives the node hash.
        _ = table.apply(first, at: 1500, peer: "10.0.0.5")
        _ = admit(.hello(intruder), "10.9.9.9", 1501)
        let restored = try #require(
            NodeRecord(redisHash: Dictionary(uniqueKeysWithValues: table.nodes[uuid]!.redisFields)))
        #expect(restored.pin == table.nodes[uuid]?.pin && restored.pendingSwitch == table.nodes[uuid]?.pendingSwitch)
        #expect(restored.lastRefused == table.nodes[uuid]?.lastRefused)
    }

    @Test func networkAllowListMatchesCIDRs() {
        let (list, invalid) = NetworkAllowList.parse(
            "10.0.0.0/8, 192.168.1.7 # the office\n2001:db8::/32,::1\n\nnot-a-network,300.1.1.1")
        #expect(invalid == ["not-a-network", "300.1.1.1"])
        #expect(list.networks.count == 4)
        for allowed in ["10.1.2.3", "10.255.255.255", "192.168.1.7", "2001:db8:0:1::5", "::1", "::ffff:10.9.9.9"] {
            #expect(list.allows(allowed), "\(allowed)")
        }
        for refused in ["11.0.0.1", "192.168.1.8", "2001:db9::1", "::2", "", "garbage"] {
            #expect(!list.allows(refused), "\(refused)")
        }
        #expect(NetworkAllowList.parse("0.0.0.0/0").list.allows("203.0.113.5"))
        #expect(NetworkAllowList.Network("10.0.0.0/33") == nil && NetworkAllowList.Network("2001:db8::/20") == nil)
        #expect(NetworkAllowList.Network("172.16.0.0/12")?.contains("172.31.255.1") == true)
        #expect(NetworkAllowList.Network("172.16.0.0/12")?.contains("172.32.0.1") == false)
    }

    @Test func expiryUsesTheServerClockAndReconnectCounts() throws {
        var table = NodeTable()
        _ = table.apply(try hello(), at: 0)
        #expect(table.expire(at: 59, timeout: 60).isEmpty)
        let expired = table.expire(at: 61, timeout: 60)
        #expect(expired == [.offline(uuid: "user_5512093", broker: "MetaQuotes Ltd.", reason: "timeout", at: 61)])
        #expect(table.expire(at: 200, timeout: 60).isEmpty)  // once only
        let back = table.apply(try heartbeat(), at: 300)
        #expect(back.contains { if case .connected(_, _, _, _, _, true) = $0 { true } else { false } })
        #expect(table.nodes["user_5512093"]?.reconnects == 1)
        #expect(table.nodes["user_5512093"]?.online == true)
    }

    @Test func accountSwitchIsRecorded() throws {
        var table = NodeTable()
        _ = table.apply(try hello(), at: 0)
        let events = table.apply(try hello(account: "55555555", node: "NODE_2_2"), at: 10)
        #expect(
            events.contains(
                .accountSwitch(uuid: "user_5512093", oldAccount: 94_017_233, newAccount: 55_555_555, at: 10)))
        #expect(table.nodes["user_5512093"]?.accountSwitches == 1)
        #expect(table.nodes["user_5512093"]?.account == 55_555_555)
    }

    @Test func pongGivesLatencyOnlyForTheOutstandingPing() throws {
        var table = NodeTable()
        _ = table.apply(try hello(), at: 0)
        table.pingSent(uuid: "user_5512093", pingID: "P-7731", at: 100)
        guard case .pong(let pong) = try EAMessage.decode(try Fixtures.bytes("ea/pong.json")) else { return }
        table.apply(pong, at: 100.025)
        #expect(table.nodes["user_5512093"]?.latencyMs.map { abs($0 - 25) < 0.001 } == true)
        table.apply(pong, at: 200)  // a late duplicate changes nothing
        #expect(table.nodes["user_5512093"]?.latencyMs.map { abs($0 - 25) < 0.001 } == true)
    }

    @Test func redisHashRoundTrips() throws {
        var table = NodeTable()
        _ = table.apply(try hello(), at: 1_795_529_160)
        let node = try #require(table.nodes["user_5512093"])
        let hash = Dictionary(uniqueKeysWithValues: node.redisFields)
        #expect(NodeRecord(redisHash: hash) == node)
    }

    @Test func alertPolicyCooldownMarketHoursAndBrokerWideEvents() {
        let tuesday = 1_795_529_160.0  // 2026-11-24 14:06 UTC, a Tuesday
        var policy = AlertPolicy(cooldown: 300)
        let one: [NodeEvent] = [.offline(uuid: "a_1234", broker: "B", reason: "timeout", at: tuesday)]
        #expect(policy.alerts(for: one, onlineBefore: ["B": 100], at: tuesday).map(\.kind) == ["node_timeout"])
        #expect(policy.alerts(for: one, onlineBefore: ["B": 100], at: tuesday + 100).isEmpty)
        #expect(policy.alerts(for: one, onlineBefore: ["B": 100], at: tuesday + 301).count == 1)
        let disconnect: [NodeEvent] = [.offline(uuid: "c_1234", broker: "B", reason: "disconnect", at: tuesday)]
        #expect(policy.alerts(for: disconnect, onlineBefore: [:], at: tuesday).isEmpty)
        let storm: [NodeEvent] = (0..<8).map {
            .offline(uuid: "s_\($0)000", broker: "Q", reason: "timeout", at: tuesday)
        }
        let stormAlerts = policy.alerts(for: storm, onlineBefore: ["Q": 10], at: tuesday)
        #expect(stormAlerts.map(\.kind) == ["broker_silent"])
        #expect(stormAlerts.first?.count == 8)
        let saturday = 1_795_529_160.0 + 4 * 86_400
        #expect(AlertPolicy.marketClosed(at: saturday))
        #expect(AlertPolicy.marketClosed(at: tuesday + 3 * 86_400 + 9 * 3600))  // Friday 23:06
        #expect(!AlertPolicy.marketClosed(at: tuesday + 5 * 86_400 + 9 * 3600))  // Sunday 23:06
        #expect(!AlertPolicy.marketClosed(at: tuesday))
        #expect(
            policy.alerts(
                for: [.offline(uuid: "w_1234", broker: "B", reason: "timeout", at: saturday)],
                onlineBefore: [:], at: saturday
            ).isEmpty)
    }
}

@Suite("Per-EA rate limiter")
struct RateLimiterTests {
    @Test func burstThenRateAndKeysAreIndependent() {
        var limiter = RateLimiter(rate: 10, burst: 20)
        var allowed = 0
        for _ in 0..<100 where limiter.allow("flood", at: 0) { allowed += 1 }
        #expect(allowed == 20)
        let quiet = limiter.allow("quiet", at: 0)
        #expect(quiet, "another EA is not affected")
        // Half a second later: 5 more tokens.
        allowed = 0
        for _ in 0..<100 where limiter.allow("flood", at: 0.5) { allowed += 1 }
        #expect(allowed == 5)
        // Long idle: back to a full burst, never more.
        allowed = 0
        for _ in 0..<100 where limiter.allow("flood", at: 1_000) { allowed += 1 }
        #expect(allowed == 20)
        let refusals = limiter.drainRefusals()
        #expect(refusals["flood"] == 80 + 95 + 80)
        #expect(refusals["quiet"] == nil)
        let again = limiter.drainRefusals()
        #expect(again.isEmpty)
    }

    @Test func theKeyTableStaysBounded() {
        var limiter = RateLimiter(rate: 1, burst: 1, maxKeys: 1000)
        for i in 0..<10_000 { _ = limiter.allow("ea\(i)", at: Double(i)) }
        #expect(limiter.trackedKeys <= 1000)
        let recent = limiter.allow("ea9999", at: 9999.5)
        #expect(recent == false, "recent keys are kept")
    }
}
