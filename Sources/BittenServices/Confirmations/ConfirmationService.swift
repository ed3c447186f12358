import BittenCore
import DequeModule
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// The confirmation channel (PULL 5558). Every accepted `confirmation` and `close_confirmation` is
/// appended to the durable ledger of its user's trade shard (`stream:confirmations:{tN}`); `pong` goes to
/// the node registry.
/// Receiving never waits for Redis: accepted entries are written to a journal file and queue in
/// memory, and a writer appends them in pipelined batches (a process that dies loses nothing it accepted:
/// the next start takes the journal into the spool). When Redis cannot be reached, batches go to the spool file (fsync'd) and are
/// replayed in order once it answers again.
///
/// Exactly once: each entry carries its writer's id and a sequence number that only grows (receive
/// time in microseconds, bumped to stay unique); the append script keeps the highest sequence per
/// writer and shard (`confirmations:writers:{tN}`) and skips anything at or below it, so a retried
/// pipeline or a replayed spool never adds an entry twice. A batch of entries is one script call per shard.
///
/// The trade engine of the same process takes what was appended straight from here (`handoff`), with the
/// events already decoded, when it owns the shard and stands right before the new stream entry; otherwise
/// (`onAppended`) its reader reads the stream.
public final class ConfirmationService: Service, Sendable {
    /// An accepted entry: what the journal and the ledger keep (`writer, sequence, field, value, …`) and,
    /// when this process decoded the message, its ledger event.
    struct Accepted: Sendable {
        var entry: [String]
        /// Whether `event` is this entry's (entries read back from the spool were not decoded here).
        var decoded = false
        var event: LedgerEvent?
    }

    /// Hands appended messages to the trade engine: shard, stream entry id, the id before it, the messages
    /// (`id#n`) and their events. Returns whether the engine applied them.
    public typealias Handoff = @Sendable (_ shard: Int, _ id: String, _ previous: String, _ messages: [StreamEntry],
                                          _ events: [LedgerEvent?]) -> Bool
    /// The last ledger entry the engine applied for a shard (nil: it does not own the shard).
    public typealias AppliedCursor = @Sendable (_ shard: Int) -> String?

    public static let name = "confirmations"

