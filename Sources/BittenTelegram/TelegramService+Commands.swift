import BittenCore
import Foundation

/// The users' commands and buttons: each checked (the command's shape, the chat's link, an operator's chat, the
/// button's owner), then asked of Bitten's HTTP API, and answered in a few lines.
extension TelegramService {
    /// A message's text.
    func handle(text: String, chat: Int64) async {
        let command: BotCommand
        switch BotCommand.parse(text) {
        case .failure(let refusal): return refuse(chat, refusal.code, refusal.message)
        case .success(let parsed): command = parsed
        }
        if case .start(let code?) = command { return await link(code: code, chat: chat) }
        let isOperator = settings.operators.contains(chat)
        if command.isOperatorOnly {
            guard isOperator else { return refuse(chat, "not_operator", "Only an operator may do that.") }
            return await operate(command, chat: chat)
        }
        let uuid: String?
        do { uuid = try await store.user(ofChat: chat) } catch {
            return say(chat, "Bitten cannot read its links right now; try again in a moment.")
        }
        guard let uuid else {
            if case .help = command, isOperator { return say(chat, BotCommand.help(operator: true)) }
            return refuse(
                chat, "unlinked",
                "This chat is not linked to a Bitten account. Ask your operator for a code (bitten user link) and send /start CODE."
            )
        }
        switch command {
        case .start, .help: say(chat, "Linked to \(uuid).\n" + BotCommand.help(operator: isOperator))
        case .fire(let signalID): await fire(signalID, uuid: uuid, chat: chat)
        case .positions: await positions(uuid: uuid, chat: chat)
        case .close(let ticket): await close(ticket, uuid: uuid, chat: chat)
        case .closeAll: await askCloseAll(uuid: uuid, chat: chat)
        case .stats: await stats(uuid: uuid, chat: chat)
        case .status: await status(uuid: uuid, chat: chat)
        case .subscribe(let on):
            do {
                try await store.subscribe(chat, on)
                say(chat, on ? "Signals will be announced here." : "No more announcements here.")
            } catch {
                say(chat, "Bitten cannot change that right now; try again in a moment.")
            }
        case .halt, .resume, .health: break
        }
    }

    /// `/start CODE`.
    func link(code: String, chat: Int64) async {
        do {
            guard let uuid = try await store.link(code: code, chat: chat) else {
                return refuse(chat, "bad_link_code", "That code is unknown, used or expired; ask for a new one.")
            }
            logger.notice(
                "Telegram chat linked", metadata: ["bitten.node.uuid": "\(uuid)", "bitten.telegram.chat": "\(chat)"])
            say(chat, "Linked to \(uuid).\n" + BotCommand.help(operator: settings.operators.contains(chat)))
        } catch {
            say(chat, "Bitten cannot link right now; try again in a moment.")
        }
    }

    /// A button press: the presser (not the chat the button is in) is the one it acts for.
    func handle(_ callback: BotCallback) async {
        let presser = callback.from.id
        guard let data = callback.data, let button = BotButtonData.parse(data) else {
            refuse(nil, "bad_button", "")
            return outbox.answer(callbackID: callback.id, text: "That button is not one of Bitten's.")
        }
        let uuid = try? await store.user(ofChat: presser)
        guard let uuid else {
            refuse(nil, "unlinked", "")
            return outbox.answer(
                callbackID: callback.id, text: "Link your account first: /start CODE in a chat with the bot.")
        }
        switch button {
        case .fire(let signalID):
            outbox.answer(callbackID: callback.id, text: "Firing \(signalID)…")
            await fire(signalID, uuid: uuid, chat: presser)
        case .confirmCloseAll(let nonce):
            switch try? await store.takeConfirmation(nonce, chat: presser) {
            case true?:
                outbox.answer(callbackID: callback.id, text: "Closing all…")
                await closeAll(uuid: uuid, chat: presser)
            case false?:
                refuse(nil, "forged_button", "")
                outbox.answer(callbackID: callback.id, text: "That confirmation is not yours.")
            case nil:
                refuse(nil, "expired_button", "")
                outbox.answer(callbackID: callback.id, text: "That confirmation has expired; send /closeall again.")
            }
        }
    }

    /// Fires `signalID` for the chat's user: the fire desk's answer in one line.
    func fire(_ signalID: String, uuid: String, chat: Int64) async {
        guard let answer = await ask(chat, { try await $0.post("/fire/\(signalID)", ["user_uuid": uuid]) }) else {
            return
        }
        let body = answer.body
        let fireID = body["fire_id"] as? String ?? "?"
        switch answer.status {
        case 201:
            say(
                chat,
                "Fired \(fireID): \(body["symbol"] as? String ?? "") \(body["direction"] as? String ?? "") \(Self.number(body["lot"])) lots, sent to your EA."
            )
        case 200:
            say(chat, "You fired \(signalID) already: \(fireID) is \(body["state"] as? String ?? "recorded").")
        default:
            let error = answer.error ?? ("http_\(answer.status)", "")
            refuse(chat, "fire_refused", "Not fired (\(error.code)): \(error.message)")
        }
    }

