import Foundation
import Logging
import Redis
import ServiceLifecycle

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Forwards every trade event published on the Redis channel `bitten:events` (fills, rejections,
/// timeouts, closes with P&L; the trade engine publishes one message per commit with one JSON object per
/// line) to a webhook as one JSON POST per event, retrying with back-off. It runs apart
/// from the trade path: a slow or dead webhook delays only its own queue (the subscriber keeps
/// the newest 10 000 events; older ones are dropped). An event that fails every attempt is counted
/// as an error of this service.
public final class EventWebhook: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "webhook"

    private let url: URL
    private let redisURL: RedisURL
    private let board: ServiceBoard
    private let logger: Logger
    private let attempts: Int

    /// A webhook posting `bitten:events` to `url`, each event tried `attempts` times.
    public init(url: URL, redisURL: RedisURL, attempts: Int = 5, board: ServiceBoard, logger: Logger) {
        self.url = url
        self.redisURL = redisURL
        self.attempts = attempts
        self.board = board
        self.logger = logger
        board.register(Self.name)
    }

    /// Runs until the group shuts down.
    public func run() async throws {
        board.set(Self.name, .running, detail: url.host ?? "")
        let subscriber = RedisSubscriber(url: redisURL, channels: [RedisKeys.events], logger: logger)
        await withGracefulShutdownHandler {
            for await message in subscriber.messages.cancelOnGracefulShutdown() {
                // A message holds one commit's events, one JSON object per line: each is posted on its own.
                for event in message.payload.split(separator: "\n", omittingEmptySubsequences: true) {
                    await deliver(String(event))
                }
            }
        } onGracefulShutdown: {
            subscriber.stop()
        }
        subscriber.stop()
        board.set(Self.name, .stopped)
    }

    private func deliver(_ payload: String) async {
        var delay = Duration.milliseconds(200)
        for attempt in 1...attempts {
            var request = URLRequest(url: url)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(payload.utf8)
            request.timeoutInterval = 5
            if let (_, response) = try? await URLSession.shared.data(for: request),
                let status = (response as? HTTPURLResponse)?.statusCode, (200..<300).contains(status)
            {
                board.count(Self.name, out: 1)
                return
            }
            if attempt < attempts {
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            }
        }
        board.count(Self.name, errors: 1)
        logger.warning("webhook delivery failed", metadata: ["bitten.attempts": "\(attempts)"])
    }
}
