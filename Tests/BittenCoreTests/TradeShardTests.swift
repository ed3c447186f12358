import Foundation
import Testing

@testable import BittenCore

/// A trade shard, pure: reservations by the tier the shard holds, the fire lifecycle as changes to store,
/// the EA v2.05's answers (close price 0, `close_all` once with ticket 0, `Position not found`), timeouts,
/// and what it forgets.
@Suite("Trade shard: events in, changes out (pure)")
struct TradeShardTests {
    static let user = "user_ts_01"

    static func fire(_ signal: String, user: String = user, deadline: Double = 130) -> FireInFlight {
        FireInFlight(
            id: "", userUUID: user, signalID: signal, symbol: "EURUSD", isBuy: true, stopLoss: 1.099, takeProfit: 1.102,
            lot: 0, tickSize: 0.00001, tickValue: 1, deadline: deadline)
    }

    static func variants(slots: Int = 2) -> [SizingChoice] {
        Tier.allCases.map {
            SizingChoice(key: $0.rawValue + "|", slots: slots, lot: 0.5, fields: ["lot", "0.5", "tier", $0.rawValue])
        }
    }

    static func shard(tier: Tier = .sergeant, override: String = "") -> TradeShard {
        var shard = TradeShard(index: 3)
        shard.save(
            ShardUser(uuid: user, tier: tier, riskOverride: override), fields: ["uuid", user, "tier", tier.rawValue])
        _ = shard.takeChanges()
        return shard
    }

