import BittenCore
import BittenTestSupport
import Testing

@Suite("Tiers, instruments and position sizing")
struct SizingTests {
    let sizer = PositionSizer(baseRiskPercent: 1.0)
    let table = InstrumentTable.standard

    @Test func eurusdLotFromBalanceRiskAndStop() throws {
        let eurusd = try #require(table["EURUSD"])
        let tick = try #require(eurusd.tickValue(accountCurrency: "USD", converter: CurrencyConverter(mids: []))).value
        #expect(abs(tick - 1.0) < 1e-12)
        // 1 % of 10 000 = 100 USD over 200 ticks at 1 USD → 0.50 lot.
        let size = try sizer.size(
            balance: 10_000, entry: 1.08520, stopLoss: 1.08320, instrument: eurusd, tickValue: tick,
            rule: TierTable.standard.rule(.recruit), userOverride: nil, citadelMultiplier: 1.0)
        #expect(size.lot == 0.5)
        #expect(size.stopTicks == 200)
        #expect(size.riskAmount == 100)
    }

    @Test func tierCapUserOverrideAndCitadelMultiplier() {
        let recruit = TierTable.standard.rule(.recruit)
        #expect(sizer.riskPercent(rule: recruit, userOverride: nil, citadelMultiplier: 1.0) == 1.0)
        #expect(sizer.riskPercent(rule: recruit, userOverride: 5.0, citadelMultiplier: 1.0) == 2.0)  // capped at 2 %
        #expect(sizer.riskPercent(rule: recruit, userOverride: nil, citadelMultiplier: 0.25) == 0.25)
        let commander = TierTable.standard.rule(.commander)
        #expect(commander.slots == 15 && commander.maxRiskPercent == 10)
        #expect(sizer.riskPercent(rule: commander, userOverride: nil, citadelMultiplier: 1.25) == 2.5)
        #expect(Tier.allCases.map { TierTable.standard.rule($0).slots } == [1, 1, 2, 2, 3, 3, 4, 5, 10, 15])
    }

