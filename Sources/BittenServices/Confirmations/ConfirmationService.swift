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
/// The trade engine of the same process takes what was appended straight from here (`HandOver`), with the
/// events already decoded, when it owns the shard and stands right before the new stream entry; otherwise
/// its reader reads the stream (woken).
public final class ConfirmationService: Service, Sendable {
    /// An accepted entry: what the journal and the ledger keep (`writer, sequence, field, value, …`) and,
    /// when this process decoded the message, its ledger event.
    struct Accepted: Sendable {
        var entry: [String]
        /// Whether `event` is this entry's (entries read back from the spool were not decoded here).
        var decoded = false
        var event: LedgerEvent?
    }

    /// The trade engine of the same process (`TradeEngine`), as the writer sees it: it applies what was just
    /// appended (`appended`), says where it stands (`appliedCursor`), is told what is about to be handed over, so
    /// that its reader leaves those ledgers alone meanwhile (read back from the stream, the entries would be decoded
    /// twice and the hand-over would find them taken), gives room, so that a burst reaches it no faster than it is
    /// stored, and has its reader woken for entries it is left to read (`wake`).
    public protocol HandOver: Sendable {
        /// Applies the messages appended to `shard`'s ledger as stream entry `id`, right after `previous`
        /// (`messages` named `id#n`, with the events the writer decoded); whether it applied them.
        func appended(
            shard: Int, id: String, after previous: String, messages: [StreamEntry], events: [LedgerEvent?]
        ) -> Bool
        /// The last ledger entry applied for `shard` (nil: the shard is not owned here).
        func appliedCursor(_ shard: Int) -> String?
        /// Reads and applies `shard`'s ledger up to `previous` (entries left to the reader that come before a batch
        /// about to be handed over); whether the engine now stands at `previous`.
        func catchUp(shard: Int, through previous: String) async -> Bool
        /// An append to `shard`'s ledger is on its way (sent before the append; its id is not known yet).
        func handOverAnnounced(shard: Int)
        /// Stream entry `id` of `shard`'s ledger is about to be handed over.
        func handOverComing(shard: Int, through id: String)
        /// Nothing is coming for `shard` after all (the append failed, or its entry is left to the reader).
        func handOverWithdrawn(shard: Int)
        /// Returns once the engine may apply more of `shard`'s messages.
        func waitForRoom(shard: Int) async
        /// Entries were appended that only the engine's reader will apply: it reads the stream now.
        func wake()
    }

    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "confirmations"

