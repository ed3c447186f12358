import BittenCore
import BittenServices
import Foundation
import Logging
import Testing

@testable import BittenTelegram

/// The Telegram front's parts: commands and buttons parsed and refused before anything else sees them, the trade
/// events it tells users about, and the send queue against a local stand-in of the Bot API (its pace, `retry_after`,
/// 429 storms, failures and refusals).
@Suite("Telegram front: commands, buttons, the send queue")
struct TelegramTests {
    @Test func commandsAreParsedWithTheirArguments() throws {
        #expect(try BotCommand.parse("/fire ELITE_GUARD_EURUSD_1").get() == .fire(signalID: "ELITE_GUARD_EURUSD_1"))
        #expect(try BotCommand.parse("/fire@BittenBot  SIG_1 ").get() == .fire(signalID: "SIG_1"))
        #expect(try BotCommand.parse("/start abcd2345").get() == .start(code: "ABCD2345"))
        #expect(try BotCommand.parse("/start").get() == .start(code: nil))
        #expect(try BotCommand.parse("/close 123456").get() == .close(ticket: 123_456))
        #expect(try BotCommand.parse("/CLOSEALL").get() == .closeAll)
        #expect(try BotCommand.parse("/halt news at 14:30").get() == .halt(reason: "news at 14:30"))
        #expect(try BotCommand.parse("/halt").get() == .halt(reason: nil))
        #expect(try BotCommand.parse("/unsubscribe").get() == .subscribe(false))
        #expect(BotCommand.halt(reason: nil).isOperatorOnly && !BotCommand.fire(signalID: "S").isOperatorOnly)
    }

    /// Unknown commands, malformed ids and tickets, missing and extra arguments, text that is no command, and
    /// oversized messages: each refused with its own code and a line that says what is wrong.
    @Test func badInputIsRefusedWithAReason() {
        let cases: [(String, String)] = [
            ("/launch SIG_1", "unknown_command"),
            ("/fire", "bad_argument"),
            ("/fire SIG_1 SIG_2", "bad_argument"),
            ("/fire ../../etc/passwd", "bad_argument"),
            ("/fire " + String(repeating: "A", count: 300), "bad_argument"),
            ("/close abc", "bad_argument"),
            ("/close -5", "bad_argument"),
            ("/close 0", "bad_argument"),
            ("/start 1234", "bad_argument"),
            ("/start ABCD2345 extra", "bad_argument"),
            ("/positions now", "bad_argument"),
            ("fire SIG_1", "not_a_command"),
            ("", "not_a_command"),
            ("/fire " + String(repeating: "x", count: 600), "too_long"),
        ]
        for (text, code) in cases {
            guard case .failure(let refusal) = BotCommand.parse(text) else {
                Issue.record("'\(text.prefix(40))' was taken")
                continue
            }
            #expect(refusal.code == code, "\(text.prefix(40)): \(refusal)")
            #expect(!refusal.message.isEmpty)
        }
    }

    /// A button's data is the bot's own or nothing: a fire of a valid id, a close-all confirmation of the right
    /// shape; anything else (another user's id smuggled in, oversized, unknown) is refused.
    @Test func buttonsAreTheBotsOwnOrRefused() {
        #expect(BotButtonData.parse("f:SIG_1") == .fire(signalID: "SIG_1"))
        #expect(BotButtonData.parse(BotButtonData.confirmCloseAll(nonce: "ABCDEFGH23456789").text) != nil)
        for forged in [
            "f:", "f:SIG 1", "x:SIG_1", "ca:short", "ca:ABCDEFGH2345678!", "f:" + String(repeating: "A", count: 70),
            "close:123",
        ] {
            #expect(BotButtonData.parse(forged) == nil, "\(forged)")
        }
    }