    @Test func roundsDownToTheStepAndClampsToBrokerLimits() throws {
        let eurusd = try #require(table["EURUSD"])
        let rule = TierTable.standard.rule(.recruit)
        // 100 USD over 300 ticks = 0.3333… → 0.33.
        let odd = try sizer.size(
            balance: 10_000, entry: 1.1, stopLoss: 1.097, instrument: eurusd, tickValue: 1, rule: rule,
            userOverride: nil, citadelMultiplier: 1)
        #expect(odd.lot == 0.33)
        let tiny = try sizer.size(
            balance: 50, entry: 1.1, stopLoss: 1.09, instrument: eurusd, tickValue: 1, rule: rule,
            userOverride: nil, citadelMultiplier: 1)
        #expect(tiny.lot == eurusd.minLot)
        let huge = try sizer.size(
            balance: 1e9, entry: 1.1, stopLoss: 1.0999, instrument: eurusd, tickValue: 1, rule: rule,
            userOverride: nil, citadelMultiplier: 1)
        #expect(huge.lot == eurusd.maxLot)
        #expect(throws: SizingError.self) {
            try sizer.size(
                balance: 0, entry: 1.1, stopLoss: 1.09, instrument: eurusd, tickValue: 1, rule: rule,
                userOverride: nil, citadelMultiplier: 1)
        }
        #expect(throws: SizingError.self) {
            try sizer.size(
                balance: 1000, entry: 1.1, stopLoss: 1.1, instrument: eurusd, tickValue: 1, rule: rule,
                userOverride: nil, citadelMultiplier: 1)
        }
    }

    @Test func tickValuesForJPYGoldAndCrosses() throws {
        let none = CurrencyConverter(mids: [])
        let usdjpy = try #require(table["USDJPY"])
        // 0.001 × 100 000 = 100 JPY a tick = 100 / 150 USD (the pair's own quote converts it).
        let jpy = try #require(
            usdjpy.tickValue(accountCurrency: "USD", converter: CurrencyConverter(mids: [("USDJPY", 150)])))
        #expect(abs(jpy.value - 100.0 / 150.0) < 1e-9)
        let gold = try #require(table["XAUUSD"])
        #expect(gold.tickValue(accountCurrency: "USD", converter: none)?.value == 1.0)  // 0.01 × 100 oz
        let eurgbp = try #require(table["EURGBP"])
        let cross = try #require(
            eurgbp.tickValue(accountCurrency: "USD", converter: CurrencyConverter(mids: [("GBPUSD", 1.25)])))
        #expect(abs(cross.value - 1.25) < 1e-9)
        // No conversion price: refuse rather than guess.
        #expect(eurgbp.tickValue(accountCurrency: "USD", converter: none) == nil)
        #expect(table["NOSUCH"] == nil)
    }

    @Test func crossRatesConvertThroughAnyChainOfQuotes() throws {
        // GBPJPY on an EUR account with no EURJPY: JPY → USD (USDJPY) → EUR (EURUSD).
        let gbpjpy = try #require(table["GBPJPY"])
        let converter = CurrencyConverter(mids: [("EURUSD", 1.08), ("USDJPY", 150), ("GBPUSD", 1.27)])
        let tick = try #require(gbpjpy.tickValue(accountCurrency: "EUR", converter: converter))
        #expect(tick.conversion.path == ["JPY", "USD", "EUR"])
        // 100 JPY a tick = 100 / 150 USD = 100 / 150 / 1.08 EUR.
        #expect(abs(tick.value - 100.0 / 150.0 / 1.08) < 1e-9)
        // A direct quote is the shortest chain.
        let direct = CurrencyConverter(mids: [("EURJPY", 162), ("EURUSD", 1.08), ("USDJPY", 150)])
        #expect(direct.convert(from: "JPY", to: "EUR")?.path == ["JPY", "EUR"])
        #expect(abs((direct.convert(from: "JPY", to: "EUR")?.rate ?? 0) - 1 / 162.0) < 1e-12)
        // Three hops: CHF → JPY → USD → EUR.
        let long = CurrencyConverter(mids: [("CHFJPY", 170), ("USDJPY", 150), ("EURUSD", 1.08)])
        #expect(long.convert(from: "CHF", to: "EUR")?.path == ["CHF", "JPY", "USD", "EUR"])
        // No chain: nil, and the hint names a pair that would connect the two sides.
        let island = CurrencyConverter(mids: [("USDJPY", 150)])
        #expect(island.convert(from: "JPY", to: "EUR") == nil)
        #expect(island.missingPairHint(from: "JPY", to: "EUR").contains("EURUSD"))
        // Indices and bad prices are not currency pairs.
        #expect(CurrencyConverter(mids: [("US30", 40000), ("EURUSD", 0)]).convert(from: "USD", to: "EUR") == nil)
    }

    @Test func brokerSymbolsMapToCanonicalInstruments() {
        let canon = SymbolCanon(
            known: InstrumentTable.standard.instruments.keys,
            aliases: SymbolCanon.standardAliases.merging(["XAUUSD.PRO": "XAUUSD"]) { $1 })
        for (broker, canonical) in [
            ("EURUSD", "EURUSD"), ("EURUSD.r", "EURUSD"), ("EURUSDm", "EURUSD"), ("EURUSD-ECN", "EURUSD"),
            ("#EURUSD", "EURUSD"), ("eurusd.", "EURUSD"), ("GOLD", "XAUUSD"), ("GOLDm", "XAUUSD"),
            ("XAUUSD.pro", "XAUUSD"), ("US30+", "US30"), ("[DJI30]", "US30"), ("USDJPY_i", "USDJPY"),
            ("[SOMETHING]", "SOMETHING"), ("GBPJPY!", "GBPJPY"),
        ] {
            #expect(canon.canonical(broker) == canonical, "\(broker)")
        }
        var map = BrokerSymbolMap()
        let learned = [
            map.learn(broker: "EURUSD.r", canonical: "EURUSD"), map.learn(broker: "EURUSD.r", canonical: "EURUSD"),
            map.learn(broker: "[DJI30]", canonical: "US30"), map.learn(broker: "bad name", canonical: "X"),
        ]
        #expect(learned == [true, false, true, false])
        #expect(BrokerSymbolMap(encoded: map.encoded) == map)
        #expect(map["EURUSD"] == "EURUSD.r" && map["GBPUSD"] == nil)
    }
}

