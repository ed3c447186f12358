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

extension EndToEnd {
    /// The trade path end to end: `bitten up`, simulated EAs, the HTTP API and the managed Redis.
    @Suite("Trade path end to end: signal, fire, confirmation, close, statistics", .serialized)
    struct TradePathTests {
        /// Where the system keeps its state: its managed redis-server, or a Redis Cluster of three primaries
        /// (each with a replica) started by the test.
        enum Backend: String, CaseIterable, CustomTestStringConvertible {
            case single, cluster
            var testDescription: String { rawValue }
        }

        struct System {
            let bitten: BittenProcess
            let fleet: Fleet
            let running: Task<Void, any Error>
            /// The managed redis-server, one connection (suites that run on one server only use it).
            let redis: RedisConnection
            /// The system's Redis as a client: on a cluster, commands go to their slot's primary.
            let client: RedisClient
            let cluster: TestCluster?
            var api: String { bitten.httpBase }

            /// Stops the EAs and sends SIGTERM (bitten then stops its managed Redis).
            /// (The client first: it must not reconnect to the managed Redis's port once that server is gone.)
            func stop() {
                client.shutdown()
                running.cancel()
                bitten.terminateAndWait()
            }

            /// Confirmations in the user's shard's ledger, each as an entry of its own.
            func ledger(of uuid: String) async throws -> [StreamEntry] {
                StreamEntry.list(try await client.command(["XRANGE", TradeKeys.of(uuid).confirmations, "-", "+"]))
                    .flatMap(LedgerRecord.messages(of:))
            }

            /// Confirmations in every shard's ledger.
            func ledgerLength() async throws -> Int {
                var total = 0
                for keys in TradeKeys.all {
                    total +=
                        StreamEntry.list(try await client.command(["XRANGE", keys.confirmations, "-", "+"]))
                        .flatMap(LedgerRecord.messages(of:)).count
                }
                return total
            }

            /// Fires recorded in every shard.
            func recentFires(_ keys: [ShardKeys] = TradeKeys.all) async throws -> Int {
                var total = 0
                for shard in keys { total += try await client.command(["ZCARD", shard.firesRecent]).int ?? 0 }
                return total
            }
        }

