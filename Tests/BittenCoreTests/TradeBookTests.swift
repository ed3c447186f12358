import Testing

@testable import BittenCore

/// The fire lifecycle and slots, pure: reservation, the moves `FireState` allows, the EA's answers, late
/// answers after a timeout, dropped stops, and the slot given back when the position closes.
@Suite("Trade book: fires and slots (pure)")
struct TradeBookTests {
    static func fire(
        _ signal: String, user: String = "user_tb_01", sl: Double = 1.099, tp: Double = 1.102, buy: Bool = true
    ) -> FireInFlight {
        FireInFlight(
            id: "", userUUID: user, signalID: signal, symbol: "EURUSD", isBuy: buy, stopLoss: sl, takeProfit: tp,
            lot: 0.5, tickSize: 0.00001, tickValue: 1)
    }

    @Test func slotsBoundTheFiresAndARepeatIsTheSameFire() {
        var book = TradeBook()
        #expect(book.reserve(Self.fire("S1"), slots: 2, date: "20261205") == .reserved("F-20261205-000001"))
        #expect(book.reserve(Self.fire("S2"), slots: 2, date: "20261205") == .reserved("F-20261205-000002"))
        #expect(book.reserve(Self.fire("S3"), slots: 2, date: "20261205") == .noSlot(used: 2))
        #expect(book.reserve(Self.fire("S1"), slots: 2, date: "20261205") == .duplicate("F-20261205-000001"))
        // Another user has slots of their own.
        #expect(
            book.reserve(Self.fire("S3", user: "user_tb_02"), slots: 1, date: "20261205")
                == .reserved("F-20261205-000003"))
        #expect(book.slotsUsed("user_tb_01") == 2 && book.slotsUsed("user_tb_02") == 1)
    }

    @Test func aFilledFireHoldsItsSlotUntilThePositionCloses() {
        var book = TradeBook()
        guard case .reserved(let id) = book.reserve(Self.fire("S1"), slots: 1, date: "d") else {
            Issue.record("not reserved")
            return
        }
        #expect(book.move(id, to: .sent, deadline: 30) == .moved(from: .pending))
        #expect(book.move(id, to: .sent) == .same)
        let (outcome, actions) = book.answered(
            id, success: true, userUUID: "user_tb_01", ticket: 501, price: 1.1, lot: 0.5,
            account: 55501, balance: 10_000, at: 100)
        #expect(outcome == .filled(stopDropped: false, targetDropped: false))
        #expect(actions == [.balance(account: 55501, balance: 10_000, closesSince: 0)])
        #expect(book.positions.positions[501]?.stopLoss == 1.099 && book.slotsUsed("user_tb_01") == 1)
        // A repeated answer changes nothing; a filled fire moves no more.
        #expect(
            book.answered(
                id, success: true, userUUID: "user_tb_01", ticket: 501, price: 1.1, lot: 0.5, account: 55501,
                balance: nil, at: 101
            ).0 == .duplicate(id))
        #expect(book.move(id, to: .timedOut) == .invalid(.filled))
        // Closed: the slot is free again.
        let closed = book.close {
            $0.closeAnswered(
                ticket: 501, userUUID: "user_tb_01", closePrice: 0, balance: 10_010,
                quotes: "EURUSD:1.1002:1.1002:own", at: 200)
        }
        #expect(closed.contains { if case .closed = $0 { true } else { false } })
        #expect(book.slotsUsed("user_tb_01") == 0)
    }

    @Test func aTimeoutGivesTheSlotBackAndALateFillTakesItAgain() {
        var book = TradeBook()
        guard case .reserved(let id) = book.reserve(Self.fire("S1"), slots: 1, date: "d") else {
            Issue.record("not reserved")
            return
        }
        _ = book.move(id, to: .sent)
        #expect(book.move(id, to: .timedOut) == .moved(from: .sent))
        #expect(book.slotsUsed("user_tb_01") == 0)
        #expect(book.move(id, to: .sent) == .invalid(.timedOut), "never sent again")
        let (late, _) = book.answered(
            id, success: true, userUUID: "user_tb_01", ticket: 7, price: 1.1, lot: 0.5, account: 1,
            balance: nil, at: 50)
        #expect(late == .filled(stopDropped: false, targetDropped: false) && book.slotsUsed("user_tb_01") == 1)
    }

    @Test func refusalsStrangersAndDroppedStops() {
        var book = TradeBook()
        guard case .reserved(let first) = book.reserve(Self.fire("S1"), slots: 3, date: "d"),
            case .reserved(let second) = book.reserve(Self.fire("S2", sl: 1.1005, tp: 1.0995), slots: 3, date: "d"),
            case .reserved(let third) = book.reserve(Self.fire("S3", sl: 1.0995, buy: false), slots: 3, date: "d")
        else {
            Issue.record("not reserved")
            return
        }
        // The EA said no: rejected, slot back, and its answer's balance noted.
        let (no, noted) = book.answered(
            first, success: false, userUUID: "user_tb_01", ticket: 0, price: 0, lot: 0, account: 9,
            balance: 500, at: 1)
        #expect(
            no == .rejected && noted == [.balance(account: 9, balance: 500, closesSince: 0)]
                && book.slotsUsed("user_tb_01") == 2)
        #expect(
            book.answered(
                first, success: true, userUUID: "user_tb_01", ticket: 1, price: 1, lot: 1, account: 9, balance: nil,
                at: 2
            ).0 == .duplicate(first))
        #expect(
            book.answered(
                "F-none", success: true, userUUID: "user_tb_01", ticket: 1, price: 1, lot: 1, account: 9, balance: nil,
                at: 2
            ).0 == .unknownFire)
        #expect(
            book.answered(
                second, success: true, userUUID: "user_intruder", ticket: 1, price: 1, lot: 1, account: 9,
                balance: nil, at: 2
            ).0 == .wrongUser)
        // A BUY filled at 1.1 with its stop above and its target below: the EA dropped both.
        #expect(
            book.answered(
                second, success: true, userUUID: "user_tb_01", ticket: 2, price: 1.1, lot: 0.5, account: 9,
                balance: nil, at: 3
            ).0 == .filled(stopDropped: true, targetDropped: true))
        #expect(book.positions.positions[2]?.stopLoss == 0 && book.positions.positions[2]?.takeProfit == 0)
        // A SELL with its stop below the fill: dropped; its target (1.102, above) too.
        #expect(
            book.answered(
                third, success: true, userUUID: "user_tb_01", ticket: 3, price: 1.1, lot: 0.5, account: 9,
                balance: nil, at: 4
            ).0 == .filled(stopDropped: true, targetDropped: true))
    }
}
