import BittenCore
import Testing

@testable import BittenServices

/// What one commit writes, command by command (no Redis: the commands as built).
@Suite("A shard commit's commands")
struct ShardCommitCommandsTests {
    static let keys = ShardKeys(shard: 3)

    static func commands(_ changes: [TradeChange]) -> [[String]] {
        ShardStore.commands(for: changes, keys: keys, sequence: 7, lastApplied: nil)
    }

    /// The HSETs of a user's hash, in order.
    static func userWrites(_ commands: [[String]], _ uuid: String) -> [[String]] {
        commands.filter { $0.count > 1 && $0[0] == "HSET" && $0[1] == keys.user(uuid) }
    }

    static func field(_ command: [String], _ name: String) -> String? {
        stride(from: 2, to: command.count - 1, by: 2).first { command[$0] == name }.map { command[$0 + 1] }
    }

    /// A user's risk figures change at every close; a commit writes them once, the latest, after the user's own
    /// record (which carries the figures it had then).
    @Test func aUsersRiskFiguresAreWrittenOncePerCommitTheLatest() {
        let a = "user_cmd_a"
        let b = "user_cmd_b"
        let writes = Self.commands([
            .userRisk(uuid: a, RiskDay(day: "20261206", trades: 1)),
            .userRisk(uuid: b, RiskDay(day: "20261206", trades: 5)),
            .userRisk(uuid: a, RiskDay(day: "20261206", trades: 2, lossStreak: 1)),
            .userRisk(uuid: a, RiskDay(day: "20261206", trades: 3, lossStreak: 2)),
        ])
        let ofA = Self.userWrites(writes, a)
        #expect(ofA.count == 1)
        #expect(Self.field(ofA[0], "risk_trades") == "3" && Self.field(ofA[0], "risk_loss_streak") == "2")
        #expect(Self.userWrites(writes, b).count == 1)

        // The user's record after the figures carries them: nothing more to write.
        var user = ShardUser(uuid: a, tier: .recruit, riskOverride: "")
        user.risk = RiskDay(day: "20261206", trades: 4)
        let saved = Self.userWrites(
            Self.commands([.userRisk(uuid: a, RiskDay(day: "20261206", trades: 3)), .user(user, fields: [])]), a)
        #expect(saved.count == 1 && Self.field(saved[0], "risk_trades") == "4")

        // Figures after the record win, written after it; and once, though listed before the record as well.
        let later = Self.userWrites(
            Self.commands([
                .userRisk(uuid: a, RiskDay(day: "20261206", trades: 3)), .user(user, fields: []),
                .userRisk(uuid: a, RiskDay(day: "20261206", trades: 5)),
            ]), a)
        #expect(later.count == 2 && Self.field(later[1], "risk_trades") == "5")
    }

