import BittenServices
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// The Telegram front (`bitten run telegram`, part of `bitten up` when `BITTEN_TELEGRAM_TOKEN` is set): it long-polls
/// the Bot API for updates, answers the users' commands and buttons through Bitten's own HTTP API (the same fire
/// desk, checks and refusals), tells each user about their fills, rejections, timeouts and closes, and announces
/// every signal with its CITADEL score and a Fire button.
///
/// An update's offset is stored in Redis before the update is handled, so that no update is handled twice after a
/// restart (one cut short by a crash is not handled again: the user asks again). Everything the bot says goes
/// through one rate-limited queue (`BotOutbox`). Bad input — an unknown command, a malformed id, a chat not linked,
/// a button that is not the bot's or not the presser's — gets a one-line answer and a count
/// (`bitten_telegram_refused_total{reason}`); nothing reaches the trade path unchecked.
public final class TelegramService: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "telegram"

    /// What the service is set up with.
    public struct Settings: Sendable {
        /// Chats whose users are operators (`/halt`, `/resume`, `/health`).
        public var operators: Set<Int64> = []
        /// Where signals are announced: a channel (`@name` or its id); nil: each subscribed chat.
        public var channel: String?
        /// Seconds a long poll waits for updates.
        public var pollTimeout = 25
        /// How often new signals are looked for.
        public var announceInterval: Duration = .seconds(1)

        /// The defaults.
        public init() {}
    }

    let api: BotAPI
    let bitten: BittenAPIClient
    let store: TelegramStore
    let signals: TradeStore
    let redisURL: RedisURL?
    let settings: Settings
    let board: ServiceBoard
    let logger: Logger
    /// Everything the bot sends.
    public let outbox: BotOutbox
    let handled = Counter(label: "bitten_telegram_updates_total")
    let refusals = CounterFamily("bitten_telegram_refused_total", dimension: "reason")

    /// A Telegram front: the Bot API `api`, Bitten's API `bitten`, its state in `store`, signals read from `signals`,
    /// trade events from `redisURL`'s `bitten:events` (nil: no notifications).
    public init(
        api: BotAPI, bitten: BittenAPIClient, store: TelegramStore, signals: TradeStore, redisURL: RedisURL?,
        settings: Settings, board: ServiceBoard, logger: Logger
    ) {
        self.api = api
        self.bitten = bitten
        self.store = store
        self.signals = signals
        self.redisURL = redisURL
        self.settings = settings
        self.board = board
        self.logger = logger
        self.outbox = BotOutbox(api: api, logger: logger)
        board.register(Self.name)
    }

    /// Runs until the group shuts down.
    public func run() async throws {
        board.set(Self.name, .running, detail: api.base)
        let subscriber = redisURL.map { RedisSubscriber(url: $0, channels: [RedisKeys.events], logger: logger) }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.outbox.run() }
                group.addTask { await self.pollLoop() }
                group.addTask { await self.announceLoop() }
                if let subscriber {
                    group.addTask {
                        for await message in subscriber.messages {
                            for line in message.payload.split(separator: "\n", omittingEmptySubsequences: true) {
                                await self.notify(event: String(line))
                            }
                        }
                    }
                }
                // Everything stops with the shutdown (cancellation ends the loops; the subscriber's stream ends).
                try? await gracefulShutdown()
                subscriber?.stop()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            subscriber?.stop()
        }
        board.set(Self.name, .stopped)
    }

    /// Long polling: each update's offset stored, then the update handled; a failed poll waits and tries again (a
    /// 429 as long as the API asks).
    func pollLoop() async {
        var delay = Duration.seconds(1)
        while !Task.isCancelled {
            do {
                let offset = try await store.offset()
                let updates = try await polled(offset)
                delay = .seconds(1)
                for update in updates.sorted(by: { $0.updateID < $1.updateID }) where update.updateID >= offset {
                    try await store.setOffset(update.updateID + 1)
                    handled.increment()
                    await handle(update)
                }
            } catch let error as BotAPIError {
                board.count(Self.name, errors: 1)
                if case .retryAfter(let seconds) = error.kind {
                    try? await Task.sleep(for: .seconds(seconds))
                } else {
                    logger.warning("Telegram updates not read", metadata: ["bitten.error": "\(error)"])
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(30))
                }
            } catch {
                board.count(Self.name, errors: 1)
                logger.warning("Telegram offset not read or stored", metadata: ["bitten.error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
    }

    func polled(_ offset: Int64) async throws -> [BotUpdate] {
        try await api.updates(offset: offset, timeout: settings.pollTimeout)
    }

    /// One update: a message or a button press.
    func handle(_ update: BotUpdate) async {
        board.count(Self.name, in: 1)
        if let callback = update.callbackQuery {
            await handle(callback)
        } else if let message = update.message {
            guard let text = message.text else {
                return refuse(message.chat.id, "not_a_command", "Send a command, such as /help.")
            }
            await handle(text: text, chat: message.chat.id)
        }
    }

    /// Says `message` to `chat` (through the queue).
    func say(_ chat: Int64, _ message: String, buttons: [[BotButton]] = []) {
        outbox.post(BotMessageOut(chat: String(chat), text: message, buttons: buttons))
        board.count(Self.name, out: 1)
    }

    /// A refusal: one line to the chat, counted by its reason.
    func refuse(_ chat: Int64?, _ reason: String, _ message: String) {
        refusals.increment(reason)
        logger.info(
            "Telegram input refused", metadata: ["bitten.reason": "\(reason)", "bitten.telegram.chat": "\(chat ?? 0)"])
        if let chat { say(chat, message) }
    }
}
