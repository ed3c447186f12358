import BittenTestSupport
import Foundation
import Testing

@testable import BittenCore

/// Scripted bars and ticks against a manual clock (every call takes the time).
@Suite("CITADEL analysis")
struct CitadelTests {
    /// Wednesday 2026-11-25 13:00 UTC (London/New York overlap).
    static let t0 = 1_795_611_600.0
    static let bar = 300.0

    /// An engine fed bars (open, high, low, close) at 5-minute steps from `t0`; returns it with the
    /// alerts each bar raised.
    static func feed(
        _ bars: [(Double, Double, Double, Double)], into engine: inout CitadelEngine, symbol: String = "EURUSD",
        startIndex: Int = 0, volume: Double = 100
    ) -> [[CitadelAlert]] {
        bars.enumerated().map { offset, b in
            let index = Double(startIndex + offset)
            let time = t0 + index * bar
            return engine.addBar(
                symbol: symbol, Bar(time: time, open: b.0, high: b.1, low: b.2, close: b.3, volume: volume),
                at: time + bar)
        }
    }

    /// Flat bars around `price` (3 pips range) to give the ATR something to work with.
    static func flat(_ count: Int, at price: Double) -> [(Double, Double, Double, Double)] {
        (0..<count).map { i in
            let wiggle = Double(i % 3) * 0.00005
            return (price + wiggle, price + 0.00015 + wiggle, price - 0.00015 + wiggle, price + wiggle)
        }
    }

    /// A peak at 1.1030 two bars before the end: resistance there once the right side is complete.
    static let peak: [(Double, Double, Double, Double)] = [
        (1.1000, 1.1008, 1.0998, 1.1006), (1.1006, 1.1016, 1.1004, 1.1014), (1.1014, 1.1030, 1.1012, 1.1020),
        (1.1020, 1.1018, 1.1005, 1.1008), (1.1008, 1.1010, 1.0999, 1.1002),
    ]

    func engineWithResistance() -> (CitadelEngine, Int) {
        var engine = CitadelEngine()
        _ = Self.feed(Self.flat(20, at: 1.1000), into: &engine)
        _ = Self.feed(Self.peak, into: &engine, startIndex: 20)
        return (engine, 25)
    }

    @Test func swingHighBecomesResistance() throws {
        let (engine, next) = engineWithResistance()
        let zones = engine.maps["EURUSD"]?.currentZones(at: Self.t0 + Double(next) * Self.bar) ?? []
        let resistance = try #require(zones.first { $0.zone.kind == .resistance && abs($0.zone.price - 1.1030) < 1e-9 })
        #expect((1...10).contains(resistance.strength))
        #expect(resistance.zone.touches == 1)
        #expect(zones.count <= CitadelSettings().maxZones)
    }