    /// A statistics record changed by many closes of a commit is written once, under its shard's key, and listed
    /// once in the shard's index.
    @Test func statisticsAreWrittenOncePerRecordUnderTheShardsKey() {
        var first = TradeStatistics()
        first.record(profitCents: 100)
        var second = first
        second.record(profitCents: -50)
        let writes = Self.commands([
            .statistics(key: "global_trade_stats", first), .statistics(key: "symbol_stats:EURUSD", first),
            .statistics(key: "global_trade_stats", second),
        ])
        let global = writes.filter { $0[0] == "HSET" && $0[1] == "global_trade_stats:{t3}" }
        #expect(global.count == 1)
        #expect(TradeStatistics(redisHash: Self.hash(global[0])) == second)
        #expect(writes.contains { $0[0] == "HSET" && $0[1] == "symbol_stats:{t3}:EURUSD" })
        let index = writes.filter { $0[0] == "SADD" && $0[1] == Self.keys.statisticsIndex }
        #expect(
            index.count == 1 && Set(index[0].dropFirst(2)) == ["global_trade_stats:{t3}", "symbol_stats:{t3}:EURUSD"])
    }

    static func hash(_ command: [String]) -> [String: String] {
        var hash: [String: String] = [:]
        for i in stride(from: 2, to: command.count - 1, by: 2) { hash[command[i]] = command[i + 1] }
        return hash
    }

    /// A commit's events go out in one PUBLISH, one JSON object per line, each with its name as `event` (a field of
    /// that name in the event is replaced by it).
    @Test func eventsCarryTheirName() throws {
        let writes = Self.commands([
            .event("fire.filled", ["fire_id": "F-1", "event": "stale"]), .event("position.closed", ["ticket": "9"]),
        ])
        let publish = try #require(writes.first { $0[0] == "PUBLISH" })
        let lines = publish[2].split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let first = try JSONParser.parseObject(Array(lines[0].utf8))
        #expect(first["event"] == .string("fire.filled") && first["fire_id"] == .string("F-1") && first.count == 2)
        #expect(lines[1] == JSONValue.serialize(["ticket": "9", "event": "position.closed"]))
    }

    /// Events written before the commit (`TradeShard.writeEvents()`) go into the same PUBLISH, in their order among
    /// the others, as they were written.
    @Test func writtenEventsGoOutAsWritten() throws {
        let written = JSONValue.serialize(["ticket": "7", "event": "position.closed"])
        let writes = Self.commands([
            .event("fire.filled", ["fire_id": "F-1"]), .eventText(written), .event("fire.sent", ["fire_id": "F-2"]),
        ])
        let publish = try #require(writes.first { $0[0] == "PUBLISH" })
        #expect(writes.filter { $0[0] == "PUBLISH" }.count == 1)
        #expect(
            publish[2].split(separator: "\n").map(String.init) == [
                JSONValue.serialize(["fire_id": "F-1", "event": "fire.filled"]), written,
                JSONValue.serialize(["fire_id": "F-2", "event": "fire.sent"]),
            ])
    }

    /// Closes of one commit on two days (server time) go to each day's list, each list once with its lifetime.
    @Test func closesGoToTheListOfTheirDay() {
        var shard = TradeShard(index: 3)
        let user = "user_cmd_day"
        shard.save(ShardUser(uuid: user, tier: .commander, riskOverride: ""), fields: ["uuid", user])
        let variants = Tier.allCases.map {
            SizingChoice(key: $0.rawValue + "|", slots: 5, lot: 0.5, fields: ["lot", "0.5"])
        }
        // 2026-12-05 23:59:00 and 2026-12-06 00:01:00 UTC.
        let times = [1_796_515_140.0, 1_796_515_260.0, 1_796_515_261.0]
        for (i, at) in times.enumerated() {
            let fire = FireInFlight(
                id: "", userUUID: user, signalID: "SIG_DAY_\(i)", symbol: "EURUSD", isBuy: true, stopLoss: 1.099,
                takeProfit: 1.102, lot: 0, tickSize: 0.00001, tickValue: 1, deadline: at + 30)
            let outcome = shard.reserve(
                fire, variants: variants, signalExpiresAt: at + 500, date: "20261205", fields: [])
            guard case .reserved(let id, _) = outcome else {
                Issue.record("\(outcome)")
                return
            }
            _ = shard.apply(
                FireAnswer(
                    fireID: id, success: true, userUUID: user, ticket: 900 + i, price: 1.1, lot: 0.5,
                    message: "Trade executed", account: 55501, balance: 10_000, at: at - 10), streamID: "1-\(i)")
        }
        _ = shard.takeChanges()
        for (i, at) in times.enumerated() {
            #expect(shard.crossed(ticket: 900 + i, level: 1.102, reason: "take_profit", at: at) == "ok")
        }
        let writes = Self.commands(shard.takeChanges())
        let pushes = writes.filter { $0[0] == "LPUSH" && $0[1].hasPrefix("trades:day:") }
        #expect(pushes.map { $0[1] } == [Self.keys.trades(day: "2026-12-05"), Self.keys.trades(day: "2026-12-06")])
        #expect(pushes.map { Array($0.dropFirst(2)) } == [["900"], ["901", "902"]])
        let expiring = writes.filter { $0[0] == "EXPIRE" && $0[1].hasPrefix("trades:day:") }.map { $0[1] }
        #expect(Set(expiring) == Set(pushes.map { $0[1] }) && expiring.count == 2)
    }
}
