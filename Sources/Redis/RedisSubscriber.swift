import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// One message received on a subscribed channel.
public struct PubSubMessage: Sendable, Equatable {
    /// The channel it was published on.
    public let channel: String
    /// The payload.
    public let payload: String
}

/// SUBSCRIBE on a dedicated connection and thread, delivered as an `AsyncStream`. Reconnects and
/// resubscribes with back-off when the server goes away; `stop()` ends the stream.
public final class RedisSubscriber: @unchecked Sendable {
    /// Received messages, in order.
    public let messages: AsyncStream<PubSubMessage>
    private let continuation: AsyncStream<PubSubMessage>.Continuation
    private let url: RedisURL
    private let channels: [String]
    private let logger: Logger
    private let lock = NSLock()
    private var stopped = false
    private var activeFD: Int32 = -1
    private var subscribed = false

    /// Starts a thread that subscribes to `channels`.
    public init(url: RedisURL, channels: [String], logger: Logger) {
        self.url = url
        self.channels = channels
        self.logger = logger
        (messages, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let thread = Thread { [self] in self.loop() }
        thread.name = "redis-sub"
        thread.start()
    }

    /// True once the SUBSCRIBE has been confirmed on the current connection.
    public var isSubscribed: Bool { lock.withLock { subscribed } }

    /// Unsubscribes and ends `messages`.
    public func stop() {
        lock.withLock {
            stopped = true
            if activeFD >= 0 { _ = Glibc.shutdown(activeFD, Int32(SHUT_RDWR)) }
        }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func loop() {
        var backoff = Duration.milliseconds(100)
        while !isStopped {
            do {
                let connection = try RedisConnection(url: url)
                connection.setTimeout(nil)
                lock.withLock { activeFD = connection.fileDescriptor }
                if isStopped { break }
                _ = try connection.command(["SUBSCRIBE"] + channels).orThrow()
                // Further SUBSCRIBE confirmations arrive as messages.
                for _ in 1..<max(channels.count, 1) { _ = try connection.readReply() }
                lock.withLock { subscribed = true }
                backoff = .milliseconds(100)
                while !isStopped {
                    let reply = try connection.readReply()
                    guard let parts = reply.array, parts.count == 3, parts[0].string == "message",
                        let channel = parts[1].string, let payload = parts[2].string
                    else { continue }
                    continuation.yield(PubSubMessage(channel: channel, payload: payload))
                }
            } catch {
                lock.withLock {
                    activeFD = -1
                    subscribed = false
                }
                if isStopped { break }
                logger.warning("redis subscriber lost its connection", metadata: ["bitten.reason": "\(error)"])
                Thread.sleep(
                    forTimeInterval: Double(backoff.components.seconds)
                        + Double(backoff.components.attoseconds) / 1e18)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        continuation.finish()
    }
}
