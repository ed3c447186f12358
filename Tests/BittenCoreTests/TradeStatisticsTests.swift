import Testing

@testable import BittenCore

/// The statistics rules, pure: the 20-trade table computed by hand, streak and edge rules, the stored form.
@Suite("Trade statistics (pure)")
struct TradeStatisticsTests {
    /// The same twenty trades as the ledger test against Redis, in USD.
    static let profits: [Int] = [25, -10, 40, 15, -30, -20, -5, 60, 10, -15, 35, -25, 50, 5, -40, 20, 30, -10, 45, -5]

    @Test func twentyTradesGiveTheHandComputedStatistics() {
        var stats = TradeStatistics()
        for (index, profit) in Self.profits.enumerated() {
            stats.record(profitCents: profit * 100, at: String(2000 + index))
        }
        // By hand: 11 wins (335 USD), 9 losses (160 USD); W L WW LLL WW L W L WW L WW L W L.
        #expect(stats.total == 20 && stats.wins == 11 && stats.losses == 9 && stats.breakeven == 0)
        #expect(abs(stats.winRate - 55) < 1e-9)
        #expect(stats.grossProfitCents == 33_500 && stats.grossLossCents == 16_000 && stats.netCents == 17_500)
        #expect(abs((stats.profitFactor ?? 0) - 2.09375) < 1e-12)
        #expect(stats.largestWinCents == 6_000 && stats.largestLossCents == 4_000)
        #expect(stats.bestStreak == 2 && stats.worstStreak == 3 && stats.currentStreak == -1)
        let fields = Dictionary(stats.redisFields, uniquingKeysWith: { a, _ in a })
        #expect(fields["average_win"] == "30.45" && fields["average_loss"] == "17.78")  // 335 / 11, 160 / 9
        #expect(fields["profit_factor"] == "2.0938" && fields["win_rate"] == "55.00" && fields["net"] == "175.00")
        #expect(fields["last_trade_at"] == "2019")
    }

    @Test func streaksBreakevenAndTheProfitFactorsEdges() {
        var stats = TradeStatistics()
        #expect(stats.profitFactor == 0 && stats.winRate == 0)
        #expect(Dictionary(stats.redisFields, uniquingKeysWith: { a, _ in a })["profit_factor"] == "0")
        for cents in [100, 200, 300] { stats.record(profitCents: cents) }
        #expect(stats.currentStreak == 3 && stats.bestStreak == 3 && stats.profitFactor == nil)
        #expect(Dictionary(stats.redisFields, uniquingKeysWith: { a, _ in a })["profit_factor"] == "")
        stats.record(profitCents: 0)  // breakeven: counted, resets the streak, neither win nor loss
        #expect(stats.total == 4 && stats.breakeven == 1 && stats.currentStreak == 0 && stats.bestStreak == 3)
        for _ in 0..<4 { stats.record(profitCents: -50) }
        #expect(stats.currentStreak == -4 && stats.worstStreak == 4 && stats.profitFactor == 3)
        stats.record(profitCents: 1)
        #expect(stats.currentStreak == 1 && stats.bestStreak == 3)
        #expect(
            TradeStatistics.cents(10.005) == 1001 && TradeStatistics.cents(-10.005) == -1001
                && TradeStatistics.cents(-0.004) == 0)
    }

    /// The counters survive the stored form; a damaged counter is refused, not read as 0.
    @Test func theStoredHashReadsBack() {
        var stats = TradeStatistics()
        for cents in [1250, -300, 0, 990] { stats.record(profitCents: cents, at: "1700000000") }
        let hash = Dictionary(stats.redisFields, uniquingKeysWith: { a, _ in a })
        #expect(TradeStatistics(redisHash: hash) == stats)
        var damaged = hash
        damaged["wins"] = "two"
        #expect(TradeStatistics(redisHash: damaged) == nil)
        #expect(TradeStatistics(redisHash: [:]) == TradeStatistics())
    }
}
