import Foundation
import Testing

@testable import BittenCore

/// The risk limits inside the trade shard: a reservation is checked against the user's open trades and fires in
/// flight and counts in the day; a losing close counts in the streak; the sweep puts a user whose loss crossed the
/// daily limit in close-only until the next day.
@Suite("Trade shard: risk limits (pure)")
struct TradeShardRiskTests {
    static let at = 1_800_000_000.0
    static let user = TradeShardTests.user

    static func context(balance: Double = 10_000, bid: Double = 1.1, defaults: [Tier: RiskLimits] = [:])
        -> RiskContext
    {
        RiskContext(defaults: defaults, balance: balance, quote: { _ in (bid, bid + 0.0001) })
    }

    /// A EURUSD BUY at 1.1 with its stop 0.001 lower: 100 per lot at the stop (tick 0.00001, tick value 1).
    static func fire(_ signal: String, lot: Double = 1) -> FireInFlight {
        var fire = FireInFlight(
            id: "", userUUID: user, signalID: signal, symbol: "EURUSD", isBuy: true, stopLoss: 1.099, takeProfit: 1.102,
            lot: 0, tickSize: 0.00001, tickValue: 1, deadline: at + 30)
        fire.entry = 1.1
        return fire
    }

    static func reserve(_ shard: inout TradeShard, _ signal: String, lot: Double = 1, context: RiskContext)
        -> ShardReservation
    {
        let variants = Tier.allCases.map {
            SizingChoice(key: $0.rawValue + "|", slots: 10, lot: lot, fields: ["lot", String(lot)])
        }
        return shard.reserve(
            fire(signal), variants: variants, signalExpiresAt: at + 500, date: "20270115", fields: [], at: at,
            risk: context)
    }

    @Test func reservationsCountFiresInFlightAndTheDay() throws {
        var shard = TradeShardTests.shard(tier: .sergeant)
        let defaults: [Tier: RiskLimits] = [.sergeant: RiskLimits(openRiskPercent: 2.5, tradesPerDay: 3)]
        let context = Self.context(defaults: defaults)
        // 1 lot risks 100 = 1 % each: two fit in 2.5 %, the third does not (the first two are only in flight).
        guard case .reserved = Self.reserve(&shard, "S1", context: context) else { throw TradeShardTests.Failure("S1") }
        guard case .reserved = Self.reserve(&shard, "S2", context: context) else { throw TradeShardTests.Failure("S2") }
        let third = Self.reserve(&shard, "S3", context: context)
        guard case .refused(let refusal) = third else { throw TradeShardTests.Failure("\(third)") }
        #expect(refusal.code == .openRiskLimit && refusal.message.contains("3 %"), "\(refusal.message)")
        #expect(shard.users[Self.user]?.risk.trades == 2 && shard.users[Self.user]?.risk.startBalance == 10_000)
        let changes = shard.takeChanges()
        #expect(changes.contains { if case .userRisk(_, let figures) = $0 { figures.trades == 2 } else { false } })
        // A smaller trade still fits; then the day's third trade is the last.
        guard case .reserved = Self.reserve(&shard, "S4", lot: 0.4, context: context) else {
            throw TradeShardTests.Failure("S4")
        }
        let fourth = Self.reserve(&shard, "S5", lot: 0.01, context: context)
        guard case .refused(let perDay) = fourth else { throw TradeShardTests.Failure("\(fourth)") }
        #expect(perDay.code == .tradesPerDayLimit)
        // The user's own value replaces the tier's.
        shard.save(
            ShardUser(uuid: Self.user, tier: .sergeant, riskOverride: "", limits: RiskLimits(tradesPerDay: 5)),
            fields: [])
        guard case .reserved = Self.reserve(&shard, "S5", lot: 0.01, context: context) else {
            throw TradeShardTests.Failure("S5 with the user's own limit")
        }
        #expect(shard.users[Self.user]?.risk.trades == 4, "saving the user kept the day's count")
        // No limits at all: nothing is counted or checked.
        var free = TradeShardTests.shard()
        guard case .reserved = Self.reserve(&free, "S1", lot: 100, context: Self.context()) else {
            throw TradeShardTests.Failure("free")
        }
        #expect(free.users[Self.user]?.risk == RiskDay())
    }

    @Test func aLosingCloseCountsInTheStreakAndTheSweepFlipsACrossedDailyLoss() throws {
        var shard = TradeShardTests.shard(tier: .sergeant)
        let defaults: [Tier: RiskLimits] = [
            .sergeant: RiskLimits(dailyLossPercent: 2, lossStreak: 1, cooldownMinutes: 5)
        ]
        guard case .reserved(let id, _) = Self.reserve(&shard, "S1", context: Self.context(defaults: defaults)) else {
            throw TradeShardTests.Failure("S1")
        }
        _ = shard.apply(
            FireAnswer(
                fireID: id, success: true, userUUID: Self.user, ticket: 77, price: 1.1, lot: 1, message: "done",
                account: 1, balance: 10_000, at: Self.at + 1), streamID: "1-0")
        _ = shard.takeChanges()
        // The market at 1.0985 (1.5 % down): within 2 %.
        var flipped = shard.sweepLimits(at: Self.at + 2, defaults: defaults) { _ in
            Self.context(bid: 1.0985, defaults: defaults)
        }
        #expect(flipped.isEmpty)
        // At 1.0979 (2.1 %): close-only until midnight, by the limit, with an event.
        flipped = shard.sweepLimits(at: Self.at + 3, defaults: defaults) { _ in
            Self.context(bid: 1.0979, defaults: defaults)
        }
        #expect(flipped.map(\.user) == [Self.user] && flipped.first?.refusal.code == .dailyLossLimit)
        let trading = try #require(shard.users[Self.user]?.trading)
        #expect(trading.state == .closeOnly && trading.by == "risk:daily_loss_limit")
        #expect(trading.until == RiskDay.nextDay(after: Self.at + 3))
        let changes = shard.takeChanges()
        #expect(changes.contains { if case .event("risk.limit_crossed", _) = $0 { true } else { false } })
        // Not flipped twice.
        #expect(shard.sweepLimits(at: Self.at + 4, defaults: defaults) { _ in Self.context(bid: 1.09) }.isEmpty)
        // The stop is hit: a loss, counted in the streak.
        _ = shard.crossed(ticket: 77, level: 1.099, reason: "stop_loss", at: Self.at + 5)
        #expect(shard.users[Self.user]?.risk.lossStreak == 1 && shard.users[Self.user]?.risk.lastLossAt == Self.at + 5)
    }
}