    let input: LoopSocket
    let registry: NodeRegistry
    let redis: RedisClient
    let board: ServiceBoard
    let metrics: WireMetrics
    let logger: Logger
    let throttle = LogThrottle()
    let now: @Sendable () -> Double
    let queue = Mutex<Deque<Accepted>>([])
    let (wake, wakeContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    /// The trade engine of this process (nil: none here; its readers elsewhere read the ledger).
    let handOver: (any HandOver)?
    /// Appended messages on their way to the engine, applied in order by a task of their own while the writer
    /// appends the next batch.
    struct Handed: Sendable {
        var shard: Int
        var id: String
        var previous: String
        var messages: [StreamEntry]
        var events: [LedgerEvent?]
    }
    let (handed, handedContinuation) = AsyncStream<[Handed]>.makeStream()
    let handedBatches = Atomic<Int>(0)
    /// Ledger entries the engine took from the writer (decoded once), and those left to its reader (read
    /// back from the stream and decoded again: another writer's entry in between, a shard owned elsewhere,
    /// a hand-over the engine refused).
    let handedOver = Counter(label: "bitten_ledger_entries_total", dimensions: [("path", "handed_over")])
    let leftUnoffered = Counter(
        label: "bitten_ledger_entries_total", dimensions: [("path", "reader"), ("reason", "not_offered")])
    let leftRefused = Counter(
        label: "bitten_ledger_entries_total", dimensions: [("path", "reader"), ("reason", "refused")])
    /// Refused because the engine's reader had already applied them (no need to wake it again).
    let readFirst = Counter(
        label: "bitten_ledger_entries_total", dimensions: [("path", "reader"), ("reason", "read_first")])
    /// The last stream entry appended per shard by this writer, handed over or left to the reader: the next one
    /// follows it (the engine may not have applied it yet; it catches up before a hand-over).
    let lastHanded = Mutex<[Int: String]>([:])
    let spool: ConfirmationSpool?
    /// Every accepted entry until it is in the ledger (or the spool): what a dead process held in memory.
    let journal: ConfirmationSpool?
    let writerID: String
    let sequence = Mutex<Int>(0)
    let redisDown = Mutex<Bool>(false)
    let stopping = Atomic<Bool>(false)
    let valuation: (any ValuationQuotes)?
    let legacyText: Counter
    /// Why the ledger is not written here (the trade path does not run on a Redis Cluster yet): pongs
    /// still reach the registry, anything else is kept in the spool, in order, for a run on one Redis.
    let ledgerOff: String?
    let keptThrottle = LogThrottle()
    /// Trade shards: the ledger of a user is its shard's stream.
    let shards: Int

    /// Appends a batch of entries as one stream entry (each an `m` field, see `LedgerRecord`), leaving out
    /// those this writer already appended (or a later one), and says whether the stream ended where the
    /// engine here stands (`Scripts/append_confirmations.lua`).
    static let appendScript = LuaScripts.appendConfirmations

    /// The service on `input`, appending to the ledger (spooled to disk while Redis is down).
    public init(
        input: LoopSocket, registry: NodeRegistry, redis: RedisClient, board: ServiceBoard, port: Int,
        logger: Logger, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        spoolDirectory: String? = nil, writerID: String = "bitten", valuation: (any ValuationQuotes)? = nil,
        ledgerOff: String? = nil, shards: Int = 16, handOver: (any HandOver)? = nil
    ) {
        self.ledgerOff = ledgerOff
        self.shards = max(1, shards)
        self.valuation = valuation
        self.legacyText = Counter(label: "bitten_legacy_text_messages_total", dimensions: [("port", String(port))])
        self.handOver = handOver
        self.writerID = writerID
        var spool: ConfirmationSpool?
        var journal: ConfirmationSpool?
        if let spoolDirectory {
            do {
                spool = try ConfirmationSpool(directory: spoolDirectory)
                journal = try ConfirmationSpool(directory: spoolDirectory, name: "confirmations.journal", sync: false)
            } catch {
                logger.error(
                    "cannot open the confirmation spool; entries will wait in memory while Redis is away",
                    metadata: ["bitten.process.dir": "\(spoolDirectory)", "bitten.error": "\(error)"])
            }
        }
        if let spool, let journal, journal.count > 0 {
            // The last run died with entries accepted and not yet in the ledger: they join the spool, in order,
            // once each (the append script skips any that did reach the ledger).
            do {
                let recovered = try journal.entries()
                try spool.replace(with: Self.merged(try spool.entries(), recovered))
                try journal.clear()
                logger.notice(
                    "confirmations of the last run recovered from its journal",
                    metadata: ["bitten.confirmations.entries": "\(recovered.count)"])
            } catch {
                logger.error("could not recover the confirmation journal", metadata: ["bitten.error": "\(error)"])
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
    func nextSequence(at time: Double) -> Int {
        sequence.withLock { last in
            last = max(last + 1, Int(time * 1_000_000))
            return last
        }
    }

    /// Runs until the group shuts down.
    public func run() async throws {
        board.set(
            Self.name, .running, detail: ledgerOff.map { "pongs only (\($0)); confirmations are kept in the spool" })
        await withDiscardingTaskGroup { group in
            group.addTask {
                await withGracefulShutdownHandler {
                    for await batch in self.input.messages.cancelOnGracefulShutdown() { self.handle(batch) }
                } onGracefulShutdown: {
                }
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
                        "payload",
                        legacy
                            ? Windows1252.decode(message.frames[0])
                            : String(decoding: message.frames[0], as: UTF8.self),
                    ]
                    // A confirmation that does not belong to the node (another account, an old node id, another
                    // machine) is kept in the ledger with the reason and never applied.
                    if let account = Self.account(of: decoded), let nodeID = Self.nodeID(of: decoded),
                        let reason = registry.untrusted(
                            uuid: decoded.userUUID, account: account, nodeID: nodeID, peer: message.peerAddress)
                    {
                        entry += ["untrusted", reason, "peer", message.peerAddress ?? ""]
                    }
                    // The EA never says what it closed at: the market at this moment goes with the entry,
                    // so the close is valued the same however late or often the entry is applied.
                    var quotes = ""
                    if case .closeConfirmation = decoded, let valued = valuation?.valuationQuotes(for: decoded.userUUID)
                    {
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
            if !journaled {
                keptThrottle.log(
                    logger, .error,
                    "confirmation journal not written: a crash now would lose what waits in memory")
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

    func reject(_ error: WireError) {
        metrics.rejected(error)
        throttle.log(
            logger, .warning,
            "message rejected",
            metadata: [
                "bitten.socket.port": "confirm", "bitten.reason": "\(error)",
            ])
    }
}
