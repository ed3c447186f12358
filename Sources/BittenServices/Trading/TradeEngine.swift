import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// Why the trade engine could not do something now.
public struct TradeEngineUnavailable: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The trade state's one writer. Users are spread over `shards` shards by a stable hash of their UUID; this
/// process holds each shard it owns (a lease in Redis with a fencing number) in memory — users' tiers, slots,
/// fires in flight, close requests, open positions, statistics — applies every event to it, and stores what
/// the events decided in **group commits**: all changes made while the previous commit was on its way go to
/// Redis in one atomic, fenced step per shard, with the id of the last ledger entry they include. A fire's
/// command is sent only after the commit of its reservation is acknowledged.
///
/// The ledger is one stream per shard (`stream:confirmations:{tN}`). The owner reads it from its checkpoint,
/// applies each entry in memory and commits: after a crash the new owner loads the shard as last committed
/// and replays the entries after the checkpoint, so every entry counts exactly once, with no reads to
/// recognise repeats.
///
/// One process owns every shard it can get. Shards held by another process are refused here (routing to
/// their owner is the next step).
public final class TradeEngine: Service, Sendable {
    public static let name = "trade_engine"

    public struct Settings: Sendable {
        public var shards = 16
        /// This deployment's name for the process (a restart with the same name takes its shards back at once).
        public var instance = "bitten"
        public var leaseTTL: Duration = .seconds(10)
        /// How often each shard's ledger is read when nothing wakes it (entries from other processes).
        public var pollInterval: Duration = .milliseconds(250)
        /// Entries read from a ledger at a time.
        public var batch = 1_000
        /// Seconds a settled fire (or closed ticket) stays in memory (a repeated answer is recognised in that time).
        public var retention: Double = 86_400
        /// A crash staged on purpose (fault tests only; `BITTEN_FAULT_INJECT`).
        public var fault: Fault?

        public init() {}
    }

    final class Lane: Sendable {
        let index: Int
        let store: ShardStore
        let state = Mutex(LaneState())

        init(index: Int, redis: RedisClient) {
            self.index = index
            store = ShardStore(redis: redis, shard: index)
        }
    }

    struct LaneState {
        var shard: TradeShard?
        var token: String?
        /// The last ledger entry applied in memory, and the last one stored with a commit.
        var applied: String = "0"
        var committed: String = "0"
        /// Changes taken for a commit that failed: they go first in the next one.
        var backlog: [TradeChange] = []
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var status = "not loaded"
        /// Ledger entries applied in memory and not yet stored.
        var uncommittedEntries = 0
        /// Changes nobody waits for are in memory: they go with the next commit, at the latest after `lazyDelay`.
        var lazy = false
    }

    public let settings: Settings
    private let redis: RedisClient
    private let lanes: [Lane]
    private let board: ServiceBoard
    private let logger: Logger
    private let alerts: AlertQueue?
    private let boot: String
    private let now: @Sendable () -> Double
    private let outcomes: [String: Counter]
    private let commitsCounter = Counter(label: "bitten_trade_commits_total")
    private let commitFailures = Counter(label: "bitten_trade_commit_failures_total")
    private let commandsRefusedCounter = Counter(label: "bitten_trade_commit_commands_refused_total")
    private let droppedStops = Counter(label: "bitten_stops_dropped_total")
    private let pendingGauge = Gauge(label: "bitten_confirmations_pending")
    private let throttle = LogThrottle()
    private let ledgerWake = WakeSignal()
    /// Wakes the committer (one for every shard owned here).
    private let commitWake = WakeSignal()

    public init(redis: RedisClient, settings: Settings = Settings(), board: ServiceBoard, logger: Logger, alerts: AlertQueue? = nil,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.redis = redis
        self.settings = settings
        self.board = board
        self.logger = logger
        self.alerts = alerts
        self.now = now
        boot = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        lanes = (0..<max(1, settings.shards)).map { Lane(index: $0, redis: redis) }
        var outcomes: [String: Counter] = [:]
        for outcome in ["ok", "duplicate", "unknown_fire", "unknown_position", "wrong_user", "invalid", "rejected", "ignored",
                        "undecodable", "rejected_untrusted"] {
            outcomes[outcome] = Counter(label: "bitten_confirmations_processed_total", dimensions: [("outcome", outcome)])
        }
        self.outcomes = outcomes
        board.register(Self.name)
        pendingGauge.record(0)
    }

