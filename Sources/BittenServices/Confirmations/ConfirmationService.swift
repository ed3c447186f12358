import BittenCore
import Foundation
import Logging
import Redis
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// The confirmation channel (PULL 5558). Every accepted `confirmation` and `close_confirmation` is
/// appended to the durable ledger `stream:confirmations`; `pong` goes to the node registry.
/// Receiving never waits for Redis: accepted entries queue in memory and a writer appends them in
/// pipelined batches, keeping them queued (in order) while Redis is away.
public final class ConfirmationService: Service, Sendable {
    public static let name = "confirmations"

    private let input: LoopSocket
    private let registry: NodeRegistry
    private let redis: RedisClient
    private let board: ServiceBoard
    private let metrics: WireMetrics
    private let logger: Logger
    private let throttle = LogThrottle()
    private let now: @Sendable () -> Double
    private let queue = Mutex<[[String]]>([])
    private let (wake, wakeContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    private let onAppended: @Sendable () -> Void

    public init(input: LoopSocket, registry: NodeRegistry, redis: RedisClient, board: ServiceBoard, port: Int,
                logger: Logger, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
                onAppended: @escaping @Sendable () -> Void = {}) {
        self.onAppended = onAppended
        self.input = input
        self.registry = registry
        self.redis = redis
        self.board = board
        self.metrics = WireMetrics(port: port)
        self.logger = logger
        self.now = now
        board.register(Self.name)
    }

    /// Entries accepted but not yet in Redis.
    public var backlog: Int { queue.withLock { $0.count } }

    public func run() async throws {
        board.set(Self.name, .running)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await withGracefulShutdownHandler {
                    for await batch in self.input.messages.cancelOnGracefulShutdown() { self.handle(batch) }
                } onGracefulShutdown: {}
                self.wakeContinuation.finish()
            }
            group.addTask { await self.writeLoop() }
        }
        board.set(Self.name, .stopped)
    }

    func handle(_ batch: [Message]) {
        let at = now()
        metrics.receivedMessages(batch.count)
        var entries: [[String]] = []
        var rejected = 0
        for message in batch {
            guard message.frames.count == 1 else {
                rejected += 1
                reject(WireError(.malformed, "expected one JSON frame, got \(message.frames.count)"))
                continue
            }
            do {
                let decoded = try EAMessage.decode(message.frames[0], channel: .confirm)
                switch decoded {
                case .pong: registry.handle(decoded, at: at)
                default:
                    entries.append([
                        "XADD", RedisKeys.confirmations, "*", "type", decoded.typeName, "user_uuid", decoded.userUUID,
                        "received_at", PlainDecimal.format(at, maxFractionDigits: 6) ?? "0",
                        "payload", String(decoding: message.frames[0], as: UTF8.self),
                    ])
                }
            } catch {
                rejected += 1
                reject(error)
            }
        }
        if !entries.isEmpty {
            queue.withLock { $0 += entries }
            wakeContinuation.yield()
        }
        board.count(Self.name, in: batch.count - rejected, errors: rejected)
    }

    private func writeLoop() async {
        for await _ in wake {
            await drain()
        }
        await drain()
    }

    private func drain() async {
        var backoff = Duration.milliseconds(50)
        while true {
            let batch = queue.withLock { Array($0.prefix(1000)) }
            guard !batch.isEmpty else { return }
            do {
                _ = try await redis.pipeline(batch)
                queue.withLock { $0.removeFirst(batch.count) }
                onAppended()
            } catch {
                if Task.isCancelled { return }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }

    private func reject(_ error: WireError) {
        metrics.rejected(error)
        if let suppressed = throttle.allow() {
            logger.warning("message rejected", metadata: ["port": "confirm", "reason": "\(error)", "suppressed_since_last": "\(suppressed)"])
        }
    }
}
