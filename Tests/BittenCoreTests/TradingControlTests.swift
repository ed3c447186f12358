import Foundation
import Testing

@testable import BittenCore

/// Trading states, pure: which is stricter, when a limit's close-only lapses, what each refuses, how they are
/// stored, and the shard refusing a restricted user's fire while keeping a repeat idempotent.
@Suite("Trading states (pure)")
struct TradingControlTests {
    @Test func theStricterStateWinsAndEachAllowsWhatItSays() {
        #expect(TradingState.active.stricter(.closeOnly) == .closeOnly)
        #expect(TradingState.halted.stricter(.closeOnly) == .halted)
        #expect(TradingState.closeOnly.stricter(.active) == .closeOnly)
        #expect(TradingState.active.allowsFire && TradingState.active.allowsClose)
        #expect(!TradingState.closeOnly.allowsFire && TradingState.closeOnly.allowsClose)
        #expect(!TradingState.halted.allowsFire && !TradingState.halted.allowsClose)
    }

    @Test func refusalsNameTheStateWhoAndWhyAndLapseAtUntil() throws {
        let halted = TradingControl(state: .halted, reason: "broker outage", by: "alice", at: 100)
        let fire = try #require(halted.fireRefusal(at: 200, subject: "trading"))
        #expect(fire.code == .tradingHalted)
        #expect(fire.message.contains("alice") && fire.message.contains("broker outage"), "\(fire.message)")
        #expect(halted.closeRefusal(at: 200, subject: "trading")?.code == .tradingHalted)

        let limit = TradingControl(state: .closeOnly, reason: "daily loss", by: "risk", at: 100, until: 1_000)
        #expect(limit.fireRefusal(at: 999.9, subject: "user u")?.code == .closeOnly)
        #expect(limit.closeRefusal(at: 500, subject: "user u") == nil, "close-only lets closes through")
        #expect(limit.fireRefusal(at: 1_000, subject: "user u") == nil, "lapsed at its until")
        #expect(limit.effective(at: 1_000) == .active && limit.effective(at: 999) == .closeOnly)
        #expect(TradingControl.active.fireRefusal(at: 0, subject: "x") == nil)
    }

    @Test func storedFormsRoundTrip() throws {
        let user = TradingControl(
            state: .closeOnly, reason: "r, with comma", by: "risk:daily_loss", at: 12.5, until: 99)
        var hash: [String: String] = [:]
        for i in stride(from: 0, to: user.userFields.count, by: 2) { hash[user.userFields[i]] = user.userFields[i + 1] }
        #expect(TradingControl(userHash: hash) == user)
        #expect(TradingControl(userHash: [:]) == .active, "a user never set is active")
        #expect(TradingControl(userHash: ["trading_state": "sideways"]).state == .active)

        let system = TradingControl(state: .halted, reason: "x", by: "y", at: 3, version: 0, closeAll: true)
        var systemHash = ["version": "7"]
        for i in stride(from: 0, to: system.systemFields.count, by: 2) {
            systemHash[system.systemFields[i]] = system.systemFields[i + 1]
        }
        var expected = system
        expected.version = 7
        #expect(TradingControl(systemHash: systemHash) == expected)
        #expect(TradingControl(systemHash: [:]) == .active)
        #expect(TradingControl(systemHash: ["state": "halted"]) == nil, "no version: not a state")
        #expect(TradingControl(systemHash: ["state": "paused", "version": "1"]) == nil)
    }

    @Test func theShardRefusesARestrictedUserButARepeatStaysIdempotent() throws {
        var shard = TradeShardTests.shard()
        let uuid = TradeShardTests.user
        let first = shard.reserve(
            TradeShardTests.fire("S1"), variants: TradeShardTests.variants(), signalExpiresAt: 500, date: "20261205",
            fields: [], at: 100)
        guard case .reserved(let id, _) = first else { throw TradeShardTests.Failure("\(first)") }
        let set = shard.setTrading(uuid, TradingControl(state: .closeOnly, reason: "limit", by: "risk", until: 300))
        #expect(set)
        let changes = shard.takeChanges()
        #expect(changes.contains { if case .user(let u, _) = $0 { u.trading.state == .closeOnly } else { false } })
        #expect(changes.contains { if case .event("user.trading", let e) = $0 { e["until"] == "300" } else { false } })
        let unknown = shard.setTrading("nobody", .active)
        #expect(!unknown)
        // A repeat of the earlier fire is still that fire; a new one is refused with the state's code.
        let repeatFire = shard.reserve(
            TradeShardTests.fire("S1"), variants: TradeShardTests.variants(), signalExpiresAt: 500, date: "20261205",
            fields: [], at: 200)
        #expect(repeatFire == .duplicate(fireID: id))
        let refused = shard.reserve(
            TradeShardTests.fire("S2"), variants: TradeShardTests.variants(), signalExpiresAt: 500, date: "20261205",
            fields: [], at: 200)
        guard case .refused(let refusal) = refused else { throw TradeShardTests.Failure("\(refused)") }
        #expect(refusal.code == .closeOnly)
        // At its until, the close-only has lapsed.
        let later = shard.reserve(
            TradeShardTests.fire("S2"), variants: TradeShardTests.variants(), signalExpiresAt: 500, date: "20261205",
            fields: [], at: 300)
        guard case .reserved = later else { throw TradeShardTests.Failure("\(later)") }
        // Saving the user (a tier change) keeps the trading state.
        shard.setTrading(uuid, TradingControl(state: .halted, by: "ops"))
        shard.save(ShardUser(uuid: uuid, tier: .captain, riskOverride: ""), fields: [])
        #expect(shard.users[uuid]?.trading.state == .halted && shard.users[uuid]?.tier == .captain)
    }
}