    /// `/positions`.
    func positions(uuid: String, chat: Int64) async {
        guard let answer = await ask(chat, { try await $0.get("/users/\(uuid)/positions") }) else { return }
        let list = answer.body["positions"] as? [[String: Any]] ?? []
        guard answer.status == 200 else { return say(chat, Self.failure(answer)) }
        guard !list.isEmpty else { return say(chat, "No open positions.") }
        let lines = list.prefix(30).map { p in
            let pnl = (p["unrealized_profit"] as? Double).map { ", P&L \(Self.money($0))" } ?? ""
            return
                "#\(p["ticket"] as? Int ?? 0) \(p["symbol"] as? String ?? "") \(p["direction"] as? String ?? "") \(Self.number(p["lot"])) @ \(Self.number(p["open_price"]))\(pnl)"
        }
        say(chat, "\(list.count) open:\n" + lines.joined(separator: "\n") + (list.count > 30 ? "\n…" : ""))
    }

    /// `/close TICKET`: only a position of the chat's own user.
    func close(_ ticket: Int, uuid: String, chat: Int64) async {
        guard let position = await ask(chat, { try await $0.get("/positions/\(ticket)") }) else { return }
        guard position.status == 200, position.body["user_uuid"] as? String == uuid,
            position.body["status"] as? String ?? "open" == "open"
        else {
            return refuse(chat, "not_your_position", "Ticket \(ticket) is not one of your open positions.")
        }
        await requestClose("/positions/\(ticket)/close", chat: chat, sent: "Close of #\(ticket) sent to your EA.")
    }

    /// A close request: `sent` when the API took it, its refusal otherwise.
    func requestClose(_ path: String, chat: Int64, sent: String) async {
        guard let answer = await ask(chat, { try await $0.post(path) }) else { return }
        if (200..<300).contains(answer.status) {
            say(chat, sent)
        } else {
            refuse(chat, "close_refused", Self.failure(answer))
        }
    }

    /// `/closeall`: a button to confirm (it works once, for this chat, within two minutes).
    func askCloseAll(uuid: String, chat: Int64) async {
        do {
            let nonce = try await store.makeConfirmation(for: chat)
            say(
                chat, "Close ALL your open positions?",
                buttons: [[BotButton("Yes, close all", data: BotButtonData.confirmCloseAll(nonce: nonce).text)]])
        } catch {
            say(chat, "Bitten cannot ask that right now; try again in a moment.")
        }
    }

    func closeAll(uuid: String, chat: Int64) async {
        await requestClose("/users/\(uuid)/close-all", chat: chat, sent: "Close-all sent to your EA.")
    }

    /// `/stats`.
    func stats(uuid: String, chat: Int64) async {
        guard let answer = await ask(chat, { try await $0.get("/stats/users/\(uuid)") }) else { return }
        guard answer.status == 200 else { return say(chat, Self.failure(answer)) }
        let s = answer.body
        say(
            chat,
            """
            Trades \(s["total"] as? Int ?? 0): \(s["wins"] as? Int ?? 0) won, \(s["losses"] as? Int ?? 0) lost \
            (win rate \(Self.number(s["win_rate"]))%)
            Net \(Self.money(s["net"] as? Double ?? 0)), profit factor \(Self.number(s["profit_factor"]))
            Largest win \(Self.money(s["largest_win"] as? Double ?? 0)), largest loss \(Self.money(s["largest_loss"] as? Double ?? 0))
            """)
    }

    /// `/status`: the EA online or not, the trading state, the limits used today.
    func status(uuid: String, chat: Int64) async {
        guard let user = await ask(chat, { try await $0.get("/users/\(uuid)") }) else { return }
        guard user.status == 200 else { return say(chat, Self.failure(user)) }
        let node = await ask(chat, { try await $0.get("/nodes/\(uuid)") })
        say(
            chat,
            Self.statusLines(user: user.body, node: node?.status == 200 ? node?.body : nil).joined(separator: "\n"))
    }