    @Test func tradeEventsBecomeOneLine() {
        let filled = TelegramService.notice(
            "fire.filled",
            [
                "fire_id": "F-1", "symbol": "EURUSD", "direction": "BUY", "lot": "0.5", "fill_price": "1.0852",
                "ticket": "77",
            ])
        #expect(filled == "Filled F-1: EURUSD BUY 0.5 lots at 1.0852, ticket #77.")
        let closed = TelegramService.notice(
            "position.closed",
            [
                "ticket": "77", "symbol": "EURUSD", "direction": "BUY", "lot": "0.5", "profit": "-12.5",
                "result": "LOSS",
                "close_reason": "stop_loss",
            ])
        #expect(closed == "Closed #77 EURUSD BUY 0.5: -12.5 (LOSS, stop_loss).")
        #expect(
            TelegramService.notice("fire.rejected", ["fire_id": "F-2", "ea_message": "no money"])?.contains("no money")
                == true)
        #expect(TelegramService.notice("user.trading", [:]) == nil)
    }

    /// `/status` from the user's and the EA's records: the EA, the state with its reason, slots, trades against the
    /// day's limit, the loss today and the drawdown at the EA's equity against their limits.
    @Test func statusSaysWhatIsUsedToday() {
        let today = RiskDay.day(of: Date().timeIntervalSince1970)
        let user: [String: Any] = [
            "tier": "CAPTAIN", "slots": 5, "slots_used": 2,
            "trading": ["state": "close_only", "reason": "daily loss 3.1% past 3%"],
            "risk": ["day": today, "start_balance": 10_000.0, "equity_peak": 10_500.0, "trades": 4, "loss_streak": 2],
            "effective_limits": ["daily_loss": 3.0, "drawdown": 10.0, "trades_per_day": 10],
        ]
        let lines = TelegramService.statusLines(user: user, node: ["status": "online", "equity": 9_690.0])
        #expect(
            lines == [
                "EA: online", "Trading: close_only (daily loss 3.1% past 3%)", "Slots: 2 of 5 (CAPTAIN)",
                "Trades today: 4 of 10", "Loss today: 3.1% of 3% allowed", "Drawdown: 7.71% of 10% allowed",
                "Losses in a row: 2",
            ], "\(lines)")
        // No EA seen and no trade today: the limit alone.
        let quiet = TelegramService.statusLines(
            user: ["risk": ["day": "", "start_balance": 0.0], "effective_limits": ["daily_loss": 3.0]], node: nil)
        #expect(quiet.first == "EA: never seen" && quiet.contains("Daily loss limit: 3%"), "\(quiet)")
    }

    /// The queue never sends more than its rate in any second: 45 messages at 30 a second take at least 1.4 s, and
    /// no window of one second holds more than 30 calls.
    @Test func theQueueKeepsToThirtyMessagesASecond() async throws {
        let standIn = try await BotAPIStandIn()
        defer { standIn.stop() }
        let outbox = BotOutbox(api: BotAPI(base: standIn.base, token: "1:test"), logger: Logger(label: "t"))
        let running = Task { await outbox.run() }
        defer { running.cancel() }
        for i in 0..<45 { outbox.post(BotMessageOut(chat: "42", text: "n\(i)")) }
        #expect(try await eventually(.seconds(10)) { standIn.texts(to: 42).count == 45 })
        #expect(standIn.texts(to: 42) == (0..<45).map { "n\($0)" }, "in order")
        let times = standIn.calls.map(\.at)
        for (index, start) in times.enumerated() {
            let inWindow = times[index...].prefix { $0.timeIntervalSince(start) < 1 }.count
            #expect(inWindow <= 30, "\(inWindow) calls within a second from call \(index)")
        }
    }

    /// A 429 pauses the queue for the `retry_after` asked (the same message goes again afterwards, nothing before);
    /// a storm of them is sat out; the API's 500s are tried again; a refusal drops only its own message.
    @Test func retryAfterIsHonouredAndStormsAndFailuresAreSurvived() async throws {
        let standIn = try await BotAPIStandIn()
        defer { standIn.stop() }
        standIn.fail("sendMessage", count: 3, status: 429, retryAfter: 1)
        let outbox = BotOutbox(api: BotAPI(base: standIn.base, token: "1:test"), logger: Logger(label: "t"))
        let running = Task { await outbox.run() }
        defer { running.cancel() }
        outbox.post(BotMessageOut(chat: "7", text: "first"))
        outbox.post(BotMessageOut(chat: "7", text: "second"))
        #expect(try await eventually(.seconds(15)) { standIn.texts(to: 7).count == 5 })
        let calls = standIn.calls.filter { $0.method == "sendMessage" }
        #expect(calls.map { $0.body["text"] as? String } == ["first", "first", "first", "first", "second"])
        for pair in zip(calls, calls.dropFirst()).prefix(3) {
            #expect(pair.1.at.timeIntervalSince(pair.0.at) >= 0.95, "waited the retry_after of 1 s")
        }
        // Two 500s, then the message goes; a 403 (the user blocked the bot) drops that message, not the next.
        standIn.fail("sendMessage", count: 2, status: 500)
        outbox.post(BotMessageOut(chat: "8", text: "after 500s"))
        #expect(try await eventually(.seconds(10)) { standIn.texts(to: 8).count == 3 })
        standIn.fail("sendMessage", count: 1, status: 403)
        outbox.post(BotMessageOut(chat: "9", text: "blocked"))
        outbox.post(BotMessageOut(chat: "9", text: "next"))
        #expect(try await eventually(.seconds(10)) { standIn.texts(to: 9).count == 2 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(standIn.texts(to: 9) == ["blocked", "next"], "the refused one was not sent again")
    }
}
