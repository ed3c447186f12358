import BittenTestSupport
import Foundation
import Redis
import Testing
import ZeroMQ

extension EndToEnd {
    /// CITADEL over real sockets: `bitten up` as a child process, a REQ client on 5566, a SUB on 5565,
    /// OHLC bars pushed on 5556 like an EA's.
    @Suite("CITADEL over real sockets", .serialized)
    struct CitadelServiceTests {
        static func ohlc(_ symbol: String, time: Int, _ o: Double, _ h: Double, _ l: Double, _ c: Double) -> String {
            #"{"type":"OHLC","node_id":"NODE_1_1","user_uuid":"user_citadel_1","symbol":"\#(symbol)","timeframe":"M5","time":\#(time),"open":\#(o),"high":\#(h),"low":\#(l),"close":\#(c),"timestamp":"2026.11.25 13:00:00"}"#
        }

        static func request(_ req: Socket, _ text: String) throws -> [String: Any] {
            try req.send(text)
            let reply = try #require(try req.receive(), "no reply within the timeout")
            return try #require(try JSONSerialization.jsonObject(with: Data(reply.frames[0])) as? [String: Any])
        }

        @Test func queriesAlwaysGetOneReplyAndSweepsRaiseAlerts() async throws {
            let bitten = try BittenProcess()
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let context = try Context()
            let req = try Socket(context: context, type: .req)
            try req.setReceiveTimeout(.seconds(5))
            try req.connect("tcp://127.0.0.1:\(bitten.queryPort)")
            defer { req.close() }

            // A valid query in Bitten's form and in the original form.
            let scored = try Self.request(
                req, #"{"type":"protection_query","symbol":"EURUSD","direction":"BUY","entry":1.1,"sl":1.098}"#)
            let score = try #require(scored["protection_score"] as? Double)
            #expect((1...10).contains(score))
            #expect(
                ["FORTRESS", "PROTECTED", "CAUTION", "HIGH_RISK", "DANGER"].contains(
                    scored["risk_level"] as? String ?? ""))
            let factors = try #require(scored["factors"] as? [String: Double])
            #expect(
                Set(factors.keys) == ["zone_proximity", "sweep_protection", "volatility", "time_risk", "confluence"])
            #expect(scored["recommendation"] is String && scored["multiplier"] is Double)
            let original = try Self.request(req, #"{"symbol":"EURUSD","entry_price":1.17450}"#)
            #expect(original["symbol"] as? String == "EURUSD" && original["entry_price"] as? Double == 1.1745)

            // Each malformed request gets the error object, and the socket keeps answering.
            let malformed = [
                "not json at all", "{\"symbol\":", #"{"type":"protection_query","entry":1.1}"#,
                #"{"symbol":"EURUSD","entry":"one"}"#, #"{"symbol":"EURUSD","entry":-1}"#,
                #"{"type":"teleport","symbol":"EURUSD"}"#, #"{"symbol":"EUR USD","entry":1.1}"#,
                #"{"symbol":"EURUSD","entry":1.1,"direction":"UP"}"#,
                #"{"symbol":"EURUSD","direction":"BUY","entry":1.1,"sl":1.2}"#,
                "{\"symbol\":\"EURUSD\",\"pad\":\"" + String(repeating: "x", count: 5000) + "\"}",
            ]
            for text in malformed {
                let reply = try Self.request(req, text)
                #expect(reply["error"] is String, "\(text.prefix(60)) → \(reply)")
                #expect(reply["risk_level"] as? String == "ERROR")
                #expect(reply["protection_score"] as? Double == 1.0)
            }
            let again = try Self.request(
                req, #"{"type":"protection_query","symbol":"GBPUSD","direction":"SELL","entry":1.27,"sl":1.273}"#)
            #expect(again["protection_score"] is Double)

            // A sweep from bars: flat, a peak at 1.1030, then a pierce to 1.1036 closing back below.
            let sub = try Socket(context: context, type: .sub)
            try sub.setReceiveTimeout(.seconds(10))
            try sub.subscribe("CITADEL_ALERT")
            try sub.connect("tcp://127.0.0.1:\(bitten.alertPort)")
            defer { sub.close() }
            try await Task.sleep(for: .milliseconds(300))
            let push = try Socket(context: context, type: .push)
            try push.setLinger(.seconds(5))
            try push.connect("tcp://127.0.0.1:\(bitten.marketPort)")
            defer { push.close() }
            var bars: [(Double, Double, Double, Double)] = (0..<20).map { i in
                let w = Double(i % 3) * 0.00005
                return (1.1 + w, 1.10015 + w, 1.09985 + w, 1.1 + w)
            }
            bars += [
                (1.1000, 1.1008, 1.0998, 1.1006), (1.1006, 1.1016, 1.1004, 1.1014), (1.1014, 1.1030, 1.1012, 1.1020),
                (1.1020, 1.1018, 1.1005, 1.1008), (1.1008, 1.1010, 1.0999, 1.1002), (1.1010, 1.1036, 1.1008, 1.1022),
            ]
            let start = 1_795_611_600
            for (i, b) in bars.enumerated() {
                try push.send(Self.ohlc("EURUSD", time: start + i * 300, b.0, b.1, b.2, b.3))
            }
            // The rise breaks the small swing highs of the flat stretch first (zone_broken), then the sweep.
            var kinds: [String] = []
            var sweepAlert: [String: Any]?
            while sweepAlert == nil, kinds.count < 20, let message = try sub.receive() {
                let frame = String(decoding: message.frames[0], as: UTF8.self)
                #expect(message.frames.count == 1 && frame.hasPrefix("CITADEL_ALERT {"))
                let alert = try #require(
                    try JSONSerialization.jsonObject(with: Data(frame.dropFirst("CITADEL_ALERT ".count).utf8))
                        as? [String: Any])
                kinds.append(alert["kind"] as? String ?? "?")
                if alert["kind"] as? String == "liquidity_sweep" { sweepAlert = alert }
            }
            let alert = try #require(sweepAlert, "alerts seen: \(kinds)")
            #expect(alert["sweep_type"] as? String == "bullish_sweep")
            #expect(alert["symbol"] as? String == "EURUSD")
            #expect(alert["reversal"] as? String == "SELL")
            #expect(kinds.allSatisfy { ["zone_broken", "liquidity_sweep"].contains($0) }, "\(kinds)")

            // Every alert is in Redis too, and the zones query and the HTTP API show the state.
            let redisPort = try #require(bitten.managedRedis).port
            let redis = try RedisConnection(url: RedisURL(host: "127.0.0.1", port: redisPort))
            #expect(
                try await eventually {
                    let stored =
                        try redis.command(["LRANGE", "citadel:alerts", "0", "-1"]).array?.compactMap(\.string) ?? []
                    return stored.count == kinds.count && stored.first?.contains("liquidity_sweep") == true
                })
            let zones = try Self.request(req, #"{"type":"zones","symbol":"EURUSD"}"#)
            #expect(((zones["sweeps"] as? [[String: Any]]) ?? []).count == 1)
            #expect(((zones["zones"] as? [[String: Any]]) ?? []).contains { ($0["kind"] as? String) == "resistance" })
            let (status, state) = try await HTTP.json(bitten.httpBase + "/citadel/EURUSD")
            #expect(status == 200)
            #expect((state["sweeps"] as? [[String: Any]])?.first?["kind"] as? String == "bullish_sweep")
            let (scoreStatus, viaHTTP) = try await HTTP.json(
                bitten.httpBase + "/citadel/score?symbol=EURUSD&direction=SELL&entry=1.1020&sl=1.1045")
            #expect(scoreStatus == 200)
            #expect(
                ((viaHTTP["factors"] as? [String: Double])?["sweep_protection"] ?? 0) > 5,
                "selling with the sweep's reversal")
            let (bad, badBody) = try await HTTP.json(bitten.httpBase + "/citadel/score?symbol=EURUSD&entry=abc")
            #expect(bad == 400 && (badBody["error"] as? [String: Any])?["code"] as? String == "bad_parameter")
            let (unknown, _) = try await HTTP.json(bitten.httpBase + "/citadel/NZDCAD")
            #expect(unknown == 404)
            let (_, metrics) = try await HTTP.get(bitten.httpBase + "/metrics")
            #expect(
                String(decoding: metrics, as: UTF8.self).contains(
                    #"bitten_messages_rejected_total{port="\#(bitten.queryPort)""#))
        }
    }
}