    private let input: LoopSocket
    private let registry: NodeRegistry
    private let redis: RedisClient
    private let board: ServiceBoard
    private let metrics: WireMetrics
    private let logger: Logger
    private let throttle = LogThrottle()
    private let now: @Sendable () -> Double
    private let queue = Mutex<Deque<Accepted>>([])
    private let (wake, wakeContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    private let onAppended: @Sendable () -> Void
    private let handoff: Handoff?
    private let appliedCursor: AppliedCursor?
    /// Appended messages on their way to the engine, applied in order by a task of their own while the writer
    /// appends the next batch.
    private struct Handed: Sendable {
        var shard: Int
        var id: String
        var previous: String
        var messages: [StreamEntry]
        var events: [LedgerEvent?]
    }
    private let (handed, handedContinuation) = AsyncStream<[Handed]>.makeStream()
    private let handedBatches = Atomic<Int>(0)
    /// The last stream entry handed over per shard: the next one follows it (the engine may not have applied it yet).
    private let lastHanded = Mutex<[Int: String]>([:])
    private let spool: ConfirmationSpool?
    /// Every accepted entry until it is in the ledger (or the spool): what a dead process held in memory.
    private let journal: ConfirmationSpool?
    private let writerID: String
    private let sequence = Mutex<Int>(0)
    private let redisDown = Mutex<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let valuation: (any ValuationQuotes)?
    private let legacyText: Counter
    /// Why the ledger is not written here (the trade path does not run on a Redis Cluster yet): pongs
    /// still reach the registry, anything else is kept in the spool, in order, for a run on one Redis.
    private let ledgerOff: String?
    private let keptThrottle = LogThrottle()
    /// Trade shards: the ledger of a user is its shard's stream.
    private let shards: Int

    /// Appends a batch of entries as one stream entry (each an `m` field, see `LedgerRecord`), leaving out
    /// those this writer already appended (or a later one), and says whether the stream ended where the
    /// engine here stands (`Scripts/append_confirmations.lua`).
    static let appendScript = LuaScripts.appendConfirmations

    public init(input: LoopSocket, registry: NodeRegistry, redis: RedisClient, board: ServiceBoard, port: Int,
                logger: Logger, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
                spoolDirectory: String? = nil, writerID: String = "bitten", valuation: (any ValuationQuotes)? = nil,
                ledgerOff: String? = nil, shards: Int = 16, handoff: Handoff? = nil, appliedCursor: AppliedCursor? = nil,
                onAppended: @escaping @Sendable () -> Void = {}) {
        self.ledgerOff = ledgerOff
        self.shards = max(1, shards)
        self.valuation = valuation
        self.legacyText = Counter(label: "bitten_legacy_text_messages_total", dimensions: [("port", String(port))])
        self.onAppended = onAppended
        self.handoff = handoff
        self.appliedCursor = appliedCursor
        self.writerID = writerID
        var spool: ConfirmationSpool?
        var journal: ConfirmationSpool?
        if let spoolDirectory {
            do {
                spool = try ConfirmationSpool(directory: spoolDirectory)
                journal = try ConfirmationSpool(directory: spoolDirectory, name: "confirmations.journal", sync: false)
            } catch {
                logger.error("cannot open the confirmation spool; entries will wait in memory while Redis is away",
                             metadata: ["dir": "\(spoolDirectory)", "error": "\(error)"])
            }
        }
        if let spool, let journal, journal.count > 0 {
            // The last run died with entries accepted and not yet in the ledger: they join the spool, in order,
            // once each (the append script skips any that did reach the ledger).
            do {
                let recovered = try journal.entries()
                try spool.replace(with: Self.merged(try spool.entries(), recovered))
                try journal.clear()
                logger.notice("confirmations of the last run recovered from its journal", metadata: ["entries": "\(recovered.count)"])
            } catch {
                logger.error("could not recover the confirmation journal", metadata: ["error": "\(error)"])
            }
        }
        self.spool = spool
        self.journal = journal
        self.input = input
        self.registry = registry
        self.redis = redis
        self.board = board
        self.metrics = WireMetrics(port: port)
        self.logger = logger
        self.now = now
        board.register(Self.name)
    }

    /// Entries accepted but not yet in Redis (memory and spool).
    public var backlog: Int { queue.withLock { $0.count } + (spool?.count ?? 0) }

    /// Entries waiting in the spool file.
    public var spooled: Int { spool?.count ?? 0 }

    /// The next sequence number: receive time in µs, kept strictly increasing.
    private func nextSequence(at time: Double) -> Int {
        sequence.withLock { last in
            last = max(last + 1, Int(time * 1_000_000))
            return last
        }
    }

    public func run() async throws {
        board.set(Self.name, .running, detail: ledgerOff.map { "pongs only (\($0)); confirmations are kept in the spool" })
        await withDiscardingTaskGroup { group in
            group.addTask {
                await withGracefulShutdownHandler {
                    for await batch in self.input.messages.cancelOnGracefulShutdown() { self.handle(batch) }
                } onGracefulShutdown: {}
                self.stopping.store(true, ordering: .relaxed)
                self.wakeContinuation.finish()
            }
            group.addTask {
                await self.writeLoop()
                self.handedContinuation.finish()
            }
            group.addTask { await self.handOverLoop() }
        }
        board.set(Self.name, .stopped)
    }

    func handle(_ batch: [Message]) {
        let at = now()
        metrics.receivedMessages(batch.count)
        var entries: [Accepted] = []
        var rejected = 0
        for message in batch {
            guard message.frames.count == 1 else {
                rejected += 1
                reject(WireError(.malformed, "expected one JSON frame, got \(message.frames.count)"))
                continue
            }
            do {
                let (decoded, legacy) = try EAMessage.decodeNoting(message.frames[0], channel: .confirm)
                if legacy { legacyText.increment() }
                // The registry learns that the EA reads its commands (pings wait for that).
                registry.handle(decoded, at: at)
                switch decoded {
                case .pong: break
                default:
                    let seq = String(nextSequence(at: at))
                    let receivedAt = PlainDecimal.format(at, maxFractionDigits: 6) ?? "0"
                    var entry = [
                        writerID, seq, "type", decoded.typeName, "user_uuid", decoded.userUUID,
                        "received_at", receivedAt,
                        "entry_id", writerID + ":" + seq,
                        // Text in the EA's code page is kept as the characters it meant.
                        "payload", legacy ? Windows1252.decode(message.frames[0]) : String(decoding: message.frames[0], as: UTF8.self),
                    ]
                    // A confirmation that does not belong to the node (another account, an old node id, another
                    // machine) is kept in the ledger with the reason and never applied.
                    if let account = Self.account(of: decoded), let nodeID = Self.nodeID(of: decoded),
                       let reason = registry.untrusted(uuid: decoded.userUUID, account: account, nodeID: nodeID, peer: message.peerAddress) {
                        entry += ["untrusted", reason, "peer", message.peerAddress ?? ""]
                    }
                    // The EA never says what it closed at: the market at this moment goes with the entry,
                    // so the close is valued the same however late or often the entry is applied.
                    var quotes = ""
                    if case .closeConfirmation = decoded, let valued = valuation?.valuationQuotes(for: decoded.userUUID) {
                        entry += ["quotes", valued]
                        quotes = valued
                    }
                    // The event as a replay of the entry would read it (the time from its text).
                    let event = LedgerEvent(message: decoded, receivedAt: Double(receivedAt) ?? at, quotes: quotes)
                    entries.append(Accepted(entry: entry, decoded: true, event: event))
                }
            } catch {
                rejected += 1
                reject(error)
            }
        }
        if !entries.isEmpty, let ledgerOff {
            keep(entries, because: ledgerOff)
        } else if !entries.isEmpty {
            let journaled: Bool = queue.withLock { queue in
                defer { queue += entries }
                do {
                    try journal?.append(entries.map(\.entry))
                    return true
                } catch {
                    return false
                }
            }
            if !journaled, let suppressed = keptThrottle.allow() {
                logger.error("confirmation journal not written: a crash now would lose what waits in memory",
                             metadata: ["suppressed_since_last": "\(suppressed)"])
            }
            wakeContinuation.yield()
        }
        board.count(Self.name, in: batch.count - rejected, errors: rejected)
    }

    static func account(of message: EAMessage) -> Int? {
        switch message {
        case .confirmation(let c): c.accountNumber
        case .closeConfirmation(let c): c.accountNumber
        default: nil
        }
    }

    static func nodeID(of message: EAMessage) -> String? {
        switch message {
        case .confirmation(let c): c.nodeID
        case .closeConfirmation(let c): c.nodeID
        default: nil
        }
    }

    private func writeLoop() async {
        if ledgerOff != nil { return }
        // What an earlier run left in the spool is replayed now, not after the next confirmation.
        if (spool?.count ?? 0) > 0 { wakeContinuation.yield() }
        for await _ in wake {
            await drain()
        }
        await drain()
    }

    /// Spool first (older), then memory, in batches; on a Redis failure the memory batch goes to the
    /// spool and the writer backs off and probes again.
    private func drain() async {
        var backoff = Duration.milliseconds(50)
        while true {
            do {
                if let spool, spool.count > 0 {
                    let spooled = try spool.entries()
                    for start in stride(from: 0, to: spooled.count, by: 1000) {
                        try await append(spooled[start..<min(spooled.count, start + 1000)].map { Accepted(entry: $0) })
                    }
                    try spool.clear()
                    logger.notice("spooled confirmations replayed", metadata: ["entries": "\(spooled.count)"])
                }
                let batch = queue.withLock { Array($0.prefix(1000)) }
                guard !batch.isEmpty else {
                    markRedis(up: true)
                    return
                }
                do {
                    try await append(batch)
                    taken(batch.count)
                } catch {
                    // Keep the order: this batch joins the spool behind what is already there.
                    if let spool {
                        try spool.append(batch.map(\.entry))
                        taken(batch.count)
                    }
                    throw error
                }
                markRedis(up: true)
                backoff = .milliseconds(50)
            } catch {
                markRedis(up: false, error: error)
                if Task.isCancelled || stopping.load(ordering: .relaxed) {
                    // Stopping while Redis is away: what is still in memory goes to the spool for the next start.
                    let waiting = queue.withLock { q -> [[String]] in
                        defer { q = [] }
                        return q.map(\.entry)
                    }
                    if let spool, !waiting.isEmpty {
                        do {
                            try spool.append(waiting)
                            try journal?.clear()
                        } catch {
                            logger.error("could not spool confirmations at shutdown (the journal keeps them)",
                                         metadata: ["entries": "\(waiting.count)"])
                        }
                    }
                    return
                }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
                // Move what arrived meanwhile to the spool too, so memory stays small during an outage.
                if let spool {
                    let waiting = queue.withLock { q -> [Accepted] in
                        defer { q = [] }
                        return Array(q)
                    }
                    do {
                        try spool.append(waiting.map(\.entry))
                        queue.withLock { if $0.isEmpty { try? journal?.clear() } }
                    } catch { queue.withLock { $0.prepend(contentsOf: waiting) } }
                }
            }
        }
    }

    /// One script call: a shard's entries of one writer, in order.
    private struct Call {
        var shard: Int
        var args: [String]
        /// Each message's fields (its stream id is known once appended).
        var messages: [[(String, String)]] = []
        var events: [LedgerEvent?] = []
        var decoded = true
    }

    /// Appends entries through the idempotent script, one call (one stream entry) per shard and writer
    /// (entries from an older spool may carry another writer id), each shard's in order. What was appended
    /// goes to the engine here when it takes it (`handoff`); the reader is woken for the rest.
    private func append(_ entries: [Accepted]) async throws {
        var calls: [Call] = []
        var open: [Int: Int] = [:]  // shard → index of its current call
        for accepted in entries where accepted.entry.count >= 2 {
            let entry = accepted.entry
            var fields: [(String, String)] = []
            fields.reserveCapacity(entry.count / 2)
            var uuid = ""
            var index = 2
            while index + 1 < entry.count {
                fields.append((entry[index], entry[index + 1]))
                if entry[index] == "user_uuid" { uuid = entry[index + 1] }
                index += 2
            }
            let shard = ShardKeys.shard(of: uuid, count: shards)
            let at: Int
            if let current = open[shard], calls[current].args[5] == entry[0] {
                at = current
            } else {
                let keys = ShardKeys(shard: shard)
                at = calls.count
                open[shard] = at
                // The script tells whether the stream ended where the engine here stands (so it may take the entry).
                let expected = handoff == nil ? "" : lastHanded.withLock { $0[shard] } ?? appliedCursor?(shard) ?? ""
                calls.append(Call(shard: shard, args: ["EVALSHA", "", "2", keys.confirmations, keys.list("confirmations:writers"), entry[0], expected]))
            }
            calls[at].args.append(entry[1])
            calls[at].args.append(LedgerRecord.encode(fields))
            calls[at].messages.append(fields)
            calls[at].events.append(accepted.event)
            calls[at].decoded = calls[at].decoded && accepted.decoded
        }
        guard !calls.isEmpty else { return }
        var replies: [RedisReply] = []
        if redis.isCluster {
            // Each shard's ledger is in its own slot: one script call per shard, in order within each.
            for call in calls {
                replies.append(try await redis.evaluate(Self.appendScript, keys: [call.args[3], call.args[4]], args: Array(call.args.dropFirst(5))))
            }
        } else {
            let prepared = calls.map(\.args)
            replies = try await redis.withConnection { connection in
                let sha = try connection.scriptSHA(Self.appendScript)
                let replies = try connection.pipeline(prepared.map { call in
                    var call = call
                    call[1] = sha
                    return call
                })
                if replies.contains(where: RedisConnection.isNoScript) {
                    connection.forgetScripts()
                    throw RedisError(.server, "NOSCRIPT: the append script was reloaded; the batch is sent again")
                }
                if let failure = replies.first(where: { if case .error = $0 { return true } else { return false } }) {
                    throw RedisError(.server, "append failed: \(failure)")
                }
                return replies
            }
        }
        var readerNeeded = false
        var handing: [Handed] = []
        for (call, reply) in zip(calls, replies) {
            guard let parts = reply.array, parts.count == 3, let count = parts[0].int else {
                readerNeeded = true
                continue
            }
            if count == 0 { continue }
            guard count == call.messages.count, call.decoded, handoff != nil, let id = parts[1].string, let previous = parts[2].string,
                  !previous.isEmpty else {
                readerNeeded = true
                lastHanded.withLock { $0[call.shard] = nil }
                continue
            }
            let messages = call.messages.enumerated().map { StreamEntry(id: "\(id)#\($0.offset)", fields: $0.element) }
            handing.append(Handed(shard: call.shard, id: id, previous: previous, messages: messages, events: call.events))
            lastHanded.withLock { $0[call.shard] = id }
        }
        if readerNeeded { onAppended() }
        if !handing.isEmpty {
            // A few batches ahead of the engine at most: beyond that the writer waits (memory stays bounded).
            while handedBatches.load(ordering: .relaxed) >= Self.handedAhead, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(1))
            }
            handedBatches.add(1, ordering: .relaxed)
            handedContinuation.yield(handing)
        }
    }

    /// Batches handed over and not yet applied after which the writer waits.
    static let handedAhead = 4

    /// Applies handed-over batches in order; one the engine does not take (the shard moved, another writer's
    /// entry in between) is left to its reader, which is woken.
    private func handOverLoop() async {
        guard let handoff else { return }
        for await batch in handed {
            var readerNeeded = false
            for item in batch where !handoff(item.shard, item.id, item.previous, item.messages, item.events) {
                readerNeeded = true
                lastHanded.withLock { if $0[item.shard] == item.id { $0[item.shard] = nil } }
            }
            handedBatches.subtract(1, ordering: .relaxed)
            if readerNeeded { onAppended() }
        }
    }

    /// The first `count` entries of the queue are in the ledger or the spool; once nothing waits in memory,
    /// the journal is emptied (under the queue's lock, so nothing accepted meanwhile is dropped from it).
    private func taken(_ count: Int) {
        queue.withLock { queue in
            queue.removeFirst(count)
            if queue.isEmpty {
                try? journal?.clear()
            } else if let journal, journal.count > max(Self.journalRewriteAt, 2 * queue.count) {
                // Never empty under a steady load: rewritten to what still waits once most of it is in the
                // ledger, so it stays small and each entry is rewritten a bounded number of times.
                try? journal.replace(with: queue.map(\.entry))
            }
        }
    }

    /// Journal lines after which a journal that never empties is rewritten.
    static let journalRewriteAt = 50_000

    /// Spool and journal entries as one ordered list, each (writer, sequence) once.
    static func merged(_ spooled: [[String]], _ journaled: [[String]]) -> [[String]] {
        var seen: Set<String> = []
        var all: [[String]] = []
        for entry in spooled + journaled where entry.count >= 2 {
            if seen.insert(entry[0] + "\u{1}" + entry[1]).inserted { all.append(entry) }
        }
        return all.enumerated().sorted { a, b in
            let (x, y) = (Int(a.element[1]) ?? 0, Int(b.element[1]) ?? 0)
            return x != y ? x < y : a.offset < b.offset
        }.map(\.element)
    }

    private func markRedis(up: Bool, error: (any Error)? = nil) {
        let changed = redisDown.withLock { down in
            defer { down = !up }
            return down == up
        }
        guard changed else { return }
        if up {
            board.set(Self.name, .running)
            logger.notice("Redis reachable again; confirmations flow to the stream")
        } else {
            board.set(Self.name, .running, detail: "Redis unreachable: confirmations are spooled to disk")
            logger.error("Redis unreachable; spooling confirmations", metadata: ["error": "\(error.map { "\($0)" } ?? "")"])
        }
    }

    /// No ledger here: the entries go to the spool (memory when there is none), never to Redis.
    private func keep(_ entries: [Accepted], because reason: String) {
        var spooled = false
        if let spool {
            do {
                try spool.append(entries.map(\.entry))
                spooled = true
            } catch {
                logger.error("could not spool confirmations", metadata: ["entries": "\(entries.count)", "error": "\(error)"])
            }
        }
        if !spooled { queue.withLock { $0.append(contentsOf: entries) } }
        if let suppressed = keptThrottle.allow() {
            logger.warning("confirmation kept, not applied: the ledger is off here", metadata: [
                "entries": "\(entries.count)", "reason": "\(reason)", "backlog": "\(backlog)", "suppressed_since_last": "\(suppressed)",
            ])
        }
    }

    private func reject(_ error: WireError) {
        metrics.rejected(error)
        if let suppressed = throttle.allow() {
            logger.warning("message rejected", metadata: ["port": "confirm", "reason": "\(error)", "suppressed_since_last": "\(suppressed)"])
        }
    }
}
