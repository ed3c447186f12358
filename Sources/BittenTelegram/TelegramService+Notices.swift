import BittenCore
import BittenServices
import Foundation

/// What the bot says unasked: each user's fills, rejections, timeouts and closes (from `bitten:events`), and every
/// new signal with its CITADEL score and a Fire button (to the channel, or to each subscribed chat).
extension TelegramService {
    /// One trade event: told to its user's chat, if the user linked one.
    func notify(event line: String) async {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let name = object["event"] as? String, let uuid = object["user_uuid"] as? String,
            let text = Self.notice(name, object)
        else { return }
        guard let chat = try? await store.chat(ofUser: uuid) else { return }
        say(chat, text)
    }

    /// The line a trade event becomes (nil: not one a user is told about).
    static func notice(_ name: String, _ e: [String: Any]) -> String? {
        func s(_ key: String) -> String { e[key] as? String ?? "" }
        let trade = "\(s("symbol")) \(s("direction")) \(s("lot"))"
        switch name {
        case "fire.filled":
            return
                "Filled \(s("fire_id")): \(trade) lots at \(s("fill_price").isEmpty ? "?" : s("fill_price")), ticket #\(s("ticket"))."
        case "fire.rejected":
            let why = [s("ea_message"), s("reason")].first { !$0.isEmpty } ?? "no reason given"
            return "Rejected \(s("fire_id")) (\(trade)): \(why)."
        case "fire.timed_out":
            return "No answer from your EA for \(s("fire_id")) (\(trade)): timed out."
        case "position.closed":
            let profit = Double(s("profit")).map(money) ?? s("profit")
            return "Closed #\(s("ticket")) \(trade): \(profit) (\(s("result")), \(s("close_reason")))."
        case "close.rejected":
            return "Close of #\(s("ticket")) refused: \(s("ea_message").isEmpty ? s("reason") : s("ea_message"))."
        case "risk.limit_crossed":
            return "Risk limit reached: \(s("message")). New trades are refused until the next trading day."
        default:
            return nil
        }
    }

    /// Looks for new signals every `announceInterval` and announces them, oldest first. The first run starts from
    /// now (history is not announced); after a restart it goes on from the last one announced.
    func announceLoop() async {
        while !Task.isCancelled {
            do { try await announceNew() } catch {
                logger.warning("signals not announced", metadata: ["bitten.error": "\(error)"])
            }
            try? await Task.sleep(for: settings.announceInterval)
        }
    }

    func announceNew() async throws {
        guard let since = try await store.announced() else {
            return try await store.setAnnounced(Date().timeIntervalSince1970)
        }
        let reply = try await store.redis.command([
            "ZRANGEBYSCORE", RedisKeys.signalsRecent, "(\(since)", "+inf", "WITHSCORES", "LIMIT", "0", "50",
        ]).orThrow()
        let items = reply.array ?? []
        guard !items.isEmpty else { return }
        var targets: [String] = []
        if let channel = settings.channel {
            targets = [channel]
        } else {
            targets = try await store.subscribers().map(String.init)
        }
        var last = since
        for pair in stride(from: 0, to: items.count - 1, by: 2) {
            guard let id = items[pair].string, let at = items[pair + 1].string.flatMap(Double.init) else { continue }
            last = max(last, at)
            guard let signal = try await signals.signal(id) else { continue }
            let (text, buttons) = Self.announcement(signal)
            for target in targets {
                outbox.post(BotMessageOut(chat: target, text: text, buttons: buttons))
                board.count(Self.name, out: 1)
            }
        }
        try await store.setAnnounced(last)
    }

    /// A signal as announced: its trade, its CITADEL score and level, and a Fire button (when its id fits one).
    static func announcement(_ signal: SignalRecord) -> (String, [[BotButton]]) {
        let n = { (value: Double) in PlainDecimal.format(value, maxFractionDigits: 5) ?? "?" }
        let text = """
            Signal \(signal.signalID): \(signal.symbol) \(signal.direction) at \(n(signal.entry))
            SL \(n(signal.stopLoss)) · TP \(n(signal.takeProfit))
            CITADEL \(n(signal.protectionScore))/10 \(signal.riskLevel) (size ×\(n(signal.citadelMultiplier)))
            Fire it: /fire \(signal.signalID)
            """
        let data = BotButtonData.fire(signalID: signal.signalID).text
        return (text, data.utf8.count <= 64 ? [[BotButton("Fire", data: data)]] : [])
    }
}
