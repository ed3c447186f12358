import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// The flight recorder: every step of a signal and of each fire made of it, kept 30 days in Redis streams
/// (`trace:signal:{id}` for the intake and the refused attempts, `trace:fire:{id}` for a fire's checks, the command
/// as sent, the EA's answers, the close; `trace:signal:{id}:fires`, the fires of the signal). Each is bounded. A
/// trace's steps written by one flush share one stream entry (`step`, `at`, `data` for each, in order; at most
/// `stepsPerEntry`), so a fire's checks and its command as sent cost one XADD.
///
/// Recording costs the fire path one append to a buffer in memory: a step, or what a step is made of (`later`:
/// its inputs, made into steps at the flush, so that the fire path and the trade engine's commits only copy
/// values). A background task writes the buffer every `flushInterval`, in pipelines of at most `chunk` steps made on
/// a thread of the recorder's own at the lowest CPU priority, so that a flush never takes a thread of the shared pool
/// from the fire path. When Redis is away the buffer keeps up to `maxBuffered` entries, then drops the oldest ones
/// and counts them (`bitten_trace_dropped_total`): the trace never holds a fire back.
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
    /// Where the steps and their text are made (a thread of its own, at the lowest priority).
    let thread = BackgroundThread()
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

    /// Writes what is buffered, `chunk` steps per pipeline; on failure the steps not written go back in front of
    /// the buffer. The steps and their text are made on the recorder's own low-priority thread (`BackgroundThread`):
    /// on a busy machine that work waits for the time the fire path leaves over, instead of taking a thread of the
    /// shared pool from it every flush.
    public func flush() async {
        let pending = buffer.withLock { entries -> [Pending] in
            defer { entries.removeAll(keepingCapacity: true) }
            return entries
        }
        guard !pending.isEmpty else { return }
        let chunks: [Chunk]
        do {
            chunks = try await thread.run { Self.prepare(pending) }
        } catch {
            // The thread is gone (shutdown): the entries stay for the last flush's next try.
            enqueue(front: pending, back: [])
            return
        }
        for (index, chunk) in chunks.enumerated() {
            do {
                for reply in try await redis.pipeline(chunk.commands) { try reply.orThrow() }
                written.increment(by: chunk.steps.count)
                board.count(Self.name, in: chunk.steps.count, out: chunk.steps.count)
            } catch {
                board.count(Self.name, errors: 1)
                let left = chunks[index...].flatMap(\.steps)
                enqueue(front: left.map { .step($0) }, back: [])
                logger.warning(
                    "trace not written; kept for the next try",
                    metadata: ["bitten.error": "\(error)", "bitten.trace.steps": "\(left.count)"])
                return
            }
        }
    }

    /// At most `chunk` steps and the commands that write them (one pipeline).
    struct Chunk: Sendable {
        var steps: [Step]
        var commands: [[String]]
    }

    /// The buffered entries as steps (those recorded as inputs made now), in pipelines of `chunk` steps.
    static func prepare(_ pending: [Pending]) -> [Chunk] {
        var steps: [Step] = []
        steps.reserveCapacity(pending.count)
        for entry in pending {
            switch entry {
            case .step(let step): steps.append(step)
            case .later(let make): steps += make()
            }
        }
        return stride(from: 0, to: steps.count, by: chunk).map { start in
            let part = Array(steps[start..<min(steps.count, start + chunk)])
            return Chunk(steps: part, commands: commands(for: part))
        }
    }

    /// The most steps one stream entry holds (a trace's steps of one flush share an entry, up to this many).
    static let stepsPerEntry = 8

    /// One pipeline: the steps of each trace appended as one stream entry per trace (its steps one after the other,
    /// `step`, `at`, `data` each), the fires listed under their signals with one ZADD per signal, the keys'
    /// lifetimes. A fire's checks and its command as sent, recorded together, cost one XADD instead of two.
    static func commands(for steps: [Step]) -> [[String]] {
        var byKey: [String: [Step]] = [:]
        var keyOrder: [String] = []
        var listed: [String: [String]] = [:]
        var listOrder: [String] = []
        for step in steps {
            let key: String
            if let fire = step.fireID {
                key = RedisKeys.fireTrace(fire)
                if let signal = step.signalID {
                    let list = RedisKeys.signalTraceFires(signal)
                    if listed[list] == nil { listOrder.append(list) }
                    listed[list, default: []] += [Self.at(step.at), fire]
                }
            } else if let signal = step.signalID {
                key = RedisKeys.signalTrace(signal)
            } else {
                continue
            }
            if byKey[key] == nil { keyOrder.append(key) }
            byKey[key, default: []].append(step)
        }
        var commands: [[String]] = []
        commands.reserveCapacity(keyOrder.count * 2 + listOrder.count * 3)
        let ttl = String(Self.retention)
        for key in keyOrder {
            let keySteps = byKey[key]!
            let bound = keySteps[0].fireID != nil ? Self.maxFireSteps : Self.maxSignalSteps
            for start in stride(from: 0, to: keySteps.count, by: Self.stepsPerEntry) {
                var add = ["XADD", key, "MAXLEN", "~", String(bound), "*"]
                for step in keySteps[start..<min(keySteps.count, start + Self.stepsPerEntry)] {
                    // The step's name goes into its data as well, without copying the fields to set it.
                    let data = JSONValue.serialize(step.fields, setting: "step", to: step.step)
                    add += ["step", step.step, "at", Self.at(step.at), "data", data]
                }
                commands.append(add)
            }
            commands.append(["EXPIRE", key, ttl])
        }
        for list in listOrder {
            commands.append(["ZADD", list] + listed[list]!)
            commands.append(["ZREMRANGEBYRANK", list, "0", String(-Self.maxSignalSteps - 1)])
            commands.append(["EXPIRE", list, ttl])
        }
        return commands
    }

    static func at(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 6) ?? "0" }

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
        await thread.shutdown()
        board.set(Self.name, .stopped)
    }
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
        try await entries(RedisKeys.fireTrace(fireID), keep: FlightRecorder.maxFireSteps)
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
        return (
            try await entries(RedisKeys.signalTrace(signalID), keep: FlightRecorder.maxSignalSteps), fires,
            try replies[1].orThrow().int ?? 0
        )
    }

    /// A trace's steps, oldest first: each entry holds one or more (`step`, `at`, `data`, …), the latest
    /// `maxFireSteps` of a fire (its stream is trimmed by entries, which hold up to `stepsPerEntry` steps each).
    func entries(_ key: String, keep: Int = .max) async throws -> [Entry] {
        var steps: [Entry] = []
        for entry in StreamEntry.list(try await redis.command(["XRANGE", key, "-", "+"])) {
            var current: (step: String, at: Double?, data: [String: String])?
            func close() {
                if let done = current, let at = done.at {
                    steps.append(Entry(step: done.step, at: at, data: done.data))
                }
                current = nil
            }
            for (name, value) in entry.fields {
                switch name {
                case "step":
                    close()
                    current = (value, nil, [:])
                case "at": current?.at = Double(value)
                case "data":
                    current?.data =
                        (try? JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: String]) ?? [:]
                default: continue
                }
            }
            close()
        }
        return steps.count > keep ? Array(steps.suffix(keep)) : steps
    }
}
