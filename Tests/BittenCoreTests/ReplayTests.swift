import Foundation
import Testing

@testable import BittenCore

/// Replaying recorded fires under another configuration: a tighter limit refuses the trades past it, a smaller risk
/// resizes them and scales their P&L, a losing streak cools down the next one.
@Suite("Replay (pure)")
struct ReplayTests {
    static let day = 1_800_000_000.0

    /// A EURUSD BUY of 0.5 lot risking 100 at its stop (0.002 × 100 000 × 0.5), closed an hour later.
    static func fire(_ n: Int, at: Double, profit: Double?, user: String = "u1", filled: Bool = true) -> ReplayFire {
        ReplayFire(
            fireID: "F-\(n)", signalID: "S\(n)", userUUID: user, symbol: "EURUSD", isBuy: true, at: at,
            balance: 10_000, entry: 1.1, stopLoss: 1.098, tickValue: 1, tier: .recruit, riskOverride: nil,
            citadelMultiplier: 1, lot: 0.5, filled: filled, closedAt: profit == nil ? nil : at + 3_600, profit: profit)
    }

    static func configuration(base: Double = 1, limits: [Tier: RiskLimits] = [:]) -> Replay.Configuration {
        var tiers = TierTable.standard
        tiers.rules[.recruit] = TierRule(slots: 5, maxRiskPercent: 2, riskMultiplier: 1)
        return .init(
            sizer: PositionSizer(baseRiskPercent: base), tiers: tiers, instruments: .standard, limits: limits)
    }

    static let recorded = [
        fire(1, at: day, profit: 50), fire(2, at: day + 600, profit: -100), fire(3, at: day + 1_200, profit: 80),
    ]

    @Test func theSameConfigurationChangesNothing() {
        let outcomes = Replay.run(Self.recorded, with: Self.configuration())
        #expect(outcomes.map(\.change) == ["unchanged", "unchanged", "unchanged"], "\(outcomes.map(\.lot))")
        #expect(outcomes.map(\.profit) == [50, -100, 80])
    }

    @Test func aTighterTradesPerDayRefusesTheThird() {
        let outcomes = Replay.run(
            Self.recorded, with: Self.configuration(limits: [.recruit: RiskLimits(tradesPerDay: 2)]))
        #expect(outcomes.map(\.change) == ["unchanged", "unchanged", "refused"])
        #expect(outcomes[2].refusal?.code == .tradesPerDayLimit && outcomes[2].profit == 0)
        // Another day starts at zero.
        let nextDay = Self.recorded + [Self.fire(4, at: Self.day + 86_400, profit: 10)]
        let later = Replay.run(nextDay, with: Self.configuration(limits: [.recruit: RiskLimits(tradesPerDay: 2)]))
        #expect(later.map(\.change) == ["unchanged", "unchanged", "refused", "unchanged"])
    }

    @Test func aSmallerRiskResizesAndScalesTheProfit() {
        let outcomes = Replay.run(Self.recorded, with: Self.configuration(base: 0.5))
        #expect(
            outcomes.map(\.lot) == [0.25, 0.25, 0.25] && outcomes.map(\.change) == ["resized", "resized", "resized"])
        #expect(outcomes.map(\.profit) == [25, -50, 40])
    }

    @Test func aLosingStreakCoolsTheNextFireDownAndOpenRiskCountsWhatIsKept() {
        let losses = [
            Self.fire(1, at: Self.day, profit: -100), Self.fire(2, at: Self.day + 60, profit: -100),
            Self.fire(3, at: Self.day + 3_700, profit: 10), Self.fire(4, at: Self.day + 3_800, profit: 10),
        ]
        // Fire 1 closes at +3600, fire 2 at +3660: at +3700 two losses in a row, 40 s ago.
        let cooled = Replay.run(
            losses, with: Self.configuration(limits: [.recruit: RiskLimits(lossStreak: 2, cooldownMinutes: 5)]))
        #expect(cooled.map(\.change) == ["unchanged", "unchanged", "refused", "refused"])
        #expect(cooled[2].refusal?.code == .lossStreakCooldown)
        // Open risk 1.5 %: fire 2 (while fire 1 is open) would make 2 %.
        let open = Replay.run(
            losses, with: Self.configuration(limits: [.recruit: RiskLimits(openRiskPercent: 1.5)]))
        #expect(open.map(\.change) == ["unchanged", "refused", "unchanged", "refused"])
        #expect(open[1].refusal?.code == .openRiskLimit)
    }
}