    public var shardCount: Int { lanes.count }

    /// The shard of a user.
    public func shard(of uuid: String) -> Int { ShardKeys.shard(of: uuid, count: lanes.count) }

    /// The ledger stream a confirmation of `uuid` goes to.
    public static func ledger(of uuid: String, shards: Int) -> String {
        ShardKeys(shard: ShardKeys.shard(of: uuid, count: shards)).confirmations
    }

    /// Tells the ledger reader that entries were appended.
    public func wake() { ledgerWake.signal() }

    /// The shards this process owns, loaded and ready.
    public var ownedShardIndices: [Int] { lanes.filter { $0.state.withLock { $0.shard != nil } }.map(\.index) }

    /// Whether this process owns the shard of `uuid` (loaded and ready).
    public func owns(_ uuid: String) -> Bool { lane(uuid).state.withLock { $0.shard != nil } }

    /// Shards this process owns, loaded and ready.
    public var ownedShards: Int { lanes.reduce(0) { $0 + ($1.state.withLock { $0.shard != nil } ? 1 : 0) } }

    /// Each shard's status, for health.
    public var shardStatus: [Int: String] {
        Dictionary(uniqueKeysWithValues: lanes.map { lane in (lane.index, lane.state.withLock { $0.status }) })
    }

    /// The last ledger entry of `shard` stored with a commit ("0": none), while this process owns it.
    public func committedCheckpoint(_ shard: Int) -> String? {
        lanes[shard].state.withLock { $0.shard != nil ? $0.committed : nil }
    }

    // MARK: applying events

    private func lane(_ uuid: String) -> Lane { lanes[shard(of: uuid)] }

    /// Reads the shard of `uuid` as it is in memory.
    public func read<T: Sendable>(_ uuid: String, _ body: (TradeShard) -> T) throws(TradeEngineUnavailable) -> T {
        let lane = lane(uuid)
        let result: T? = lane.state.withLock { state in state.shard.map(body) }
        guard let result else { throw unavailable(lane) }
        return result
    }

    /// Every owned shard, read in turn.
    public func readAll<T: Sendable>(_ body: (TradeShard) -> [T]) -> [T] {
        lanes.flatMap { lane in lane.state.withLock { state in state.shard.map(body) ?? [] } }
    }

    private func unavailable(_ lane: Lane) -> TradeEngineUnavailable {
        TradeEngineUnavailable("trade shard \(lane.index) is not available here: \(lane.state.withLock { $0.status })")
    }

    /// What `perform` did: the body's result, and why what it changed is not stored yet (nil: stored).
    public struct Performed<T: Sendable>: Sendable {
        public var value: T
        /// The commit failed: the change stays in memory and goes with the next commit that succeeds.
        public var notStored: TradeEngineUnavailable?
    }

