import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// The flight recorder: every step of a signal and of each fire made of it, kept 30 days in Redis streams
/// (`trace:signal:{id}` for the intake and the refused attempts, `trace:fire:{id}` for a fire's checks, the command
/// as sent, the EA's answers, the close; `trace:signal:{id}:fires`, the fires of the signal). Each is bounded.
///
/// Recording costs the fire path one append to a buffer in memory: a step, or what a step is made of (`later`:
/// its inputs, made into steps at the flush, so that the fire path and the trade engine's commits only copy
/// values). A background task writes the buffer every `flushInterval`, in pipelines of at most `chunk` steps, and
/// lets other tasks run between chunks, so that a flush never holds a thread of the shared pool for long. When
/// Redis is away the buffer keeps up to `maxBuffered` entries, then drops the oldest ones and counts them
/// (`bitten_trace_dropped_total`): the trace never holds a fire back.
public final class FlightRecorder: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "flight_recorder"
    /// How long a trace is kept.
    public static let retention = 30 * 86_400
    /// The most steps one fire's trace keeps (the oldest go first).
    public static let maxFireSteps = 200
    /// The most steps of a signal's own trace (intake, refused attempts), and the most fires it lists.
    public static let maxSignalSteps = 5_000

    /// One step.
    public struct Step: Sendable, Equatable {
        /// The signal (`trace:signal:{id}`), when the step is the signal's.
        public var signalID: String?
        /// The fire (`trace:fire:{id}`), when the step is a fire's.
        public var fireID: String?
        /// What happened: `intake`, `refused`, `checks`, `sent`, `filled`, `closed`, …
        public var step: String
        /// When (epoch seconds).
        public var at: Double
        /// Its figures, as text.
        public var fields: [String: String]
    }

    let redis: RedisClient
    let board: ServiceBoard
    let logger: Logger
    let flushInterval: Duration
    let maxBuffered: Int
    let buffer = Mutex<[Pending]>([])
    /// The most steps one pipeline of a flush writes.
    static let chunk = 64
    let dropped = Counter(label: "bitten_trace_dropped_total")
    let written = Counter(label: "bitten_trace_steps_total")

    /// A recorder writing to `redis`.
    public init(
        redis: RedisClient, board: ServiceBoard, logger: Logger, flushInterval: Duration = .milliseconds(50),
        maxBuffered: Int = 200_000
    ) {
        self.redis = redis
        self.board = board
        self.logger = logger
        self.flushInterval = flushInterval
        self.maxBuffered = maxBuffered
        board.register(Self.name)
    }

    /// Records a step of a signal (its intake, an attempt refused before it became a fire).
    public func signal(_ signalID: String, _ step: String, at: Double, _ fields: [String: String]) {
        append(Step(signalID: signalID, fireID: nil, step: step, at: at, fields: fields))
    }

    /// Records a step of a fire; `signalID` (on its first step) lists the fire under its signal.
    public func fire(
        _ fireID: String, signalID: String? = nil, _ step: String, at: Double, _ fields: [String: String]
    ) {
        append(Step(signalID: signalID, fireID: fireID, step: step, at: at, fields: fields))
    }

    /// Records the steps `make` gives, made at the next flush from the values it captured (so that recording
    /// costs the caller a copy of its inputs, not the steps' text).
    public func later(_ make: @escaping @Sendable () -> [Step]) { enqueue(front: [], back: [.later(make)]) }

    private func append(_ step: Step) { enqueue(front: [], back: [.step(step)]) }

    /// What the buffer holds: a step, or steps still to be made.
    enum Pending: Sendable {
        case step(Step)
        case later(@Sendable () -> [Step])
    }

    /// Adds entries to the buffer (in front: those a flush could not write); past `maxBuffered` the oldest go.
    private func enqueue(front: [Pending], back: [Pending]) {
        let overflow = buffer.withLock { steps -> Int in
            if !front.isEmpty { steps.insert(contentsOf: front, at: 0) }
            steps.append(contentsOf: back)
            guard steps.count > maxBuffered else { return 0 }
            let extra = steps.count - maxBuffered
            steps.removeFirst(extra)
            return extra
        }
        if overflow > 0 { dropped.increment(by: overflow) }
    }

    /// Writes what is buffered, `chunk` steps per pipeline, letting other tasks run between chunks; on failure
    /// the steps not written go back in front of the buffer.
    public func flush() async {
        let pending = buffer.withLock { entries -> [Pending] in
            defer { entries.removeAll(keepingCapacity: true) }
            return entries
        }
        guard !pending.isEmpty else { return }
        var steps: [Step] = []
        steps.reserveCapacity(pending.count)
        for (index, entry) in pending.enumerated() {
            switch entry {
            case .step(let step): steps.append(step)
            case .later(let make): steps += make()
            }
            if index % Self.chunk == Self.chunk - 1 { await Task.yield() }
        }
        var start = 0
        while start < steps.count {
            let end = min(steps.count, start + Self.chunk)
            do {
                try await write(steps[start..<end])
            } catch {
                board.count(Self.name, errors: 1)
                enqueue(front: steps[start...].map { .step($0) }, back: [])
                logger.warning(
                    "trace not written; kept for the next try",
                    metadata: ["bitten.error": "\(error)", "bitten.trace.steps": "\(steps.count - start)"])
                return
            }
            start = end
            await Task.yield()
        }
    }

    /// One pipeline: each step appended to its stream, the fires listed under their signals, the keys' lifetimes.
    private func write(_ steps: ArraySlice<Step>) async throws {
        var commands: [[String]] = []
        commands.reserveCapacity(steps.count * 2)
        var expiring: Set<String> = []
        let ttl = String(Self.retention)
        for step in steps {
            var data = step.fields
            data["step"] = step.step
            let json = Self.json(data)
            let at = PlainDecimal.format(step.at, maxFractionDigits: 6) ?? "0"
            if let fire = step.fireID {
                let key = RedisKeys.fireTrace(fire)
                commands.append([
                    "XADD", key, "MAXLEN", "~", String(Self.maxFireSteps), "*", "step", step.step, "at", at, "data",
                    json,
                ])
                expiring.insert(key)
                if let signal = step.signalID {
                    let list = RedisKeys.signalTraceFires(signal)
                    commands.append(["ZADD", list, at, fire])
                    commands.append(["ZREMRANGEBYRANK", list, "0", String(-Self.maxSignalSteps - 1)])
                    expiring.insert(list)
                }
            } else if let signal = step.signalID {
                let key = RedisKeys.signalTrace(signal)
                commands.append([
                    "XADD", key, "MAXLEN", "~", String(Self.maxSignalSteps), "*", "step", step.step, "at", at, "data",
                    json,
                ])
                expiring.insert(key)
            }
        }
        for key in expiring.sorted() { commands.append(["EXPIRE", key, ttl]) }
        for reply in try await redis.pipeline(commands) { try reply.orThrow() }
        written.increment(by: steps.count)
        board.count(Self.name, in: steps.count, out: steps.count)
    }

    /// Writes the buffer every `flushInterval` until shutdown, then once more.
    public func run() async throws {
        board.set(Self.name, .running)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await flush()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.flushInterval) }
            }
        } onGracefulShutdown: {
        }
        await flush()
        board.set(Self.name, .stopped)
    }

    static func json(_ fields: [String: String]) -> String { JSONValue.serialize(fields) }
}

