import Foundation
import Testing

@testable import BittenCore

/// Each risk limit refuses exactly past its boundary (a figure equal to the limit passes), with the figure and the
/// limit in the message; the day rolls at 00:00; the streak counts losses in a row.
@Suite("Risk limits (pure, a table per limit)")
struct RiskLimitsTests {
    static let at = 1_800_000_000.0  // 2027-01-15 08:00 UTC
    static let today = RiskDay.day(of: at)

    /// A EURUSD BUY whose stop loses `risk` (tick 0.00001, tick value 1, 1 lot: 100 per 0.001).
    static func trade(_ symbol: String = "EURUSD", buy: Bool = true, lot: Double = 1, risk: Double?) -> RiskExposure {
        RiskExposure(symbol: symbol, isBuy: buy, lot: lot, riskAtStop: risk)
    }

    static func verdict(
        _ limits: RiskLimits, day: RiskDay = RiskDay(day: today, startBalance: 10_000, equityPeak: 10_000),
        balance: Double = 10_000, unrealized: Double = 0, open: [RiskExposure] = [], new: RiskExposure,
        at: Double = at
    ) -> FireRefusal? {
        RiskCheck.refusal(
            limits, day: day, at: at,
            .init(balance: balance, unrealized: unrealized, open: open, new: new, noStopRiskPercent: 10))
    }

    /// Daily loss 3 %: realized (balance below the day's start) + unrealized + the new trade's risk.
    @Test(arguments: [
        (balance: 9_900.0, unrealized: -100.0, risk: 100.0, refused: false),  // 3.00 %: at the limit
        (9_900, -100, 100.01, true),  // 3.0001 %
        (10_000, -250, 49, false),  // 2.99 %
        (10_000, 0, 300, false),  // the trade alone, exactly 3 %
        (10_000, 0, 301, true),
        (10_100, 0, 400, false),  // a profitable day leaves room: (10000 - 10100 + 400) / 10000 = 3 %
    ])
    func dailyLoss(balance: Double, unrealized: Double, risk: Double, refused: Bool) {
        let refusal = Self.verdict(
            RiskLimits(dailyLossPercent: 3), balance: balance, unrealized: unrealized, new: Self.trade(risk: risk))
        #expect((refusal != nil) == refused, "\(balance) \(unrealized) \(risk): \(String(describing: refusal))")
        if let refusal {
            #expect(refusal.code == .dailyLossLimit)
            #expect(refusal.message.contains("the limit is 3 %") && refusal.message.contains("10000"))
        }
    }