    @Test func retouchStrengthensAndDecayAndExpiryApply() throws {
        var (engine, next) = engineWithResistance()
        let before = try #require(
            engine.maps["EURUSD"]?.zones.first { $0.kind == .resistance && abs($0.price - 1.1030) < 1e-9 })
        // Back up to 1 pip under the level, then away.
        _ = Self.feed([(1.1002, 1.1029, 1.1001, 1.1010)], into: &engine, startIndex: next)
        next += 1
        let time = Self.t0 + Double(next) * Self.bar
        let after = try #require(engine.maps["EURUSD"]?.zones.first { $0.id == before.id })
        #expect(after.touches == 2)
        #expect(after.strength(at: time, dailyDecay: 0.95) > before.strength(at: time, dailyDecay: 0.95))
        // Decay: one day later it is 0.95 × (never below 1).
        let oneDay = after.strength(at: after.updatedAt + 86_400, dailyDecay: 0.95)
        #expect(abs(oneDay - max(1, after.baseStrength * 0.95)) < 1e-9)
        // Expiry: a bar processed more than 24 h after its last touch removes it.
        let late = after.updatedAt + 86_400 + 600
        _ = engine.addBar(
            symbol: "EURUSD", Bar(time: late - 300, open: 1.1, high: 1.1001, low: 1.0999, close: 1.1), at: late)
        #expect(engine.maps["EURUSD"]?.zones.contains { $0.id == before.id } == false)
    }

    @Test func sweepIsDetectedOnceWithItsDirection() throws {
        var (engine, next) = engineWithResistance()
        // Pierce 6 pips above 1.1030, close back below: a bullish sweep (through resistance, back below).
        let alerts = Self.feed([(1.1010, 1.1036, 1.1008, 1.1022)], into: &engine, startIndex: next)
        next += 1
        let sweeps = engine.maps["EURUSD"]?.sweeps ?? []
        #expect(sweeps.count == 1)
        let sweep = try #require(sweeps.first)
        #expect(sweep.kind == "bullish_sweep")
        #expect(sweep.reversal == .sell)
        #expect(abs(sweep.depthPips - 6) < 0.01)
        let alert = try #require(alerts.flatMap { $0 }.first { $0.kind == "liquidity_sweep" })
        #expect(alert.details["sweep_type"] == .string("bullish_sweep"))
        // Quiet bars afterwards do not record it again.
        _ = Self.feed(Self.flat(5, at: 1.1015), into: &engine, startIndex: next)
        #expect(engine.maps["EURUSD"]?.sweeps.count == 1)
    }

    @Test func supportSweepIsBearish() throws {
        var engine = CitadelEngine()
        _ = Self.feed(Self.flat(20, at: 1.1000), into: &engine)
        let trough: [(Double, Double, Double, Double)] = [
            (1.1000, 1.1002, 1.0992, 1.0994), (1.0994, 1.0996, 1.0984, 1.0986), (1.0986, 1.0988, 1.0970, 1.0980),
            (1.0980, 1.0992, 1.0982, 1.0990), (1.0990, 1.0998, 1.0988, 1.0996),
        ]
        _ = Self.feed(trough, into: &engine, startIndex: 20)
        _ = Self.feed([(1.0990, 1.0992, 1.0964, 1.0985)], into: &engine, startIndex: 25)
        let sweep = try #require(engine.maps["EURUSD"]?.sweeps.first)
        #expect(sweep.kind == "bearish_sweep")
        #expect(sweep.reversal == .buy)
    }

    @Test func breakoutThatHoldsIsNotASweep() throws {
        var (engine, next) = engineWithResistance()
        let alerts = Self.feed(
            [
                (1.1020, 1.1040, 1.1018, 1.1038), (1.1038, 1.1045, 1.1035, 1.1042), (1.1042, 1.1050, 1.1040, 1.1047),
            ], into: &engine, startIndex: next)
        next += 3
        #expect(engine.maps["EURUSD"]?.sweeps.isEmpty == true)
        #expect(alerts.flatMap { $0 }.contains { $0.kind == "zone_broken" })
        #expect(
            engine.maps["EURUSD"]?.zones.contains { $0.kind == .resistance && abs($0.price - 1.1030) < 1e-9 } == false)
    }

    @Test func spreadSpikeAlertsOncePerCooldown() {
        var engine = CitadelEngine()
        var alerts: [CitadelAlert] = []
        var time = Self.t0
        for _ in 0..<120 {
            alerts += engine.addTick(symbol: "EURUSD", bid: 1.1000, ask: 1.1001, volume: 1, at: time)
            time += 1
        }
        #expect(alerts.isEmpty)
        // 6 pips: 6× the 1-pip median.
        alerts += engine.addTick(symbol: "EURUSD", bid: 1.1000, ask: 1.1006, volume: 1, at: time)
        #expect(alerts.filter { $0.kind == "manipulation_detected" }.count == 1)
        time += 60
        alerts += engine.addTick(symbol: "EURUSD", bid: 1.1000, ask: 1.1006, volume: 1, at: time)
        #expect(alerts.filter { $0.kind == "manipulation_detected" }.count == 1, "second spike inside the cooldown")
        #expect(engine.suppressed["manipulation_detected"] == 1)
        time += 300
        alerts += engine.addTick(symbol: "EURUSD", bid: 1.1000, ask: 1.1006, volume: 1, at: time)
        #expect(alerts.filter { $0.kind == "manipulation_detected" }.count == 2, "after the cooldown")
    }

    // MARK: score factors move in the documented direction

    func quote(_ engine: inout CitadelEngine, bid: Double, spread: Double = 0.0001, at time: Double) {
        _ = engine.addTick(symbol: "EURUSD", bid: bid, ask: bid + spread, volume: 1, at: time)
    }

    @Test func resistanceAboveABuyLowersZoneProximity() {
        let (engine, next) = engineWithResistance()
        let time = Self.t0 + Double(next) * Self.bar
        let under = engine.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.1026, stopLoss: 1.1000), at: time)
        let far = engine.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.0900, stopLoss: 1.0870), at: time)
        #expect(under.factors.zoneProximity < 5)
        #expect(far.factors.zoneProximity == 5)
        #expect(under.score < far.score)
        #expect(under.insights.contains { $0.contains("under a strength-") && $0.contains("resistance") })
        // The same level protects a SELL placed just under it.
        let sell = engine.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .sell, entry: 1.1026, stopLoss: 1.1040), at: time)
        #expect(sell.factors.zoneProximity > 5)
    }

    @Test func tradingWithASweepReversalEarnsProtection() {
        var (engine, next) = engineWithResistance()
        _ = Self.feed([(1.1010, 1.1036, 1.1008, 1.1022)], into: &engine, startIndex: next)
        next += 1
        let time = Self.t0 + Double(next) * Self.bar + 600
        let sell = engine.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .sell, entry: 1.1000, stopLoss: 1.1040), at: time)
        let buy = engine.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.1000, stopLoss: 1.0960), at: time)
        #expect(sell.factors.sweepProtection > 5)
        #expect(buy.factors.sweepProtection < 5)
        // Older sweeps count less.
        let later = engine.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .sell, entry: 1.1000, stopLoss: 1.1040), at: time + 3_600)
        #expect(later.factors.sweepProtection < sell.factors.sweepProtection)
    }

    @Test func sessionsScoreAsDocumented() {
        #expect(ProtectionModel.sessionRisk(at: Self.t0).0 == 9)  // Wed 13:00 overlap
        #expect(ProtectionModel.sessionRisk(at: 1_795_642_200).0 == 2)  // Wed 21:30 rollover
        #expect(ProtectionModel.sessionRisk(at: 1_795_867_200).0 == 1)  // Saturday
        let engine = CitadelEngine()
        let day = engine.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.1, stopLoss: 1.09), at: Self.t0)
        let rollover = engine.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.1, stopLoss: 1.09), at: 1_795_642_200)
        #expect(rollover.score < day.score)
    }

    @Test func highVolatilityAndTightStopsLowerTheVolatilityFactor() {
        var calm = CitadelEngine()
        _ = Self.feed(Self.flat(60, at: 1.1000), into: &calm)
        var wild = CitadelEngine()
        _ = Self.feed(Self.flat(60, at: 1.1000), into: &wild)
        // Ten bars of 40-pip ranges.
        _ = Self.feed(
            (0..<10).map { i in
                let base = 1.1000 + Double(i % 2) * 0.0020
                return (base, base + 0.0020, base - 0.0020, base + 0.0010)
            }, into: &wild, startIndex: 60)
        let time = Self.t0 + 71 * Self.bar
        let query = ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.1000, stopLoss: 1.0950)
        let calmReport = calm.assess(query, at: time)
        let wildReport = wild.assess(query, at: time)
        #expect(wildReport.factors.volatility < calmReport.factors.volatility)
        let tight = calm.assess(
            ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.1000, stopLoss: 1.09999), at: time)
        #expect(tight.factors.volatility < calmReport.factors.volatility)
    }

    @Test func driftSpreadAndAgeDecayASignal() {
        var engine = CitadelEngine()
        _ = Self.feed(Self.flat(30, at: 1.1000), into: &engine)
        var time = Self.t0 + 30 * Self.bar
        for _ in 0..<120 {
            quote(&engine, bid: 1.1000, at: time)
            time += 1
        }
        let fresh = ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.1001, stopLoss: 1.0981, createdAt: time)
        let base = engine.assess(fresh, at: time)
        // Price ran 15 pips past the entry (75 % of the 20-pip stop).
        quote(&engine, bid: 1.1015, at: time + 1)
        let ranOver = engine.assess(fresh, at: time + 1)
        #expect(ranOver.decay!.drift > 0.5)
        #expect(ranOver.factors.confluence < base.factors.confluence)
        // Old: 25 minutes later.
        quote(&engine, bid: 1.1000, at: time + 2)
        let old = engine.assess(fresh, at: time + 1_500)
        #expect(old.factors.confluence < base.factors.confluence)
        // Spread 4× normal.
        quote(&engine, bid: 1.1000, spread: 0.0004, at: time + 3)
        let wide = engine.assess(fresh, at: time + 3)
        #expect(wide.decay!.spreadRatio > 3)
        #expect(wide.factors.confluence < base.factors.confluence)
    }

    @Test func staleSignalIsAlertedOnce() {
        var engine = CitadelEngine()
        var time = Self.t0
        for _ in 0..<90 {
            quote(&engine, bid: 1.1000, at: time)
            time += 1
        }
        engine.watch(
            signalID: "SIG-1",
            query: ProtectionQuery(
                symbol: "EURUSD", direction: .buy, entry: 1.1001,
                stopLoss: 1.0991, createdAt: time), expiresAt: time + 3_600)
        #expect(engine.reviewSignals(at: time).isEmpty)
        #expect(engine.isStale("SIG-1") == false)
        // Runs 12 pips past a 10-pip stop distance, and ages.
        quote(&engine, bid: 1.1013, at: time + 1_200)
        let alerts = engine.reviewSignals(at: time + 1_200)
        #expect(alerts.map(\.kind) == ["signal_stale"])
        #expect(engine.isStale("SIG-1") == true)
        #expect(engine.reviewSignals(at: time + 1_300).isEmpty)
        // Expired signals are forgotten.
        _ = engine.reviewSignals(at: time + 7_200)
        #expect(engine.watchedSignals == 0)
    }

    @Test func levelsAndMultipliers() {
        #expect(RiskLevel(score: 8) == .fortress)
        #expect(RiskLevel(score: 7.9) == .protected)
        #expect(RiskLevel(score: 4) == .caution)
        #expect(RiskLevel(score: 2) == .highRisk)
        #expect(RiskLevel(score: 1.9) == .danger)
        let settings = CitadelSettings()
        #expect(settings.multiplier(for: .danger) == 0.25)
        #expect(settings.multiplier(for: .fortress) == 1.25)
        let neutral = ProtectionFactors(zoneProximity: 5, sweepProtection: 5, volatility: 5, timeRisk: 5, confluence: 5)
        #expect(neutral.score == 5)
    }

    /// Property: whatever the market and query, the score stays in 1–10 and every factor in 0–10.
    @Test func scoresStayInRangeForRandomInputs() {
        var rng = SplitMix64(seed: 42)
        for round in 0..<60 {
            var engine = CitadelEngine()
            var price = 1.0 + rng.nextUnit()
            var time = Self.t0 + Double(round) * 86_400 * 0.37
            for _ in 0..<Int(rng.nextUnit() * 400) {
                price = max(0.01, price + (rng.nextUnit() - 0.5) * 0.004)
                let spread = rng.nextUnit() * 0.0008
                _ = engine.addTick(
                    symbol: "EURUSD", bid: price, ask: price + spread, volume: rng.nextUnit() * 10, at: time)
                time += rng.nextUnit() * 90
            }
            for _ in 0..<20 {
                let entry = price + (rng.nextUnit() - 0.5) * 0.02
                let sl: Double? = rng.nextUnit() < 0.2 ? nil : entry + (rng.nextUnit() - 0.5) * 0.01
                let direction: Direction? = rng.nextUnit() < 0.1 ? nil : (rng.nextUnit() < 0.5 ? .buy : .sell)
                let report = engine.assess(
                    ProtectionQuery(
                        symbol: rng.nextUnit() < 0.1 ? "GBPJPY" : "EURUSD", direction: direction,
                        entry: entry, stopLoss: sl, createdAt: time - rng.nextUnit() * 5_000),
                    at: time + rng.nextUnit() * 200_000)
                #expect((1...10).contains(report.score), "score \(report.score)")
                for value in [
                    report.factors.zoneProximity, report.factors.sweepProtection, report.factors.volatility,
                    report.factors.timeRisk, report.factors.confluence,
                ] {
                    #expect((0...10).contains(value))
                }
                #expect((1...3).contains(report.insights.count))
            }
        }
    }

    /// Real M5 bars from a live EA: zones come out bounded and sane.
    @Test func realBarsGiveBoundedZones() throws {
        let data = try Fixtures.data("market/bars_m5_2025-09-15.json")
        let all = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [[String: Any]]])
        var engine = CitadelEngine()
        var alerts: [CitadelAlert] = []
        for (symbol, bars) in all {
            for entry in bars {
                guard let time = entry["timestamp"] as? Double, let open = entry["open"] as? Double,
                    let high = entry["high"] as? Double, let low = entry["low"] as? Double,
                    let close = entry["close"] as? Double
                else { continue }
                alerts += engine.addBar(
                    symbol: symbol, Bar(time: time, open: open, high: high, low: low, close: close), at: time + 300)
            }
        }
        #expect(engine.symbols.count >= 10)
        for symbol in engine.symbols {
            let map = try #require(engine.maps[symbol])
            #expect(map.zones.count <= 15)
            #expect(!map.zones.isEmpty, "\(symbol) has no zones in 300 bars")
            for zone in map.zones { #expect((1...10).contains(zone.baseStrength)) }
        }
        #expect(alerts.allSatisfy { ["liquidity_sweep", "zone_broken", "manipulation_detected"].contains($0.kind) })
    }
}

