import ArgumentParser
import BittenCore
import Foundation
import ZeroMQ

extension Bench {
    /// `bitten-bench citadel`: protection-query round trips against a real `bitten up`, and the
    /// market-state update cost per tick.
    struct Citadel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "CITADEL: REQ/REP protection-query latency with N symbols tracked, and ticks/s the analysis absorbs per core."
        )

        @Option(help: "Symbols given market data before the queries.") var symbols = 50
        @Option(help: "Protection queries sent (one at a time, REQ/REP).") var queries = 20_000
        @Option(help: "Ticks fed to the in-process engine for the update-cost figure.") var ticks = 2_000_000

        func run() async throws {
            try updateCost()
            let server = try ServerUnderTest.start()
            defer { server.stop() }
            print("server: pid \(server.pid), data \(server.dataDir)")
            try queryLatency(server)
        }

        static func names(_ count: Int) -> [String] {
            let base = [
                "EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "AUDUSD", "USDCAD", "NZDUSD", "EURJPY", "GBPJPY", "USDCHF",
            ]
            return (0..<count).map { i in i < base.count ? base[i] : "SYM\(i)X" }
        }

        /// Ticks through the engine in this process: the cost the telemetry thread pays per tick.
        func updateCost() throws {
            var engine = CitadelEngine()
            let names = Self.names(symbols)
            var prices = names.map { $0.hasSuffix("JPY") ? 150.0 : ($0 == "XAUUSD" ? 2000.0 : 1.1) }
            var seed: UInt64 = 7
            func unit() -> Double {
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Double(seed >> 11) / Double(1 << 53)
            }
            var time = 1_795_611_600.0
            var alerts = 0
            let start = ContinuousClock.now
            for i in 0..<ticks {
                let s = i % names.count
                prices[s] *= 1 + (unit() - 0.5) * 0.0004
                let spread = prices[s] * 0.00002
                alerts +=
                    engine.addTick(symbol: names[s], bid: prices[s], ask: prices[s] + spread, volume: 1, at: time).count
                time += 0.002  // 500 ticks/s of market time: bars complete and zones form along the way
            }
            let elapsed = (ContinuousClock.now - start) / .seconds(1)
            let zones = engine.maps.values.reduce(0) { $0 + $1.zones.count }
            print(
                String(
                    format:
                        "update: %d ticks over %d symbols in %.2f s = %.2f µs/tick = %.0f ticks/s on one core (%d bars, %d zones, %d alerts)",
                    ticks, names.count, elapsed, elapsed / Double(ticks) * 1e6, Double(ticks) / elapsed,
                    engine.barsSeen, zones, alerts))
        }

        /// Gives the server market data for every symbol (ticks and bars over 5556), then times queries.
        func queryLatency(_ server: ServerUnderTest) throws {
            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setLinger(.seconds(10))
            try push.connect("tcp://127.0.0.1:\(server.port("BITTEN_MARKET_PORT"))")
            let names = Self.names(symbols)
            let start = 1_795_611_600
            for (index, symbol) in names.enumerated() {
                var price = symbol.hasSuffix("JPY") ? 150.0 : (symbol == "XAUUSD" ? 2000.0 : 1.1 + Double(index) * 0.01)
                for bar in 0..<120 {
                    let swing = sin(Double(bar) / 6) * price * 0.002
                    let open = price + swing
                    let close = open + (Double((bar * 7 + index) % 5) - 2) * price * 0.0002
                    let high = max(open, close) + price * 0.0003
                    let low = min(open, close) - price * 0.0003
                    try push.send(
                        #"{"type":"OHLC","node_id":"NODE_1_1","user_uuid":"user_bench_01","symbol":"\#(symbol)","timeframe":"M5","time":\#(start + bar * 300),"open":\#(open),"high":\#(high),"low":\#(low),"close":\#(close),"timestamp":"2026.11.25 13:00:00"}"#
                    )
                }
                for _ in 0..<50 {
                    price *= 1.00001
                    try push.send(
                        #"{"type":"TICK","node_id":"NODE_1_1","user_uuid":"user_bench_01","symbol":"\#(symbol)","bid":\#(price),"ask":\#(price * 1.00002),"spread":2.0,"volume":1,"timestamp":"2026.11.25 13:00:00"}"#
                    )
                }
            }
            Thread.sleep(forTimeInterval: 2)
            let req = try Socket(context: context, type: .req)
            try req.setReceiveTimeout(.seconds(5))
            try req.connect("tcp://127.0.0.1:\(server.port("BITTEN_QUERY_PORT"))")
            var tracked = 0
            if let reply = try? requestJSON(req, #"{"type":"zones","symbol":"\#(names[0])"}"#), reply["zones"] != nil {
                tracked += 1
            }
            for _ in 0..<200 {
                _ = try requestJSON(
                    req, #"{"type":"protection_query","symbol":"EURUSD","direction":"BUY","entry":1.1,"sl":1.098}"#)
            }
            var samples: [Double] = []
            samples.reserveCapacity(queries)
            var errors = 0
            for i in 0..<queries {
                let symbol = names[i % names.count]
                let direction = i % 2 == 0 ? "BUY" : "SELL"
                let entry = symbol.hasSuffix("JPY") ? 150.0 : (symbol == "XAUUSD" ? 2000.0 : 1.1)
                let sl = direction == "BUY" ? entry * 0.998 : entry * 1.002
                let began = ContinuousClock.now
                let reply = try requestJSON(
                    req,
                    #"{"type":"protection_query","symbol":"\#(symbol)","direction":"\#(direction)","entry":\#(entry),"sl":\#(sl)}"#
                )
                samples.append((ContinuousClock.now - began) / .microseconds(1))
                if reply["error"] != nil { errors += 1 }
            }
            samples.sort()
            func pct(_ p: Double) -> Double { samples[min(samples.count - 1, Int(Double(samples.count - 1) * p))] }
            let health = server.healthBlocking()
            _ = health
            print(
                String(
                    format:
                        "query: %d protection queries over REQ/REP, %d symbols tracked: p50 %.0f µs, p99 %.0f µs, max %.0f µs, %d errors",
                    queries, names.count, pct(0.5), pct(0.99), samples.last ?? 0, errors))
            req.close()
            push.close()
        }

        func requestJSON(_ req: Socket, _ text: String) throws -> [String: Any] {
            try req.send(text)
            guard let reply = try req.receive() else { throw ValidationError("no reply from 5566 within 5 s") }
            return (try JSONSerialization.jsonObject(with: Data(reply.frames[0])) as? [String: Any]) ?? [:]
        }
    }
}
