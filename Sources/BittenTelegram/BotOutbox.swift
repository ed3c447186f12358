import BittenServices
import DequeModule
import Foundation
import Logging
import Metrics
import Synchronization

/// Everything the bot sends goes through one queue, at most `perSecond` calls a second (spaced evenly, with a margin:
/// never a burst past the Bot API's 30 messages a second). A 429 pauses the whole queue for the `retry_after` the API asked
/// for, then the same message goes again; the network's or the API's failures are tried again with back-off; a
/// refusal (a chat that blocked the bot) drops that message. The queue keeps at most `capacity` items; past that the
/// oldest go, counted (`bitten_telegram_dropped_total`).
public final class BotOutbox: Sendable {
    /// One call to make.
    public enum Item: Sendable, Equatable {
        case message(BotMessageOut)
        case answer(callbackID: String, text: String)
    }

    let api: BotAPI
    let logger: Logger
    let spacing: Duration
    let capacity: Int
    let attempts: Int
    let queue = Mutex(Deque<Item>())
    let wake = WakeSignal()
    let sent = Counter(label: "bitten_telegram_sent_total")
    let dropped = Counter(label: "bitten_telegram_dropped_total")
    let rateLimited = Counter(label: "bitten_telegram_rate_limited_total")
    let failed = Counter(label: "bitten_telegram_send_failures_total")

    /// A queue sending through `api`, `perSecond` calls a second at most.
    public init(api: BotAPI, logger: Logger, perSecond: Int = 30, capacity: Int = 10_000, attempts: Int = 5) {
        self.api = api
        self.logger = logger
        // A tenth more than 1/perSecond apart: 30 calls span 1.07 s, so no second ever holds 31 even when the
        // network brings two of them closer together.
        self.spacing = .nanoseconds(1_100_000_000 / Int64(max(1, perSecond)))
        self.capacity = capacity
        self.attempts = attempts
    }

    /// Queues a message.
    public func post(_ message: BotMessageOut) { enqueue(.message(message)) }

    /// Queues the answer to a button press.
    public func answer(callbackID: String, text: String) { enqueue(.answer(callbackID: callbackID, text: text)) }

    /// Items waiting.
    public var waiting: Int { queue.withLock { $0.count } }

    func enqueue(_ item: Item) {
        let overflow = queue.withLock { items -> Bool in
            items.append(item)
            guard items.count > capacity else { return false }
            items.removeFirst()
            return true
        }
        if overflow { dropped.increment() }
        wake.signal()
    }

    /// Sends until cancelled.
    public func run() async {
        let clock = ContinuousClock()
        var next = clock.now
        while !Task.isCancelled {
            guard let item = queue.withLock({ $0.first }) else {
                await wake.wait(timeout: .seconds(1))
                continue
            }
            var delay = Duration.milliseconds(500)
            var tries = 0
            while !Task.isCancelled {
                if clock.now < next { try? await Task.sleep(until: next, clock: clock) }
                next = clock.now + spacing
                do {
                    try await send(item)
                    sent.increment()
                    break
                } catch {
                    switch error.kind {
                    case .retryAfter(let seconds):
                        // The API's word: nothing at all before then (the same item goes again, not counted as a try).
                        rateLimited.increment()
                        logger.warning(
                            "Telegram asked to wait", metadata: ["bitten.telegram.retry_after": "\(seconds)"])
                        next = clock.now + .seconds(seconds)
                        continue
                    case .transport, .malformed:
                        tries += 1
                        if tries < attempts {
                            next = max(next, clock.now + delay)
                            delay *= 2
                            continue
                        }
                    case .refused:
                        break
                    }
                    failed.increment()
                    logger.warning("Telegram message not sent", metadata: ["bitten.error": "\(error)"])
                }
                break
            }
            // Done with it (sent, refused or out of tries): the head is still this item (only `run` removes).
            queue.withLock { items in if items.first == item { items.removeFirst() } }
        }
    }

    func send(_ item: Item) async throws(BotAPIError) {
        switch item {
        case .message(let message): try await api.send(message)
        case .answer(let id, let text): try await api.answer(callback: id, text: text)
        }
    }
}