@Suite("Signal decoding")
struct SignalDecodingTests {
    @Test func bothFixtureFormsDecode() throws {
        let short = try Signal.decode(try Fixtures.bytes("ea/signal.json"), now: 0, defaultTTL: 7200)
        #expect(short.signalID == "ELITE_GUARD_EURUSD_1795961160")
        #expect(
            short.direction == .buy && short.entry == 1.0852 && short.stopLoss == 1.0832 && short.takeProfit == 1.0892)
        #expect(short.createdAt == 1_795_961_160 && short.expiresAt == 1_795_961_160 + 7200)
        #expect(short.stopIsOnTheRightSide)
        let engine = try Signal.decode(try Fixtures.bytes("ea/signal_elite_guard.json"), now: 0, defaultTTL: 7200)
        #expect(engine.symbol == "GBPUSD" && engine.direction == .sell)
        #expect(engine.entry == 1.26833 && engine.stopLoss == 1.27033 && engine.takeProfit == 1.26433)
        #expect(engine.expiresAt == ISOTime.epochSeconds("2026-11-24T16:10:00"))
        #expect(engine.extras["xp_reward"] == .number(120, isInteger: true))
        let prefixed = try Signal.decode(
            Array("ELITE_GUARD_SIGNAL ".utf8) + (try Fixtures.bytes("ea/signal.json")), now: 0,
            defaultTTL: 60)
        #expect(prefixed.signalID == short.signalID)
    }

    func reject(_ text: String) -> WireError? {
        do {
            _ = try Signal.decode(Array(text.utf8), now: 1000, defaultTTL: 60)
            return nil
        } catch {
            return error
        }
    }

    @Test func malformedMissingWrongTypeAndOversizedAreRejectedByField() {
        let base = #""signal_id":"S_1","symbol":"EURUSD","direction":"BUY","entry":1.1,"sl":1.09,"tp":1.12"#
        #expect(reject("{" + base + "}") == nil)
        #expect(reject("{" + base)?.code == .truncated)
        #expect([WireError.Code.notJSON, .notObject].contains(reject("not json")?.code ?? .unencodable))
        #expect(reject(#"{"symbol":"EURUSD","direction":"BUY","entry":1.1,"sl":1.09,"tp":1.12}"#)?.field == "signal_id")
        #expect(
            reject(#"{"signal_id":"S_1","symbol":"EURUSD","direction":"BUY","entry":1.1,"tp":1.12}"#)?.field == "sl")
        #expect(
            reject(#"{"signal_id":"S_1","symbol":"EURUSD","direction":"BUY","entry":"1.1","sl":1.09,"tp":1.12}"#)?.code
                == .wrongType)
        #expect(
            reject(#"{"signal_id":"S_1","symbol":"EURUSD","direction":"UP","entry":1.1,"sl":1.09,"tp":1.12}"#)?.field
                == "direction")
        #expect(
            reject(#"{"signal_id":"S 1; DEL","symbol":"EURUSD","direction":"BUY","entry":1.1,"sl":1.09,"tp":1.12}"#)?
                .field == "signal_id")
        #expect(
            reject(#"{"signal_id":"S_1","symbol":"EURUSD","direction":"BUY","entry":-1.1,"sl":1.09,"tp":1.12}"#)?.field
                == "entry")
        #expect(reject("{" + base + #","confidence":140}"#)?.field == "confidence")
        #expect(reject("{" + base + #","expires_at":"tomorrow"}"#)?.field == "expires_at")
        #expect(reject("{" + base + #","timestamp":true}"#)?.code == .wrongType)
        let padding = String(repeating: "x", count: 9000)
        #expect(reject("{" + base + #","pattern":"\#(padding)"}"#)?.code == .oversized)
    }

    @Test func isoTimesWithZonesAndFractions() {
        #expect(ISOTime.epochSeconds("1970-01-01T00:00:00") == 0)
        #expect(ISOTime.epochSeconds("1970-01-01T01:00:00+01:00") == 0)
        #expect(ISOTime.epochSeconds("1970-01-01T00:00:01.5Z") == 1.5)
        #expect(ISOTime.epochSeconds("2026-13-01T00:00:00") == nil)
        #expect(ISOTime.epochSeconds("2026-11-24T16:10:00junk") == nil)
    }

    @Test func publishedJSONKeepsExtrasAndAddsTheScore() throws {
        let signal = try Signal.decode(try Fixtures.bytes("ea/signal_elite_guard.json"), now: 0, defaultTTL: 60)
        let text = signal.json(adding: ["citadel_score": .number(5, isInteger: false)])
        let object = try JSONParser.parseObject(Array(text.utf8), maxBytes: 1 << 16)
        #expect(
            object["citadel_score"] == .number(5, isInteger: false)
                || object["citadel_score"] == .number(5, isInteger: true))
        #expect(object["session"] == .string("LONDON"))
        #expect(object["signal_id"] == .string(signal.signalID))
    }
}

@Suite("Fire state machine")
struct FireStateTests {
    @Test func transitionsFollowTheTradePath() {
        #expect(FireState.pending.canMove(to: .sent))
        #expect(FireState.sent.canMove(to: .filled))
        #expect(FireState.sent.canMove(to: .rejected))
        #expect(FireState.sent.canMove(to: .timedOut))
        #expect(FireState.timedOut.canMove(to: .filled))  // a late confirmation reconciles
        #expect(!FireState.timedOut.canMove(to: .sent))  // never re-sent
        #expect(!FireState.filled.canMove(to: .rejected))
        #expect(FireState.filled.isFinal && FireState.rejected.isFinal)
        #expect(FireState.filled.holdsSlot && !FireState.timedOut.holdsSlot && !FireState.rejected.holdsSlot)
    }
}