        /// `bitten up` and `eas` simulated EAs, faithful to the EA v2.05 (`configure` changes the fleet).
        func start(
            _ backend: Backend = .single, eas: Int = 3, failureRate: Double = 0, environment: [String: String] = [:],
            configure: (inout FleetConfiguration) -> Void = { _ in }
        ) async throws -> System {
            var environment = environment
            let cluster = backend == .cluster ? try await TestCluster.start() : nil
            if let cluster { environment["BITTEN_REDIS_URL"] = cluster.cluster.urlText }
            let bitten = try BittenProcess(
                environment: ["BITTEN_FIRE_TIMEOUT": "2", "BITTEN_MARKET_CLOSED_SILENCE": "false"]
                    .merging(environment) { _, extra in extra })
            try await bitten.waitUntilHealthy()
            var config = FleetConfiguration(
                count: eas, commandPort: bitten.commandPort, marketPort: bitten.marketPort,
                confirmPort: bitten.confirmPort, heartbeatInterval: .seconds(1),
                tickInterval: .milliseconds(200))
            config.symbols = ["EURUSD", "XAUUSD"]
            config.failureRate = failureRate
            config.sendOHLC = false
            configure(&config)
            let fleet = try Fleet(configuration: config, logger: Logger(label: "bitten.test"))
            let running = Task { try await fleet.run() }
            let client: RedisClient
            let redis: RedisConnection
            if let cluster {
                client = RedisClient(
                    cluster: try RedisClusterURL(parsing: cluster.cluster.urlText), logger: Logger(label: "bitten.test")
                )
                redis = try RedisConnection(url: try #require(cluster.cluster.servers.first).url)
            } else {
                let url = RedisURL(host: "127.0.0.1", port: try #require(bitten.managedRedis).port)
                client = RedisClient(url: url, poolSize: 1, logger: Logger(label: "bitten.test"))
                redis = try RedisConnection(url: url)
            }
            let system = System(
                bitten: bitten, fleet: fleet, running: running, redis: redis, client: client, cluster: cluster)
            let online = try await eventually {
                let (_, nodes) = try await HTTP.json(bitten.httpBase + "/nodes?status=online")
                return nodes["total"] as? Int == eas
            }
            #expect(online, "EAs did not come online:\n\(bitten.logTail())")
            return system
        }

        /// A signal in the engine's short form with a fresh timestamp and a unique id.
        func signal(
            _ id: String, symbol: String = "EURUSD", direction: String = "BUY", entry: Double = 1.08520,
            sl: Double = 1.08320, tp: Double = 1.08920, expiresIn: Double? = nil
        ) -> String {
            let now = Date().timeIntervalSince1970
            var text =
                #"{"signal_id":"\#(id)","symbol":"\#(symbol)","direction":"\#(direction)","entry_price":\#(entry),"sl":\#(sl),"tp":\#(tp),"confidence":78.5,"pattern":"LIQUIDITY_SWEEP_REVERSAL","timeframe":"M5","timestamp":\#(Int(now))"#
            if let expiresIn {
                let t = Date(timeIntervalSince1970: now + expiresIn)
                let f = ISO8601DateFormatter()
                f.formatOptions = [.withInternetDateTime]
                text += #","expires_at":"\#(f.string(from: t))""#
            }
            return text + "}"
        }

        func addUser(_ system: System, _ uuid: String, tier: String) async throws {
            let (status, body) = try await HTTP.sendJSON(
                "POST", system.api + "/users", body: #"{"uuid":"\#(uuid)","tier":"\#(tier)"}"#)
            #expect(status == 201, "\(body)")
        }

        func postSignal(_ system: System, _ text: String) async throws {
            let (status, body) = try await HTTP.sendJSON("POST", system.api + "/signals", body: text)
            #expect(status == 201, "\(body)")
        }

        func fire(_ system: System, _ signalID: String, _ uuid: String) async throws -> (Int, [String: Any]) {
            try await HTTP.sendJSON("POST", system.api + "/fire/\(signalID)", body: #"{"user_uuid":"\#(uuid)"}"#)
        }

        func code(_ body: [String: Any]) -> String? { (body["error"] as? [String: Any])?["code"] as? String }

        @Test(arguments: Backend.allCases)
        func happyPathFromSignalToClosedTradeWithStatistics(_ backend: Backend) async throws {
            let system = try await start(backend)
            defer { system.stop() }
            let uuid = system.fleet.uuids[0]
            try await addUser(system, uuid, tier: "CORPORAL")
            try await postSignal(system, signal("SIG_HAPPY_1"))
            let (status, fired) = try await fire(system, "SIG_HAPPY_1", uuid)
            #expect(status == 201, "\(fired)")
            let fireID = try #require(fired["fire_id"] as? String)
            // CORPORAL: 1 % × 1.1 = 1.1 % × the CITADEL multiplier the signal got, of 10 000 USD, over a
            // 200-tick stop at 1 USD a tick (0.55 lot at multiplier 1).
            let (_, storedSignal) = try await HTTP.json(system.api + "/signals/SIG_HAPPY_1")
            let multiplier = try #require(storedSignal["citadel_multiplier"] as? Double)
            let riskPercent = (1.1 * multiplier * 1000).rounded() / 1000
            let lot = ((10_000 * riskPercent / 100 / 200) / 0.01).rounded(.down) * 0.01
            #expect(abs((fired["risk_percent"] as? Double ?? 0) - riskPercent) < 1e-9)
            #expect(abs((fired["lot"] as? Double ?? 0) - lot) < 1e-9)

            // Exactly one fire, to that EA only, with the sized lot.
            #expect(try await eventually { system.fleet.receivedFires().count >= 1 })
            try await Task.sleep(for: .milliseconds(300))
            let received = system.fleet.receivedFires()
            #expect(received.count == 1)
            #expect(received.first?.targetUUID == uuid)
            #expect(received.first?.fireID == fireID)
            #expect(abs((received.first?.lot ?? 0) - lot) < 1e-9)
            #expect(received.first?.direction == .buy)
            #expect(received.first?.sl == 1.0832)

            // Confirmation → filled → position open.
            var ticket = 0
            #expect(
                try await eventually {
                    let (_, record) = try await HTTP.json(system.api + "/fires/\(fireID)")
                    ticket = record["ticket"] as? Int ?? 0
                    return record["state"] as? String == "filled"
                }, "\(system.bitten.logTail())")
            let (_, open) = try await HTTP.json(system.api + "/positions")
            let positions = try #require(open["positions"] as? [[String: Any]])
            #expect(positions.count == 1)
            let position = try #require(positions.first)
            #expect(position["ticket"] as? Int == ticket)
            #expect(position["user_uuid"] as? String == uuid)
            #expect(position["symbol"] as? String == "EURUSD")
            #expect(position["direction"] as? String == "BUY")
            #expect(abs((position["lot"] as? Double ?? 0) - lot) < 1e-9)
            #expect(position["fire_id"] as? String == fireID)
            #expect(position["signal_id"] as? String == "SIG_HAPPY_1")
            #expect(position["account"] as? Int == 70_000_000)
            #expect(position["unrealized_profit"] != nil)
            let openPrice = try #require(position["open_price"] as? Double)
            let (_, user) = try await HTTP.json(system.api + "/users/\(uuid)")
            #expect(user["slots_used"] as? Int == 1)
            #expect(user["slots"] as? Int == 2)

            // Firing the same signal again gives the same fire, not a second trade.
            let (again, repeated) = try await fire(system, "SIG_HAPPY_1", uuid)
            #expect(again == 200)
            #expect(repeated["fire_id"] as? String == fireID)
            #expect(repeated["duplicate"] as? Bool == true)

            // Close → P&L, statistics, slot released.
            let (closeStatus, closeBody) = try await HTTP.sendJSON("POST", system.api + "/positions/\(ticket)/close")
            #expect(closeStatus == 202, "\(closeBody)")
            var closed: [String: Any] = [:]
            #expect(
                try await eventually {
                    (_, closed) = try await HTTP.json(system.api + "/positions/\(ticket)")
                    return closed["status"] as? String == "closed"
                })
            // The EA v2.05 answers close_ticket with close_price 0: the close is valued at that EA's own quote
            // when the answer came, and the profit is the account's balance difference (one position closed
            // since the fill reported the balance), which is what the broker booked.
            let closePrice = try #require(closed["close_price"] as? Double)
            #expect(closePrice > 1.0 && closePrice < 1.2, "not booked at 0: \(closed)")
            #expect(closed["close_price_source"] as? String == "market", "\(closed)")
            #expect(closed["profit_source"] as? String == "balance", "\(closed)")
            #expect(closed["close_reason"] as? String == "requested", "\(closed)")
            let booked = try #require(system.fleet.ea(uuid)).balance - 10_000
            let expected = (booked * 100).rounded() / 100
            #expect(abs((closed["profit"] as? Double ?? .nan) - expected) < 0.005, "\(closed), broker booked \(booked)")
            // The market valuation agrees with the broker's price to within a few points (the quote the EA
            // closed at may be one tick newer than the one Bitten had).
            let byPrice = ((closePrice - openPrice) / 0.00001 * 1.0 * lot * 100).rounded() / 100
            #expect(abs(byPrice - expected) < lot * 10, "price-based \(byPrice), balance-based \(expected)")
            let (_, stats) = try await HTTP.json(system.api + "/stats")
            #expect(stats["total"] as? Int == 1)
            #expect(
                (stats["wins"] as? Int ?? 0) + (stats["losses"] as? Int ?? 0) + (stats["breakeven"] as? Int ?? 0) == 1)
            #expect(abs((stats["net"] as? Double ?? .nan) - expected) < 0.005)
            let (_, symbolStats) = try await HTTP.json(system.api + "/stats/symbols/EURUSD")
            #expect(symbolStats["total"] as? Int == 1)
            let (_, accountStats) = try await HTTP.json(system.api + "/stats/accounts/70000000")
            #expect(accountStats["total"] as? Int == 1)
            let (_, after) = try await HTTP.json(system.api + "/users/\(uuid)")
            #expect(after["slots_used"] as? Int == 0)
            let (_, trades) = try await HTTP.json(system.api + "/trades?symbol=EURUSD")
            #expect((trades["trades"] as? [[String: Any]])?.count == 1)
            // The confirmations are in the durable ledger, each once.
            #expect(try await system.ledger(of: uuid).count == 2)
            #expect(try await system.ledgerLength() == 2)
            #expect(system.fleet.receivedFires().count == 1)
        }

        @Test(arguments: Backend.allCases)
        func everyRefusalHasItsReason(_ backend: Backend) async throws {
            let system = try await start(backend, eas: 2)
            defer { system.stop() }
            let uuid = system.fleet.uuids[0]
            try await addUser(system, uuid, tier: "RECRUIT")
            try await addUser(system, "user_without_ea", tier: "GENERAL")

            var (status, body) = try await fire(system, "NO_SUCH_SIGNAL", uuid)
            #expect(status == 404 && code(body) == "signal_not_found", "\(body)")
            try await postSignal(system, signal("SIG_REF_1"))
            (status, body) = try await fire(system, "SIG_REF_1", "user_nobody_here")
            #expect(status == 404 && code(body) == "user_not_found", "\(body)")
            (status, body) = try await fire(system, "SIG_REF_1", "user_without_ea")
            #expect(status == 409 && code(body) == "ea_offline", "\(body)")
            #expect(try await system.recentFires() == 0, "nothing stored for an offline EA")

            try await postSignal(
                system, signal("SIG_WRONG_SL", direction: "SELL", entry: 1.08520, sl: 1.08320, tp: 1.08000))
            (status, body) = try await fire(system, "SIG_WRONG_SL", uuid)
            #expect(status == 422 && code(body) == "stop_loss_wrong_side", "\(body)")

            // `expires_at` is written to the whole second (truncated): 2 s ahead is at least 1 s of life when
            // posted, and surely over 2.5 s later.
            try await postSignal(system, signal("SIG_SHORT_LIVED", expiresIn: 2))
            try await Task.sleep(for: .milliseconds(2500))
            (status, body) = try await fire(system, "SIG_SHORT_LIVED", uuid)
            #expect(status == 410 && code(body) == "signal_expired", "\(body)")

            // RECRUIT has one slot: a second signal is refused while the first trade is open.
            (status, body) = try await fire(system, "SIG_REF_1", uuid)
            #expect(status == 201, "\(body)")
            try await postSignal(system, signal("SIG_REF_2", symbol: "XAUUSD", entry: 2641.5, sl: 2631.5, tp: 2661.5))
            (status, body) = try await fire(system, "SIG_REF_2", uuid)
            #expect(status == 409 && code(body) == "no_free_slot", "\(body)")

            // A signal id is taken once.
            (status, body) = try await HTTP.sendJSON("POST", system.api + "/signals", body: signal("SIG_REF_1"))
            #expect(status == 409 && code(body) == "duplicate", "\(body)")

            // Bad input: 4xx with a JSON reason.
            (status, body) = try await HTTP.sendJSON(
                "POST", system.api + "/signals", body: #"{"signal_id":"X_1","symbol":"EURUSD"}"#)
            // JSON of the document's shape, but not a signal (no direction, no prices): refused on its meaning.
            #expect(status == 422 && code(body) == "invalid", "\(body)")
            #expect((body["error"] as? [String: Any])?["message"] as? String ?? "" != "")
            (status, body) = try await HTTP.sendJSON("POST", system.api + "/fire/SIG_REF_1", body: "{not json")
            #expect(status == 400 && code(body) == "bad_json", "\(body)")
            (status, body) = try await HTTP.sendJSON(
                "POST", system.api + "/users", body: #"{"uuid":"user_x_1","tier":"EMPEROR"}"#)
            #expect(status == 400 && code(body) == "bad_field", "\(body)")
            (status, body) = try await HTTP.sendJSON(
                "POST", system.api + "/users", body: "uuid=x", headers: ["Content-Type": "text/plain"])
            #expect(status == 415, "\(body)")
            (status, body) = try await HTTP.sendJSON(
                "POST", system.api + "/signals", body: String(repeating: " ", count: 70_000) + "{}")
            #expect(status == 413, "\(body)")
            #expect(system.bitten.isRunning)
        }

        /// The fire desk keeps signals it has read and sizes every tier before the reservation; the
        /// reservation script reads the user as stored at that moment. So a tier or risk override
        /// changed between fires applies to the next fire, and a signal removed from Redis is not fired.
        @Test(arguments: Backend.allCases)
        func sizeFollowsTheStoredTierAndOverrideAndARemovedSignalIsNotFired(_ backend: Backend) async throws {
            let system = try await start(backend, eas: 2)
            defer { system.stop() }
            let (first, second) = (system.fleet.uuids[0], system.fleet.uuids[1])
            try await addUser(system, first, tier: "RECRUIT")
            var (status, body) = try await HTTP.sendJSON(
                "POST", system.api + "/users",
                body: #"{"uuid":"\#(second)","tier":"commander","risk_override":2}"#)
            #expect(status == 201, "\(body)")
            try await postSignal(system, signal("SIG_TIER_1"))
            let (_, stored) = try await HTTP.json(system.api + "/signals/SIG_TIER_1")
            let multiplier = try #require(stored["citadel_multiplier"] as? Double)
            let sizer = PositionSizer(baseRiskPercent: 1)
            func expectSized(_ body: [String: Any], _ tier: Tier, override: Double?) {
                let risk = sizer.riskPercent(
                    rule: TierTable.standard.rule(tier), userOverride: override, citadelMultiplier: multiplier)
                let lot = ((10_000 * risk / 100 / 200) / 0.01 + 1e-9).rounded(.down) * 0.01
                #expect(body["tier"] as? String == tier.rawValue, "\(body)")
                #expect(abs((body["risk_percent"] as? Double ?? 0) - risk) < 1e-6, "\(body)")
                #expect(abs((body["lot"] as? Double ?? 0) - lot) < 1e-9, "\(body)")
            }

            (status, body) = try await fire(system, "SIG_TIER_1", first)
            #expect(status == 201, "\(body)")
            expectSized(body, .recruit, override: nil)
            let firstFire = body["fire_id"] as? String
            // A user with a risk override is sized for it (the script asks for that size).
            (status, body) = try await fire(system, "SIG_TIER_1", second)
            #expect(status == 201, "\(body)")
            expectSized(body, .commander, override: 2)
            // The repeat is the first fire (the signal now comes from memory).
            (status, body) = try await fire(system, "SIG_TIER_1", first)
            #expect(body["fire_id"] as? String == firstFire && body["duplicate"] as? Bool == true, "\(body)")

            // RECRUIT's one slot is taken; promoted to CORPORAL (two slots), the next fire goes out at
            // CORPORAL's size.
            try await postSignal(system, signal("SIG_TIER_2"))
            (status, body) = try await fire(system, "SIG_TIER_2", first)
            #expect(status == 409 && code(body) == "no_free_slot", "\(body)")
            #expect(
                (body["error"] as? [String: Any])?["message"] as? String ?? "" == "RECRUIT has 1 slot(s) and 1 in use",
                "\(body)")
            (status, body) = try await HTTP.sendJSON(
                "PUT", system.api + "/users/\(first)", body: #"{"tier":"CORPORAL"}"#)
            #expect(status == 200, "\(body)")
            (status, body) = try await fire(system, "SIG_TIER_2", first)
            #expect(status == 201, "\(body)")
            expectSized(body, .corporal, override: nil)

            // A signal removed from Redis after it was read is not fired, and nothing is reserved.
            _ = try await system.client.command(["DEL", "signal:SIG_TIER_2"])
            let fires = try await system.recentFires([TradeKeys.of(second)])
            (status, body) = try await fire(system, "SIG_TIER_2", second)
            #expect(status == 404 && code(body) == "signal_not_found", "\(body)")
            #expect(try await system.recentFires([TradeKeys.of(second)]) == fires)
            #expect(system.fleet.receivedFires().count == 3)
        }

    }
}
