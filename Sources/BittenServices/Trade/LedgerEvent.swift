import BittenCore
import Foundation
import Redis

/// A ledger entry as a shard applies it.
public enum LedgerEvent: Sendable, Equatable {
    case fire(FireAnswer)
    case close(CloseAnswer)
    /// The position watcher saw the market cross a stop (`stop_loss`) or target (`take_profit`).
    case crossed(ticket: Int, userUUID: String, reason: String, level: Double, at: Double)

    /// The user whose shard applies it.
    public var userUUID: String {
        switch self {
        case .fire(let answer): answer.userUUID
        case .close(let answer): answer.userUUID
        case .crossed(_, let uuid, _, _, _): uuid
        }
    }

    /// The event of a stream entry (the confirmation service's `payload` with `received_at` and `quotes`,
    /// or the position watcher's inferred close), or nil when it cannot be read. Untrusted entries are
    /// the caller's to skip.
    public init?(entry: StreamEntry) {
        guard let receivedAt = entry["received_at"], let at = Double(receivedAt) else { return nil }
        if entry["type"] == InferredClose.type {
            guard let ticket = entry["ticket"].flatMap({ Int($0) }), let reason = entry["reason"],
                reason == "stop_loss" || reason == "take_profit", let level = entry["price"].flatMap(Double.init)
            else { return nil }
            self = .crossed(ticket: ticket, userUUID: entry["user_uuid"] ?? "", reason: reason, level: level, at: at)
            return
        }
        guard let payload = entry["payload"],
            let message = try? EAMessage.decode(Array(payload.utf8), channel: .confirm)
        else { return nil }
        self.init(message: message, receivedAt: at, quotes: entry["quotes"] ?? "")
    }

    /// The event of a confirmation as the confirmation service decoded it, received at `receivedAt` (read
    /// back from its `received_at` text, so it is the same number a replay of the entry gives) with the
    /// market `quotes` that went with it; nil for any other message or a confirmation without a fire id.
    public init?(message: EAMessage, receivedAt at: Double, quotes: String) {
        switch message {
        case .confirmation(let c):
            guard !c.fireID.isEmpty else { return nil }
            self = .fire(
                FireAnswer(
                    fireID: c.fireID, success: c.succeeded, userUUID: c.userUUID, ticket: c.ticket, price: c.price,
                    lot: c.lot, message: c.message, account: c.accountNumber, balance: c.account.balance, at: at))
        case .closeConfirmation(let c):
            self = .close(
                CloseAnswer(
                    ticket: c.ticket, success: c.succeeded, closePrice: c.closePrice, message: c.message,
                    account: c.accountNumber, userUUID: c.userUUID, commandType: c.commandType,
                    balance: c.account.balance, quotes: quotes, at: at))
        default:
            return nil
        }
    }
}

extension TradeShard {
    /// Applies one ledger event; the outcome in the ledger's words.
    public mutating func apply(_ event: LedgerEvent, streamID: String) -> String {
        switch event {
        case .fire(let answer): apply(answer, streamID: streamID)
        case .close(let answer): apply(answer, streamID: streamID)
        case .crossed(let ticket, _, let reason, let level, let at):
            crossed(ticket: ticket, level: level, reason: reason, at: at)
        }
    }
}