/// Reading traces back (`GET /signals/{id}/trace`, `GET /fires/{id}/trace`, `bitten trace`).
public struct TraceReader: Sendable {
    /// The Redis the recorder writes to.
    public let redis: RedisClient

    /// A reader over `redis`.
    public init(redis: RedisClient) { self.redis = redis }

    /// One step as read.
    public struct Entry: Sendable, Equatable, Codable {
        /// What happened.
        public var step: String
        /// When (epoch seconds).
        public var at: Double
        /// Its figures.
        public var data: [String: String]
    }

    /// A fire's steps, oldest first.
    public func fire(_ fireID: String) async throws -> [Entry] {
        try await entries(RedisKeys.fireTrace(fireID))
    }

    /// A signal's own steps, oldest first, and its fires (oldest first, `offset` and `limit` of them).
    public func signal(_ signalID: String, limit: Int, offset: Int) async throws -> (
        steps: [Entry], fires: [String], totalFires: Int
    ) {
        let replies = try await redis.pipeline([
            ["ZRANGE", RedisKeys.signalTraceFires(signalID), String(offset), String(offset + limit - 1)],
            ["ZCARD", RedisKeys.signalTraceFires(signalID)],
        ])
        let fires = (try replies[0].orThrow().array ?? []).compactMap(\.string)
        return (try await entries(RedisKeys.signalTrace(signalID)), fires, try replies[1].orThrow().int ?? 0)
    }

    func entries(_ key: String) async throws -> [Entry] {
        StreamEntry.list(try await redis.command(["XRANGE", key, "-", "+"])).compactMap { entry in
            guard let step = entry["step"], let at = entry["at"].flatMap(Double.init) else { return nil }
            let data =
                entry["data"].flatMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]
                } ?? [:]
            return Entry(step: step, at: at, data: data)
        }
    }
}