    /// Drawdown 10 % from the equity peak (12 000): equity + the new trade's risk.
    @Test(arguments: [
        (equity: 11_000.0, risk: 200.0, refused: false),  // (12000 - 11000 + 200) / 12000 = 10 %
        (11_000, 201, true),
        (10_800, 0, false),  // exactly 10 % already, the trade risks nothing
        (10_799, 0, true),
        (12_500, 1_250, false),  // a new peak: 1250 / 12500 = 10 %
    ])
    func drawdown(equity: Double, risk: Double, refused: Bool) {
        let refusal = Self.verdict(
            RiskLimits(drawdownPercent: 10), day: RiskDay(day: Self.today, startBalance: 11_000, equityPeak: 12_000),
            balance: 11_000, unrealized: equity - 11_000, new: Self.trade(risk: risk))
        #expect((refusal != nil) == refused, "\(equity) \(risk): \(String(describing: refusal))")
        if let refusal { #expect(refusal.code == .drawdownLimit && refusal.message.contains("10 %")) }
    }

    /// Open risk 5 % of 10 000: every open trade at its stop (no stop: 10 % of the balance) plus the new one.
    @Test(arguments: [
        (open: [200.0, 100.0], risk: 200.0, refused: false),  // 500 = 5 %
        ([200, 100], 200.01, true),
        ([], 500, false),
        ([-1], 0, true),  // -1: a trade without a stop counts 1 000
        ([], 501, true),
    ])
    func openRisk(open: [Double], risk: Double, refused: Bool) {
        let trades = open.map { Self.trade(risk: $0 < 0 ? nil : $0) }
        let refusal = Self.verdict(RiskLimits(openRiskPercent: 5), open: trades, new: Self.trade(risk: risk))
        #expect((refusal != nil) == refused, "\(open) \(risk): \(String(describing: refusal))")
        if let refusal { #expect(refusal.code == .openRiskLimit && refusal.message.contains("the limit is 5 %")) }
    }

    /// Exposure 2 lots per currency: EURUSD BUY adds EUR, takes USD; a trade that reduces exposure always passes.
    @Test(arguments: [
        (open: [("EURUSD", true, 1.0)], new: ("EURUSD", true, 1.0), refused: false),  // EUR +2
        ([("EURUSD", true, 1.0)], ("EURUSD", true, 1.01), true),  // EUR +2.01
        ([("EURUSD", true, 1.5)], ("USDJPY", false, 0.6), true),  // USD −1.5 − 0.6 = −2.1
        ([("EURUSD", true, 3.0)], ("EURUSD", false, 1.0), false),  // from +3 to +2: reduces
        ([("XAUUSD", false, 2.0)], ("GBPUSD", false, 0.5), true),  // USD +2, then +2.5 (both SELLs buy USD)
    ])
    func exposure(open: [(String, Bool, Double)], new: (String, Bool, Double), refused: Bool) {
        let trades = open.map { Self.trade($0.0, buy: $0.1, lot: $0.2, risk: 1) }
        let refusal = Self.verdict(
            RiskLimits(exposureLots: 2), open: trades, new: Self.trade(new.0, buy: new.1, lot: new.2, risk: 1))
        #expect((refusal != nil) == refused, "\(open) \(new): \(String(describing: refusal))")
        if let refusal { #expect(refusal.code == .exposureLimit && refusal.message.contains("±2")) }
    }

    /// Trades per day 3: the fourth of the day is refused; a new day starts at zero.
    @Test(arguments: [(trades: 2, day: today, refused: false), (3, today, true), (3, "20000101", false)])
    func tradesPerDay(trades: Int, day: String, refused: Bool) {
        let figures = RiskDay(day: day, startBalance: 10_000, equityPeak: 10_000, trades: trades)
            .rolled(at: Self.at, balance: 10_000, equity: 10_000)
        let refusal = Self.verdict(RiskLimits(tradesPerDay: 3), day: figures, new: Self.trade(risk: 10))
        #expect((refusal != nil) == refused)
        if let refusal { #expect(refusal.code == .tradesPerDayLimit && refusal.message.contains("trade 4 today")) }
    }

    /// Three losses in a row: 60 minutes of cooldown from the last loss, to the second.
    @Test(arguments: [
        (streak: 3, minutesAgo: 59.99, refused: true), (3, 60, false), (2, 1, false), (4, 30, true),
    ])
    func lossStreakCooldown(streak: Int, minutesAgo: Double, refused: Bool) {
        let day = RiskDay(
            day: Self.today, startBalance: 10_000, equityPeak: 10_000, lossStreak: streak,
            lastLossAt: Self.at - minutesAgo * 60)
        let refusal = Self.verdict(
            RiskLimits(lossStreak: 3, cooldownMinutes: 60), day: day, new: Self.trade(risk: 10))
        #expect((refusal != nil) == refused, "\(streak) \(minutesAgo)")
        if let refusal { #expect(refusal.code == .lossStreakCooldown && refusal.message.contains("limit 3")) }
    }

    @Test func theDayRollsAtMidnightAndTheStreakCountsLossesInARow() {
        let midnight = RiskDay.nextDay(after: Self.at)
        #expect(RiskDay.day(of: midnight - 1) == Self.today && RiskDay.day(of: midnight) != Self.today)
        // The day's text, digits by hand: zero-padded, and across a year's and a leap day's end.
        #expect(RiskDay.day(of: 0) == "19700101" && RiskDay.day(of: 951_868_799) == "20000229")
        #expect(RiskDay.day(of: 1_798_761_599) == "20261231" && RiskDay.day(of: 1_798_761_600) == "20270101")
        #expect(Int(midnight) % 86_400 == 0 && midnight > Self.at && midnight - Self.at <= 86_400)
        var day = RiskDay(day: Self.today, startBalance: 9_000, equityPeak: 11_000, trades: 7)
        let same = day.rolled(at: Self.at + 60, balance: 8_000, equity: 11_500)
        #expect(same.startBalance == 9_000 && same.trades == 7 && same.equityPeak == 11_500)
        let next = day.rolled(at: midnight, balance: 8_000, equity: 8_000)
        #expect(next.startBalance == 8_000 && next.trades == 0 && next.equityPeak == 11_000)
        day.closed(profit: -5, at: 1)
        day.closed(profit: -5, at: 2)
        day.closed(profit: 0, at: 3)  // breakeven: neither
        #expect(day.lossStreak == 2 && day.lastLossAt == 2)
        day.closed(profit: 1, at: 4)
        #expect(day.lossStreak == 0)
    }

    @Test func userValuesReplaceTheTiersOneByOneAndRoundTrip() {
        let tier = RiskLimits(dailyLossPercent: 5, drawdownPercent: 20, tradesPerDay: 10)
        let own = RiskLimits(dailyLossPercent: 3, exposureLots: 4)
        let merged = own.over(tier)
        #expect(merged == RiskLimits(dailyLossPercent: 3, drawdownPercent: 20, exposureLots: 4, tradesPerDay: 10))
        var hash: [String: String] = [:]
        let fields = merged.userFields + RiskDay(day: "20270115", startBalance: 1.5, trades: 2).userFields
        for i in stride(from: 0, to: fields.count, by: 2) { hash[fields[i]] = fields[i + 1] }
        #expect(RiskLimits(userHash: hash) == merged)
        #expect(RiskDay(userHash: hash) == RiskDay(day: "20270115", startBalance: 1.5, trades: 2))
        #expect(RiskLimits(userHash: ["limit_daily_loss": "nan", "limit_trades_per_day": "x"]) == .none)
        #expect(RiskExposure.currencies(of: "US30") == ("US30", nil))
        let risk = RiskExposure.risk(entry: 1.1, stopLoss: 1.099, lot: 2, tickSize: 0.00001, tickValue: 1) ?? 0
        #expect(abs(risk - 200) < 1e-6)
        #expect(RiskExposure.risk(entry: 1.1, stopLoss: 0, lot: 2, tickSize: 0.00001, tickValue: 1) == nil)
    }

    @Test func concentrationLimitsParseAndAShardSumsWhatItHolds() {
        #expect(ConcentrationLimits.parseSymbols("100")?.any == 100)
        let parsed = ConcentrationLimits.parseSymbols("EURUSD=200, xauusd=50,*=100")
        #expect(parsed?.perSymbol == ["EURUSD": 200, "XAUUSD": 50] && parsed?.any == 100)
        for bad in ["", "0", "EURUSD=", "EURUSD=-1", "a b=3", "EURUSD=x"] {
            #expect(ConcentrationLimits.parseSymbols(bad) == nil, "\(bad)")
        }
        let limits = ConcentrationLimits(perSymbol: ["EURUSD": 200], anySymbol: 100)
        #expect(limits.limit(symbol: "EURUSD") == 200 && limits.limit(symbol: "GBPUSD") == 100)
        var shard = TradeShardTests.shard()
        _ = TradeShardRiskTests.reserve(&shard, "S1", lot: 0.5, context: TradeShardRiskTests.context())
        _ = TradeShardRiskTests.reserve(&shard, "S2", lot: 0.25, context: TradeShardRiskTests.context())
        let held = shard.heldLots
        #expect(held.bySymbol == ["EURUSD": 0.75] && held.bySignal == ["S1": 0.5, "S2": 0.25])
    }
}