    func reserved(_ shard: inout TradeShard, _ signal: String, user: String = user, slots: Int = 2) throws -> String {
        let outcome = shard.reserve(
            Self.fire(signal, user: user), variants: Self.variants(slots: slots), signalExpiresAt: 500,
            date: "20261205",
            fields: ["kind", "fire"])
        guard case .reserved(let id, _) = outcome else { throw Failure("\(signal): \(outcome)") }
        return id
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    func fill(
        _ id: String, ticket: Int, price: Double = 1.1, user: String = user, balance: Double = 10_000, at: Double = 110
    ) -> FireAnswer {
        FireAnswer(
            fireID: id, success: true, userUUID: user, ticket: ticket, price: price, lot: 0.5,
            message: "Trade executed",
            account: 55501, balance: balance, at: at)
    }

    @Test func reservationsFollowTheTierTheShardHoldsNow() throws {
        var shard = Self.shard()
        let first = try reserved(&shard, "S1")
        #expect(first == "F-20261205-03-000001", "the shard's number is in the id")
        let changes = shard.takeChanges()
        guard case .fireCreated(let fire, let expires, let fields)? = changes.first else {
            Issue.record("\(changes)")
            return
        }
        #expect(fire.id == first && fire.lot == 0.5 && fire.state == .pending && expires == 500)
        #expect(fields == ["lot", "0.5", "tier", "SERGEANT", "kind", "fire"])
        #expect(changes.last == .slots(user: Self.user, used: 1))
        // A repeat is the same fire; the second slot is the last.
        #expect(
            shard.reserve(Self.fire("S1"), variants: Self.variants(), signalExpiresAt: 500, date: "d", fields: [])
                == .duplicate(fireID: first))
        _ = try reserved(&shard, "S2")
        #expect(
            shard.reserve(Self.fire("S3"), variants: Self.variants(), signalExpiresAt: 500, date: "d", fields: [])
                == .noSlot(used: 2, key: "SERGEANT|"))
        // Unknown users, overrides nobody sized for, and sizing errors.
        #expect(
            shard.reserve(
                Self.fire("S1", user: "user_nobody"), variants: Self.variants(), signalExpiresAt: 500, date: "d",
                fields: []) == .noUser)
        shard.save(ShardUser(uuid: Self.user, tier: .general, riskOverride: "2.5"), fields: [])
        #expect(
            shard.reserve(Self.fire("S4"), variants: Self.variants(), signalExpiresAt: 500, date: "d", fields: [])
                == .resize(tier: .general, override: "2.5"))
        let failing = [SizingChoice(key: "GENERAL|2.5", slots: 10, lot: 0, fields: [], error: "balance 0")]
        #expect(
            shard.reserve(Self.fire("S4"), variants: failing, signalExpiresAt: 500, date: "d", fields: [])
                == .sizingFailed("balance 0"))
    }

    @Test func aFillOpensThePositionAndTheChangesSayWhat() throws {
        var shard = Self.shard()
        let id = try reserved(&shard, "S1")
        #expect(shard.sent(id, at: 100, deadline: 130) == .moved(from: .pending))
        _ = shard.takeChanges()
        #expect(shard.apply(fill(id, ticket: 501, price: 1.1), streamID: "1-0") == "ok")
        let changes = shard.takeChanges()
        #expect(
            changes.contains {
                if case .fireMoved(id, .filled, let fields) = $0 { fields.contains("fill_price") } else { false }
            })
        #expect(
            changes.contains {
                if case .positionOpened(let p, "S1", "", nil) = $0 { p.ticket == 501 && p.lot == 0.5 } else { false }
            })
        #expect(changes.contains(.balance(account: 55501, balance: 10_000, closesSince: 0)))
        #expect(changes.contains { if case .event("fire.filled", let e) = $0 { e["ticket"] == "501" } else { false } })
        // The same answer again is a duplicate and changes nothing.
        #expect(shard.apply(fill(id, ticket: 501), streamID: "2-0") == "duplicate")
        #expect(shard.takeChanges().isEmpty)
        // A fill on the wrong side of the stop: dropped, and said so.
        let second = try reserved(&shard, "S2")
        #expect(shard.apply(fill(second, ticket: 502, price: 1.0985), streamID: "3-0") == "ok:sl_dropped")
        #expect(
            shard.takeChanges().contains {
                if case .positionOpened(let p, _, _, let dropped?) = $0 {
                    p.stopLoss == 0 && dropped.requestedStopLoss == 1.099
                } else {
                    false
                }
            })
        #expect(shard.apply(fill("F-none", ticket: 9), streamID: "4-0") == "unknown_fire")
        #expect(shard.takeChanges().contains { if case .orphan("4-0", _) = $0 { true } else { false } })
        #expect(shard.apply(fill(second, ticket: 502, user: "user_other"), streamID: "5-0") == "wrong_user")
    }

    @Test func closesTheWayTheEAV205AnswersThem() throws {
        var shard = Self.shard(tier: .general)
        var ids: [String] = []
        for i in 0..<3 { ids.append(try reserved(&shard, "S\(i)", slots: 3)) }
        for (i, id) in ids.enumerated() { _ = shard.apply(fill(id, ticket: 600 + i), streamID: "\(i)-1") }
        _ = shard.takeChanges()
        // close_ticket: price 0, valued at the quote that came with the answer; the close request is filled.
        #expect(shard.requestClose(ticket: 600, command: "close_ticket", at: 200, deadline: 230) == "ok")
        #expect(shard.requestClose(ticket: 600, command: "close_ticket", at: 201, deadline: 231) == "duplicate:pending")
        shard.closeSent(ticket: 600, at: 201, deadline: 231)
        let quotes = "EURUSD:1.1010:1.1012:own"
        #expect(
            shard.apply(
                CloseAnswer(
                    ticket: 600, success: true, closePrice: 0, message: "Position closed", account: 55501,
                    userUUID: Self.user, commandType: "close_ticket", balance: 10_050, quotes: quotes, at: 210),
                streamID: "9-1") == "ok")
        let changes = shard.takeChanges()
        guard let trade = changes.compactMap({ if case .positionClosed(let t) = $0 { t } else { nil } }).first else {
            Issue.record("not closed: \(changes)")
            return
        }
        // 0.5 lot from 1.1 to 1.101: 50 USD by the price, and the balance says +50 too.
        #expect(
            trade.valuation.profitCents == 5_000 && trade.valuation.profitSource == "balance"
                && trade.reason == "requested")
        #expect(changes.contains { if case .closeRequest(let r, _) = $0 { r.state == .filled } else { false } })
        #expect(
            changes.contains {
                if case .statistics("global_trade_stats", let s) = $0 { s.total == 1 && s.wins == 1 } else { false }
            })
        #expect(shard.book.slotsUsed(Self.user) == 2)
        // close_all: ONE answer with ticket 0 closes every position of that account.
        #expect(
            shard.apply(
                CloseAnswer(
                    ticket: 0, success: true, closePrice: 0, message: "All closed", account: 55501, userUUID: Self.user,
                    commandType: "close_ticket", balance: 10_000, quotes: quotes, at: 220), streamID: "9-2")
                == "ignored")
        #expect(
            shard.apply(
                CloseAnswer(
                    ticket: 0, success: true, closePrice: 0, message: "All closed", account: 55501, userUUID: Self.user,
                    commandType: "close_all", balance: 10_000, quotes: quotes, at: 220), streamID: "9-3") == "ok:2")
        #expect(shard.book.positions.positions.isEmpty && shard.book.slotsUsed(Self.user) == 0)
        // A repeated close answer is a duplicate; one for a ticket never seen is an orphan.
        #expect(
            shard.apply(
                CloseAnswer(
                    ticket: 600, success: true, closePrice: 0, message: "", account: 55501, userUUID: Self.user,
                    commandType: "close_ticket", balance: nil, quotes: "", at: 230), streamID: "9-4") == "duplicate")
        #expect(
            shard.apply(
                CloseAnswer(
                    ticket: 999, success: true, closePrice: 0, message: "", account: 55501, userUUID: Self.user,
                    commandType: "close_ticket", balance: nil, quotes: "", at: 230), streamID: "9-5")
                == "unknown_position")
    }

    @Test func positionNotFoundAndCrossedStopsCloseAtTheMarket() throws {
        var shard = Self.shard()
        let a = try reserved(&shard, "S1")
        let b = try reserved(&shard, "S2")
        _ = shard.apply(fill(a, ticket: 701), streamID: "1-1")
        _ = shard.apply(fill(b, ticket: 702), streamID: "1-2")
        _ = shard.takeChanges()
        #expect(
            shard.apply(
                CloseAnswer(
                    ticket: 701, success: false, closePrice: 0, message: "Position not found", account: 55501,
                    userUUID: Self.user, commandType: "close_ticket", balance: 10_000,
                    quotes: "EURUSD:1.0995:1.0997:any", at: 300), streamID: "2-1") == "ok")
        let closed = shard.takeChanges().compactMap { if case .positionClosed(let t) = $0 { t } else { nil } }
        #expect(closed.map(\.reason) == ["closed_at_broker"] && closed.first?.valuation.closePriceSource == "market")
        #expect(shard.crossed(ticket: 702, level: 1.102, reason: "take_profit", at: 310) == "ok")
        #expect(shard.crossed(ticket: 702, level: 1.102, reason: "take_profit", at: 311) == "duplicate")
        #expect(shard.book.slotsUsed(Self.user) == 0)
        // Any other refusal is only a rejection.
        #expect(
            shard.apply(
                CloseAnswer(
                    ticket: 702, success: false, closePrice: 0, message: "Market closed", account: 55501,
                    userUUID: Self.user, commandType: "close_ticket", balance: nil, quotes: "", at: 320),
                streamID: "2-2") == "rejected")
    }

    @Test func deadlinesTimeOutAndALateFillStillCounts() throws {
        var shard = Self.shard()
        let id = try reserved(&shard, "S1")
        shard.sent(id, at: 100, deadline: 130)
        #expect(shard.expire(at: 129, reason: "late").fires.isEmpty)
        #expect(shard.expire(at: 130, reason: "late").fires == [id])
        #expect(shard.book.slotsUsed(Self.user) == 0)
        #expect(shard.takeChanges().contains { if case .fireMoved(id, .timedOut, _) = $0 { true } else { false } })
        #expect(shard.sent(id, at: 140, deadline: 170) == .invalid(.timedOut), "never sent again")
        #expect(shard.apply(fill(id, ticket: 801, at: 150), streamID: "1-1") == "ok")
        #expect(shard.book.slotsUsed(Self.user) == 1)
        #expect(
            shard.takeChanges().contains {
                if case .fireMoved(id, .filled, let f) = $0 {
                    f.contains("late") && f[f.firstIndex(of: "late")! + 1] == "1"
                } else {
                    false
                }
            })
    }

    @Test func deadlinesAreKeptBySecondAndAMovedDeadlineCounts() throws {
        var shard = Self.shard(tier: .general)
        var ids: [String] = []
        for i in 0..<4 { ids.append(try reserved(&shard, "S\(i)", slots: 10)) }  // due at 130 (reserved)
        shard.sent(ids[0], at: 100, deadline: 140.5)
        shard.sent(ids[1], at: 100, deadline: 140.7)
        shard.sent(ids[2], at: 100, deadline: 125)
        #expect(shard.expire(at: 124.9, reason: "x").fires.isEmpty)
        #expect(shard.expire(at: 125, reason: "x").fires == [ids[2]])
        #expect(
            shard.expire(at: 130, reason: "x").fires == [ids[3]],
            "the first deadline of a fire sent later no longer counts")
        #expect(shard.expire(at: 140.6, reason: "x").fires == [ids[0]], "within one second, only what is due")
        #expect(shard.expire(at: 141, reason: "x").fires == [ids[1]])
        #expect(shard.expire(at: 500, reason: "x").fires.isEmpty)
    }

    @Test func eventsAreCompactJSON() throws {
        let fields = ["a": "x\"y\\z\n", "b": "plain", "c": "é €", "d": "\u{01}"]
        let text = JSONValue.serialize(fields)
        #expect(text.hasPrefix(#"{"a":"x\"y\\z\n","b":"plain","#))
        let parsed = try JSONParser.parseObject(Array(text.utf8))
        for (key, value) in fields { #expect(parsed[key] == .string(value), "\(key)") }
        // Arrays of strings (the confirmation spool's lines) read back as written.
        let strings = ["writer", "1764", #"{"payload":"x\"y"}"#, "é €", "\u{01}\n", ""]
        let array = try JSONSerialization.jsonObject(with: Data(JSONValue.serialize(strings).utf8)) as? [String]
        #expect(array == strings)
    }

    @Test func writtenEventsAreTheTextTheStoreWouldWriteEachWrittenOnce() throws {
        var shard = Self.shard()
        let id = try reserved(&shard, "S1")
        _ = shard.sent(id, at: 100, deadline: 130)
        _ = shard.takeChanges()
        #expect(shard.apply(fill(id, ticket: 501), streamID: "1-0") == "ok")
        // What the events are before they are written, to compare with the text after.
        var unwritten = shard
        let events = unwritten.takeChanges().compactMap { change -> String? in
            guard case .event(let name, let fields) = change else { return nil }
            return JSONValue.serialize(fields, setting: "event", to: name)
        }
        #expect(events.count == 1 && events[0].contains(#""event":"fire.filled""#), "\(events)")
        shard.writeEvents()
        // A later change is looked at by the next call; those already written are left as they are.
        shard.note("n", on: "notes")
        shard.writeEvents()
        let written = shard.takeChanges()
        #expect(!written.contains { if case .event = $0 { true } else { false } })
        #expect(written.compactMap { if case .eventText(let text) = $0 { text } else { nil } } == events)
        #expect(written.contains(.note(list: "notes", value: "n")))
        // After a take, the next changes are written from the start again.
        let second = try reserved(&shard, "S2")
        _ = shard.sendFailed(second, reason: "not sent", at: 105)
        shard.writeEvents()
        let after = shard.takeChanges()
        #expect(after.contains { if case .eventText(let text) = $0 { text.contains("fire.rejected") } else { false } })
        #expect(!after.contains { if case .event = $0 { true } else { false } })
    }

    @Test func aFailedSendFreesTheMarkerAndForgettingBoundsMemory() throws {
        var shard = Self.shard()
        let id = try reserved(&shard, "S1")
        shard.sendFailed(id, reason: "not connected", at: 100)
        #expect(shard.book.slotsUsed(Self.user) == 0)
        #expect(shard.takeChanges().contains(.markerForgotten(signalID: "S1", user: Self.user)))
        let again = try reserved(&shard, "S1")
        #expect(again != id, "the user may fire the signal again")
        _ = shard.apply(fill(again, ticket: 901, at: 120), streamID: "1-1")
        _ = shard.takeChanges()
        // Settled fires leave memory after the retention; markers once their signal is long expired.
        shard.prune(settledBefore: 110, signalsExpiredBefore: 0)
        #expect(shard.book.fires[id] == nil && shard.book.fires[again] != nil)
        shard.prune(settledBefore: 121, signalsExpiredBefore: 501)
        #expect(shard.book.fires.isEmpty)
        #expect(shard.book.firedBy(signalID: "S1", user: Self.user) == nil)
        let forgotten = shard.takeChanges()
        #expect(
            forgotten.contains(.fireForgotten(id: again))
                && forgotten.contains(.markerForgotten(signalID: "S1", user: Self.user)))
        // The open position is not forgotten: it still holds its slot.
        #expect(shard.book.positions.positions[901] != nil && shard.book.slotsUsed(Self.user) == 1)
    }
}