    /// The lines of `/status` from the user's record (`GET /users/{uuid}`) and the EA's (`GET /nodes/{uuid}`).
    static func statusLines(user: [String: Any], node: [String: Any]?) -> [String] {
        let trading = user["trading"] as? [String: Any] ?? [:]
        let risk = user["risk"] as? [String: Any] ?? [:]
        let limits = user["effective_limits"] as? [String: Any] ?? [:]
        let reason = (trading["reason"] as? String).flatMap { $0.isEmpty ? nil : " (\($0))" } ?? ""
        var lines = [
            "EA: \(node?["status"] as? String ?? "never seen")",
            "Trading: \(trading["state"] as? String ?? "active")\(reason)",
            "Slots: \(whole(user["slots_used"]) ?? 0) of \(whole(user["slots"]) ?? 0) (\(user["tier"] as? String ?? ""))",
            "Trades today: \(whole(risk["trades"]) ?? 0)" + (whole(limits["trades_per_day"]).map { " of \($0)" } ?? ""),
        ]
        let equity = node?["equity"] as? Double ?? node?["balance"] as? Double
        let start = risk["start_balance"] as? Double ?? 0
        let today = risk["day"] as? String == RiskDay.day(of: Date().timeIntervalSince1970)
        if let equity, start > 0, today {
            let loss = max(0, (start - equity) / start * 100)
            lines.append(
                "Loss today: \(number(loss.rounded(toPlaces: 2)))%"
                    + (limits["daily_loss"].map { " of \(number($0))% allowed" } ?? ""))
        } else if let daily = limits["daily_loss"] {
            lines.append("Daily loss limit: \(number(daily))%")
        }
        let peak = risk["equity_peak"] as? Double ?? 0
        if let equity, peak > 0, let drawdown = limits["drawdown"] {
            let down = max(0, (peak - equity) / peak * 100)
            lines.append("Drawdown: \(number(down.rounded(toPlaces: 2)))% of \(number(drawdown))% allowed")
        }
        if let streak = whole(risk["loss_streak"]), streak > 0 { lines.append("Losses in a row: \(streak)") }
        return lines
    }

    /// Operators' commands.
    func operate(_ command: BotCommand, chat: Int64) async {
        switch command {
        case .halt(let reason):
            let body: [String: Any] = ["reason": reason ?? "halted from Telegram", "by": "telegram:\(chat)"]
            guard let answer = await ask(chat, { try await $0.post("/control/halt", body) }) else { return }
            say(chat, answer.status == 200 ? "Trading HALTED." : Self.failure(answer))
        case .resume:
            let body: [String: Any] = ["reason": "resumed from Telegram", "by": "telegram:\(chat)"]
            guard let answer = await ask(chat, { try await $0.post("/control/resume", body) }) else { return }
            say(chat, answer.status == 200 ? "Trading resumed." : Self.failure(answer))
        case .health:
            guard let answer = await ask(chat, { try await $0.get("/health") }) else { return }
            let nodes = answer.body["nodes"] as? [String: Any] ?? [:]
            let redis = answer.body["redis"] as? [String: Any] ?? [:]
            say(
                chat,
                "Status: \(answer.body["status"] as? String ?? "unknown")\nEAs online: \(nodes["online"] as? Int ?? 0) of \(nodes["total"] as? Int ?? 0)\nRedis: \(redis["reachable"] as? Bool == true ? "reachable" : "UNREACHABLE")"
            )
        default: break
        }
    }

    /// One call to Bitten's API; nil (and the user told) when it did not answer.
    func ask(_ chat: Int64, _ call: (BittenAPIClient) async throws -> BittenAPIClient.Answer) async
        -> BittenAPIClient.Answer?
    {
        do { return try await call(bitten) } catch {
            logger.warning("Bitten's API did not answer", metadata: ["bitten.error": "\(error)"])
            say(chat, "Bitten is not answering right now; try again in a moment.")
            return nil
        }
    }

    static func failure(_ answer: BittenAPIClient.Answer) -> String {
        guard let error = answer.error else { return "Bitten answered HTTP \(answer.status)." }
        return "Refused (\(error.code)): \(error.message)"
    }

    static func number(_ value: Any?) -> String {
        guard let value = value as? Double ?? (value as? Int).map(Double.init) else { return "?" }
        return PlainDecimal.format(value, maxFractionDigits: 5) ?? "?"
    }

    /// A JSON number as an integer (JSON does not tell 10 from 10.0).
    static func whole(_ value: Any?) -> Int? { value as? Int ?? (value as? Double).map { Int($0) } }

    static func money(_ value: Double) -> String {
        (value >= 0 ? "+" : "-") + (PlainDecimal.format(abs(value), maxFractionDigits: 2) ?? "?")
    }
}

extension Double {
    /// Rounded to `places` decimals.
    func rounded(toPlaces places: Int) -> Double {
        let scale = Foundation.pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
