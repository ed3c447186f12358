import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Sharded pub/sub on a Redis Cluster: `SSUBSCRIBE` on the primary that owns the channels' slot, on a
/// connection and thread of its own, delivered as an `AsyncStream` (publish with `SPUBLISH` through
/// `RedisClient(cluster:)`, which routes it by the channel's slot). The channels must share one slot
/// (the same `{hash tag}`, or one channel). When the slot moves (the server ends the subscription with
/// `sunsubscribe`), a fail-over takes the primary away or the connection drops, the slot's owner is read
/// again and the channels subscribed there, with back-off. Like all pub/sub, a message published while
/// no subscription exists is not received.
public final class RedisShardedSubscriber: @unchecked Sendable {
    /// Received messages, in order.
    public let messages: AsyncStream<PubSubMessage>
    private let continuation: AsyncStream<PubSubMessage>.Continuation
    private let url: RedisClusterURL
    private let channels: [String]
    /// The channels' slot.
    public let slot: Int
    private let logger: Logger
    private let lock = NSLock()
    private var stopped = false
    private var activeFD: Int32 = -1
    private var owner: ClusterEndpoint?

    /// Starts a thread that subscribes to `channels`; throws when they span slots.
    public init(cluster url: RedisClusterURL, channels: [String], logger: Logger)
        throws(RedisError)
    {
        guard let first = channels.first else { throw RedisError(.unexpectedReply, "no channel to subscribe to") }
        let slot = ClusterSlot.of(first)
        if let other = channels.first(where: { ClusterSlot.of($0) != slot }) {
            throw RedisError(
                .crossSlot,
                "sharded channels must share one slot: \(first) is in \(slot), \(other) in \(ClusterSlot.of(other))")
        }
        self.url = url
        self.channels = channels
        self.slot = slot
        self.logger = logger
        (messages, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let thread = Thread { [self] in self.loop() }
        thread.name = "redis-ssub"
        thread.start()
    }

    /// The primary the channels are subscribed on, while they are.
    public var subscribedOn: ClusterEndpoint? { lock.withLock { owner } }

    /// Ends the subscription and `messages`.
    public func stop() {
        lock.withLock {
            stopped = true
            if activeFD >= 0 { _ = Glibc.shutdown(activeFD, Int32(SHUT_RDWR)) }
        }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    /// The primary of `slot`, from the first seed (or known primary) that answers.
    private func lookUpOwner(after previous: ClusterEndpoint?) throws(RedisError) -> ClusterEndpoint {
        var lastError = RedisError(.connectionFailed, "no cluster node answered (\(url))")
        for endpoint in (previous.map { [$0] } ?? []) + url.seeds {
            do {
                let connection = try RedisConnection(url: url.url(of: endpoint), timeout: .seconds(2))
                let shards = try connection.command(["CLUSTER", "SHARDS"])
                let map: ClusterTopology
                if case .error = shards {
                    map = try ClusterTopology(
                        slotsReply: try connection.command(["CLUSTER", "SLOTS"]).orThrow(), askedHost: endpoint.host)
                } else {
                    map = try ClusterTopology(shardsReply: shards, askedHost: endpoint.host)
                }
                if let primary = map.primary(for: slot) { return primary }
                lastError = RedisError(.unavailable, "no primary serves slot \(slot) yet")
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private func loop() {
        var backoff = Duration.milliseconds(100)
        var previous: ClusterEndpoint?
        while !isStopped {
            do {
                let endpoint = try lookUpOwner(after: previous)
                previous = endpoint
                let connection = try RedisConnection(url: url.url(of: endpoint))
                connection.setTimeout(nil)
                lock.withLock { activeFD = connection.fileDescriptor }
                if isStopped { break }
                // A MOVED here (the map changed meanwhile) is thrown: read the owner again.
                _ = try connection.command(["SSUBSCRIBE"] + channels).orThrow()
                for _ in 1..<channels.count { _ = try connection.readReply().orThrow() }
                lock.withLock { owner = endpoint }
                backoff = .milliseconds(100)
                reading: while !isStopped {
                    let reply = try connection.readReply()
                    guard let parts = reply.array, parts.count == 3, let kind = parts[0].string else { continue }
                    switch kind {
                    case "smessage":
                        if let channel = parts[1].string, let payload = parts[2].string {
                            continuation.yield(PubSubMessage(channel: channel, payload: payload))
                        }
                    case "sunsubscribe":
                        // The slot moved (or the node stopped serving it): subscribe where it is now.
                        logger.notice(
                            "sharded subscription ended by the server; following the slot",
                            metadata: [
                                "bitten.redis.slot": "\(slot)", "bitten.was_on": "\(endpoint)",
                            ])
                        break reading
                    default: continue
                    }
                }
                lock.withLock {
                    activeFD = -1
                    owner = nil
                }
            } catch {
                lock.withLock {
                    activeFD = -1
                    owner = nil
                }
                if isStopped { break }
                logger.warning(
                    "sharded subscriber lost its subscription",
                    metadata: ["bitten.redis.slot": "\(slot)", "bitten.reason": "\(error)"])
                previous = nil
                Thread.sleep(
                    forTimeInterval: Double(backoff.components.seconds) + Double(backoff.components.attoseconds) / 1e18)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
        continuation.finish()
    }
}