@Suite("CITADEL request decoder")
struct CitadelRequestTests {
    func decode(_ text: String) throws(WireError) -> CitadelRequest { try CitadelRequest.decode(Array(text.utf8)) }

    func rejects(_ text: String, _ code: WireError.Code, field: String? = nil) {
        do {
            _ = try decode(text)
            Issue.record("accepted \(text.prefix(80))")
        } catch {
            #expect(error.code == code, "\(text.prefix(80)): \(error)")
            if let field { #expect(error.field == field, "\(error)") }
        }
    }

    @Test func acceptsBothShapes() throws {
        #expect(
            try decode(#"{"type":"protection_query","symbol":"EURUSD","direction":"buy","entry":1.1,"sl":1.09}"#)
                == .protection(ProtectionQuery(symbol: "EURUSD", direction: .buy, entry: 1.1, stopLoss: 1.09)))
        #expect(
            try decode(#"{"symbol":"EURUSD","entry_price":1.1745}"#)
                == .protection(ProtectionQuery(symbol: "EURUSD", direction: nil, entry: 1.1745, stopLoss: nil)))
        #expect(try decode(#"{"type":"zones","symbol":"XAUUSD"}"#) == .zones(symbol: "XAUUSD"))
    }

    @Test func rejectsBadInputNamingTheField() {
        rejects("", .notJSON)
        rejects("[1,2]", .notObject)
        rejects("{\"symbol\":\"EURUSD\"", .truncated)
        rejects(#"{"entry":1.1}"#, .missingField, field: "symbol")
        rejects(#"{"symbol":"EURUSD"}"#, .missingField, field: "entry_price")
        rejects(#"{"symbol":7,"entry":1.1}"#, .wrongType, field: "symbol")
        rejects(#"{"symbol":"EURUSD","entry":"1.1"}"#, .wrongType, field: "entry")
        rejects(#"{"symbol":"EURUSD","entry":0}"#, .outOfRange, field: "entry")
        rejects(#"{"symbol":"EURUSD","entry":1e999}"#, .nonFinite, field: "entry")
        rejects(#"{"symbol":"EURUSD","entry":1.1,"direction":"LONG"}"#, .outOfRange, field: "direction")
        rejects(#"{"symbol":"EURUSD","entry":1.1,"direction":"SELL","sl":1.0}"#, .outOfRange, field: "sl")
        rejects(#"{"type":"nope","symbol":"EURUSD"}"#, .unknownType, field: "type")
        rejects(#"{"symbol":"../etc","entry":1.1}"#, .outOfRange, field: "symbol")
        rejects(#"{"symbol":"EURUSD","entry":1.1,"entry":1.2}"#, .duplicateField, field: "entry")
        rejects("{\"symbol\":\"EURUSD\",\"x\":\"" + String(repeating: "a", count: 5000) + "\"}", .oversized)
    }

    @Test func errorReplyHasTheProtocolShape() {
        let reply = CitadelRequest.errorReply(WireError(.missingField, field: "symbol", "required field is missing"))
        guard case .object(let object) = reply else {
            Issue.record("not an object")
            return
        }
        #expect(object["risk_level"] == .string("ERROR"))
        #expect(object["protection_score"] == .number(1.0, isInteger: false))
        #expect(object["error"] != nil)
    }
}