    /// Applies `body` to the user's shard and returns once what it changed is stored. Throws only when the
    /// shard is not available here (nothing was applied).
    public func perform<T: Sendable>(_ uuid: String, _ body: (inout TradeShard) -> T) async throws(TradeEngineUnavailable) -> Performed<T> {
        let lane = lane(uuid)
        var value: T?
        var failure: TradeEngineUnavailable?
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let registered: Bool? = lane.state.withLock { state in
                    guard state.shard != nil else { return nil }
                    value = body(&state.shard!)
                    guard state.shard!.hasChanges else { return false }
                    state.waiters.append(continuation)
                    return true
                }
                switch registered {
                case nil: continuation.resume(throwing: unavailable(lane))
                case true?: commitWake.signal()
                case false?: continuation.resume()
                }
            }
        } catch {
            failure = error as? TradeEngineUnavailable ?? TradeEngineUnavailable("\(error)")
        }
        guard let value else { throw failure ?? unavailable(lane) }
        return Performed(value: value, notStored: failure)
    }

    /// Applies `body` to the user's shard; what it changed goes with the next commit, which nobody waits
    /// for: it is made when another change needs one, or after `lazyDelay` at the latest.
    @discardableResult
    public func apply<T: Sendable>(_ uuid: String, _ body: (inout TradeShard) -> T) throws(TradeEngineUnavailable) -> T {
        let lane = lane(uuid)
        let result: (T, Bool)? = lane.state.withLock { state in
            guard state.shard != nil else { return nil }
            let value = body(&state.shard!)
            let first = !state.lazy
            state.lazy = true
            return (value, first)
        }
        guard let result else { throw unavailable(lane) }
        if result.1 { commitWake.signal() }
        return result.0
    }

    /// How long changes nobody waits for may stay uncommitted.
    static let lazyDelay: Duration = .milliseconds(20)

    /// Moves every overdue command of every owned shard to `timed_out`; returns the fire ids and close tickets.
    public func expire(at: Double, reason: String) -> (fires: [String], closes: [Int]) {
        var fires: [String] = [], closes: [Int] = []
        for lane in lanes {
            let expired: (fires: [String], closes: [Int]) = lane.state.withLock { state in
                guard state.shard != nil else { return ([], []) }
                let expired = state.shard!.expire(at: at, reason: reason)
                state.shard!.prune(settledBefore: at - settings.retention, signalsExpiredBefore: at - 86_400)
                return expired
            }
            fires += expired.fires
            closes += expired.closes
            if lane.state.withLock({ $0.shard?.hasChanges ?? false }) { commitWake.signal() }
        }
        return (fires, closes)
    }

    // MARK: running

    public func run() async throws {
        board.set(Self.name, .starting, detail: "taking \(lanes.count) shards")
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.leaseLoop() }
                group.addTask { await self.ledgerLoop() }
                group.addTask { await self.commitLoop() }
            }
        } onGracefulShutdown: {
            self.commitWake.signal()
            self.ledgerWake.signal()
        }
        // What is still in memory and uncommitted goes now; the leases are given back for the next run.
        await commitRound()
        for lane in lanes {
            if let token = lane.state.withLock({ $0.token }) { try? await lane.store.release(token: token) }
        }
        board.set(Self.name, .stopped)
    }

    private var stopping: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    /// Takes and renews the leases; a shard newly taken (or taken back with a new fence) is loaded first.
    private func leaseLoop() async {
        let renewEvery = settings.leaseTTL / 4
        while !stopping {
            for lane in lanes where !stopping {
                do {
                    let token = try await lane.store.acquire(instance: settings.instance, boot: boot, ttl: settings.leaseTTL)
                    let held = lane.state.withLock { $0.token }
                    if token == nil {
                        if held != nil { lose(lane, because: "another process took the lease") }
                        lane.state.withLock { $0.status = "owned by another process" }
                    } else if token != held {
                        if held != nil { lose(lane, because: "the lease was taken over") }
                        let loaded = try await lane.store.load()
                        lane.state.withLock { state in
                            state.shard = loaded.shard
                            state.token = token
                            state.applied = loaded.checkpoint
                            state.committed = loaded.checkpoint
                            state.backlog = []
                            state.status = "owned"
                        }
                        ledgerWake.signal()
                        logger.info("trade shard taken", metadata: ["shard": "\(lane.index)", "checkpoint": "\(loaded.checkpoint)"])
                    }
                } catch {
                    if let suppressed = throttle.allow() {
                        logger.warning("trade shard lease not renewed", metadata: [
                            "shard": "\(lane.index)", "error": "\(error)", "suppressed_since_last": "\(suppressed)",
                        ])
                    }
                }
            }
            let owned = ownedShards
            board.set(Self.name, owned == lanes.count ? .running : .starting,
                      detail: owned == lanes.count ? nil : "\(owned) of \(lanes.count) trade shards owned here")
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: renewEvery) }
        }
    }

    /// The shard is no longer ours: its memory is dropped (the next owner loads what was committed) and
    /// everyone waiting is told.
    private func lose(_ lane: Lane, because reason: String) {
        let waiters = lane.state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.shard = nil
            state.token = nil
            state.backlog = []
            state.uncommittedEntries = 0
            state.status = "lost: \(reason)"
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(throwing: TradeEngineUnavailable("trade shard \(lane.index) lost: \(reason)")) }
        logger.warning("trade shard lost", metadata: ["shard": "\(lane.index)", "reason": "\(reason)"])
    }

    /// Commits for every shard owned here, round after round: a round takes what each shard changed since
    /// its last commit and stores all of it together (`ShardStore.commit(_:redis:)`); what changes while a
    /// round is on its way goes with the next.
    private func commitLoop() async {
        var backoff = Duration.milliseconds(20)
        while !stopping {
            await commitWake.wait()
            // Only changes nobody waits for: a moment for more to join them (ended by one somebody waits for).
            let lazyOnly = lanes.allSatisfy { lane in
                lane.state.withLock { $0.waiters.isEmpty && $0.uncommittedEntries == 0 && $0.backlog.isEmpty }
            }
            if lazyOnly { await commitWake.wait(timeout: Self.lazyDelay) }
            while !stopping {
                let outcome = await commitRound()
                if outcome == .idle { break }
                if outcome == .failed {
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(1))
                } else {
                    backoff = .milliseconds(20)
                }
            }
        }
    }

    enum CommitOutcome { case idle, committed, failed }

    /// Commands of a stored commit that Redis refused: counted and logged (the rest is stored; they are not
    /// sent again, so one bad key never holds a shard's commits back).
    private func commandsRefused(_ refused: [ShardStore.CommandFailure]) {
        commandsRefusedCounter.increment(by: refused.count)
        if let suppressed = throttle.allow() {
            logger.error("trade commit: Redis refused commands (the rest of the commit is stored)", metadata: [
                "refused": "\(refused.prefix(5).map(\.description).joined(separator: "; "))", "count": "\(refused.count)",
                "suppressed_since_last": "\(suppressed)",
            ])
        }
    }

    /// Where the fault tests make the engine's process die (`_exit(86)`, no clean-up, like SIGKILL), on the
    /// first commit round that stores a fire's reservation.
    public enum Fault: String, Sendable, CaseIterable {
        /// The round is built and not yet sent: the reservation never reaches Redis.
        case exitBeforeCommit = "exit_before_commit"
        /// Redis has stored the round and the process dies before it acts on the answer: the reservation is
        /// stored, the fire's command was never sent.
        case exitAfterCommit = "exit_after_commit"
    }

    private func stage(_ fault: Fault, _ taken: [Taken]) {
        guard settings.fault == fault, taken.contains(where: { $0.changes.contains { if case .fireCreated = $0 { true } else { false } } })
        else { return }
        logger.critical("fault injection: the process dies here", metadata: ["fault": "\(fault.rawValue)"])
        _exit(86)
    }

    /// What one shard hands to a commit round.
    struct Taken {
        var lane: Lane
        var changes: [TradeChange]
        var waiters: [CheckedContinuation<Void, any Error>]
        var sequence: Int
        var applied: String
        var token: String
        var entries: Int
        var checkpointMoved: Bool
    }

    /// One group commit round over every shard with something to store.
    @discardableResult
    private func commitRound() async -> CommitOutcome {
        var taken: [Taken] = []
        for lane in lanes {
            let item: Taken? = lane.state.withLock { state in
                guard state.shard != nil, let token = state.token else { return nil }
                let fresh = state.shard!.takeChanges()
                state.lazy = false
                guard !fresh.isEmpty || !state.backlog.isEmpty || state.applied != state.committed || !state.waiters.isEmpty else { return nil }
                defer {
                    state.backlog = []
                    state.waiters = []
                }
                return Taken(lane: lane, changes: state.backlog + fresh, waiters: state.waiters, sequence: state.shard!.book.sequence,
                             applied: state.applied, token: token, entries: state.uncommittedEntries,
                             checkpointMoved: state.applied != state.committed)
            }
            if let item { taken.append(item) }
        }
        guard !taken.isEmpty else { return .idle }
        let stored = taken.filter { !$0.changes.isEmpty || $0.checkpointMoved }
        let pending = stored.map {
            ShardStore.Pending(store: $0.lane.store, commands: ShardStore.commands(for: $0.changes, keys: $0.lane.store.keys, sequence: $0.sequence,
                                                                                    lastApplied: $0.applied),
                               token: $0.token)
        }
        var results: [Int: Result<[ShardStore.CommandFailure], any Error>] = [:]
        if !pending.isEmpty {
            stage(.exitBeforeCommit, stored)
            for (item, result) in zip(stored, await ShardStore.commit(pending, redis: redis)) { results[item.lane.index] = result }
            commitsCounter.increment()
            stage(.exitAfterCommit, stored)
        }
        var failed = false
        for item in taken {
            switch results[item.lane.index] ?? .success([]) {
            case .success(let refused):
                if !refused.isEmpty { commandsRefused(refused) }
                item.lane.state.withLock { state in
                    if state.token == item.token {
                        state.committed = item.applied
                        state.uncommittedEntries -= item.entries
                    }
                }
                for waiter in item.waiters { waiter.resume() }
            case .failure(let fenced as ShardStore.Fenced):
                for waiter in item.waiters { waiter.resume(throwing: TradeEngineUnavailable("\(fenced)")) }
                lose(item.lane, because: "\(fenced)")
            case .failure(let error):
                // Kept in order for the next commit; the callers learn that theirs is not stored yet.
                failed = true
                commitFailures.increment()
                item.lane.state.withLock { state in
                    if state.token == item.token { state.backlog = item.changes + state.backlog }
                }
                for waiter in item.waiters {
                    waiter.resume(throwing: TradeEngineUnavailable("the trade state could not be stored (Redis): \(error)"))
                }
                if let suppressed = throttle.allow() {
                    logger.error("trade commit failed; retrying", metadata: [
                        "shard": "\(item.lane.index)", "changes": "\(item.changes.count)", "error": "\(error)",
                        "suppressed_since_last": "\(suppressed)",
                    ])
                }
            }
        }
        recordPending()
        return failed ? .failed : .committed
    }

    // MARK: the ledger

    /// Reads every owned shard's ledger after its cursor, in one pipeline, and applies what came; waits for
    /// a wake-up (an append in this process) or `pollInterval` (appends of other processes) when nothing did.
    private func ledgerLoop() async {
        while !stopping {
            let cursors: [(Lane, String)] = lanes.compactMap { lane in
                lane.state.withLock { $0.shard != nil ? (lane, $0.applied) : nil }
            }
            guard !cursors.isEmpty else {
                await ledgerWake.wait(timeout: settings.pollInterval)
                continue
            }
            let replies: [RedisReply]
            do {
                replies = try await redis.pipeline(cursors.map { lane, cursor in
                    ["XRANGE", lane.store.keys.confirmations, cursor == "0" ? "-" : "(" + cursor, "+", "COUNT", String(settings.batch)]
                })
            } catch {
                if let suppressed = throttle.allow() {
                    logger.warning("trade ledger not read", metadata: ["error": "\(error)", "suppressed_since_last": "\(suppressed)"])
                }
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            var any = false
            for ((lane, cursor), reply) in zip(cursors, replies) {
                guard case .array = reply else { continue }
                let entries = StreamEntry.list(reply)
                guard !entries.isEmpty else { continue }
                any = true
                apply(entries, on: lane, after: cursor)
            }
            if !any { await ledgerWake.wait(timeout: settings.pollInterval) }
        }
    }

    /// Applies ledger entries read after `cursor` (nothing when the shard changed hands meanwhile); the
    /// checkpoint moves with them and goes with the next commit.
    func apply(_ stored: [StreamEntry], on lane: Lane, after cursor: String) {
        guard let last = stored.last?.id else { return }
        apply(stored.flatMap(LedgerRecord.messages(of:)), events: nil, through: last, on: lane, after: cursor)
    }

    /// Messages this process's confirmation writer has just appended to `shard`'s ledger as the stream entry
    /// `id`, which came right after `previous` (the script that appended it read both): applied at once,
    /// with the events the writer decoded, when this process owns the shard and has applied everything up
    /// to `previous`. No read back, no second decode. Otherwise (another owner, entries of another writer in
    /// between) the reader gets them from the stream as usual. Returns whether they were applied here.
    public func appended(shard: Int, id: String, after previous: String, messages: [StreamEntry], events: [LedgerEvent?]) -> Bool {
        guard lanes.indices.contains(shard), messages.count == events.count else { return false }
        return apply(messages, events: events, through: id, on: lanes[shard], after: previous)
    }

    /// The last ledger entry applied in memory for `shard` ("0": none), while this process owns it.
    public func appliedCursor(_ shard: Int) -> String? {
        guard lanes.indices.contains(shard) else { return nil }
        return lanes[shard].state.withLock { $0.shard != nil ? $0.applied : nil }
    }

    /// Applies ledger messages (decoded here unless `events` come with them) that end with stream entry
    /// `last` and follow `cursor`; nothing when the shard is not owned here or `cursor` is not where it stands.
    @discardableResult
    private func apply(_ entries: [StreamEntry], events: [LedgerEvent?]?, through last: String, on lane: Lane, after cursor: String) -> Bool {
        let results: [String]? = lane.state.withLock { state in
            guard state.shard != nil, state.applied == cursor else { return nil }
            var results: [String] = []
            results.reserveCapacity(entries.count)
            for (index, entry) in entries.enumerated() {
                if let reason = entry["untrusted"] {
                    // Kept in the ledger (this entry), listed, never applied.
                    state.shard!.note("\(entry.id) \(entry["user_uuid"] ?? "") from \(entry["peer"] ?? "?"): \(reason)",
                                      on: "confirmations:untrusted")
                    results.append("rejected_untrusted")
                } else if let event = events.map({ $0[index] }) ?? LedgerEvent(entry: entry) {
                    results.append(state.shard!.apply(event, streamID: entry.id))
                } else {
                    results.append("undecodable")
                }
            }
            // The checkpoint is the last stream entry (all its messages are applied with it).
            state.applied = last
            state.uncommittedEntries += entries.count
            return results
        }
        guard let results else { return false }
        recordPending()
        commitWake.signal()
        report(entries, results)
        return true
    }

    /// Ledger entries applied in memory and not yet stored, over every shard owned here.
    private func recordPending() {
        pendingGauge.record(lanes.reduce(0) { $0 + $1.state.withLock { $0.uncommittedEntries } })
    }

    private func report(_ entries: [StreamEntry], _ results: [String]) {
        var applied = 0
        for (entry, result) in zip(entries, results) {
            let outcome = result.hasPrefix("ok") ? "ok" : result
            outcomes[outcome]?.increment()
            if outcome == "ok" { applied += 1 }
            if result.hasSuffix("dropped") { stopsDropped(entry, result) }
            if result == "rejected_untrusted" {
                let uuid = entry["user_uuid"] ?? ""
                alerts?.raise(kind: "untrusted_confirmation", uuid: uuid,
                              reason: "a \(entry["type"] ?? "confirmation") for \(uuid) from \(entry["peer"] ?? "?") was not applied: \(entry["untrusted"] ?? "")",
                              at: now())
                if throttle.allow() == nil { continue }
            }
            if !["ok", "duplicate", "rejected", "ignored"].contains(outcome) {
                logger.warning("confirmation not applied", metadata: [
                    "stream_id": "\(entry.id)", "outcome": "\(result)", "type": "\(entry["type"] ?? "")",
                    "bitten.node.uuid": "\(entry["user_uuid"] ?? "")",
                ])
            }
        }
        board.count(Self.name, in: entries.count, out: applied)
    }

    /// A fill whose stop loss or take profit was on the wrong side of the fill price: the EA dropped it,
    /// so the position runs without it. Logged, counted and alerted.
    private func stopsDropped(_ entry: StreamEntry, _ result: String) {
        let uuid = entry["user_uuid"] ?? ""
        var fireID = "", ticket = 0
        if case .fire(let answer)? = LedgerEvent(entry: entry) { (fireID, ticket) = (answer.fireID, answer.ticket) }
        let what = result == "ok:sl_tp_dropped" ? "stop loss and take profit" : (result == "ok:sl_dropped" ? "stop loss" : "take profit")
        droppedStops.increment()
        logger.warning("position opened without its \(what): it was on the wrong side of the fill price and the EA dropped it",
                       metadata: ["bitten.node.uuid": "\(uuid)", "bitten.fire.id": "\(fireID)", "ticket": "\(ticket)"])
        alerts?.raise(kind: result == "ok:tp_dropped" ? "target_dropped" : "stop_dropped", uuid: uuid,
                      reason: "position \(ticket) (fire \(fireID)) runs without its \(what): it was on the wrong side of the fill price",
                      at: now())
    }
}
