import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// Why the trade engine could not do something now.
public struct TradeEngineUnavailable: Error, CustomStringConvertible {
    /// What happened, for a person.
    public let message: String
    /// A failure with its reason.
    public init(_ message: String) { self.message = message }
    /// A one-line description.
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
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "trade_engine"

    /// How the engine runs.
    public struct Settings: Sendable {
        /// How many trade shards (`BITTEN_TRADE_SHARDS`).
        public var shards = 16
        /// This deployment's name for the process (a restart with the same name takes its shards back at once).
        public var instance = "bitten"
        /// How long a shard's lease lasts without renewal.
        public var leaseTTL: Duration = .seconds(10)
        /// How often each shard's ledger is read when nothing wakes it (entries from other processes).
        public var pollInterval: Duration = .milliseconds(250)
        /// Entries read from a ledger at a time.
        public var batch = 1_000
        /// Ledger messages a shard applies in memory ahead of its commits. Past this, the shard's ledger waits
        /// (the writer's hand-over and the reader alike) until a commit has stored them: a burst of
        /// confirmations goes to Redis in commits of bounded size, so no single commit holds Redis (and every
        /// fire's commit waiting behind it) for long, and the memory they take stays bounded.
        public var maxUncommitted = 256
        /// How long the reader leaves a ledger to a hand-over this process's writer announced and has not made.
        public var handOverGrace: Duration = .seconds(1)
        /// Seconds a settled fire (or closed ticket) stays in memory (a repeated answer is recognised in that time).
        public var retention: Double = 86_400
        /// Seconds a shard's ledger keeps the entries its commits stored (0: for ever); see `trimLedger`.
        public var ledgerRetention: Double = 30 * 86_400
        /// How often an owned shard's ledger is trimmed (at a lease renewal).
        public var ledgerTrimEvery: Duration = .seconds(60)
        /// A crash staged on purpose (fault tests only; `BITTEN_FAULT_INJECT`).
        public var fault: Fault?

        /// The defaults.
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
        /// When this shard's ledger was last trimmed (`trimLedger`).
        var trimmedAt: ContinuousClock.Instant?
        /// The reader left this shard's ledger unread: it had applied `Settings.maxUncommitted` ahead.
        var ledgerHeld = false
        /// What this process's writer announced it will hand over, and when: the last entry (`handOverComing`),
        /// or nil while its append is on its way (`handOverAnnounced`).
        var handOverComing: (id: String?, since: ContinuousClock.Instant)?
        /// Changes taken for a commit that failed: they go first in the next one.
        var backlog: [TradeChange] = []
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var status = "not loaded"
        /// This process has tried to take the shard since it started (taken, or found owned by another).
        var tried = false
        /// Ledger entries applied in memory and not yet stored.
        var uncommittedEntries = 0
        /// Changes nobody waits for are in memory: they go with the next commit, at the latest after `lazyDelay`.
        var lazy = false
    }

    /// The settings.
    public let settings: Settings
    let redis: RedisClient
    let lanes: [Lane]
    let board: ServiceBoard
    let logger: Logger
    let alerts: AlertQueue?
    /// Where the fires' answers, positions and closes are recorded (nil: not recorded).
    let recorder: FlightRecorder?
    let boot: String
    let now: @Sendable () -> Double
    let outcomes: [String: Counter]
    let commitsCounter = Counter(label: "bitten_trade_commits_total")
    let commitFailures = Counter(label: "bitten_trade_commit_failures_total")
    let commandsRefusedCounter = Counter(label: "bitten_trade_commit_commands_refused_total")
    let droppedStops = Counter(label: "bitten_stops_dropped_total")
    /// Ledger messages the writer left to the reader that the engine read itself before a hand-over (`catchUp`).
    let caughtUp = Counter(label: "bitten_ledger_caught_up_entries_total")
    /// Ledger entries trimmed past their retention (`trimLedger`).
    let trimmedEntries = Counter(label: "bitten_ledger_trimmed_entries_total")
    let pendingGauge = Gauge(label: "bitten_confirmations_pending")
    let throttle = LogThrottle()
    /// The "confirmation not applied" lines (each is counted in `bitten_confirmations_processed_total` all the
    /// same): a flood of unknown fires or unreadable entries does not flood the log.
    let notAppliedLog = LogThrottle(limit: 50, window: 60)
    let ledgerWake = WakeSignal()
    /// Raised after a commit that stored ledger messages: a shard that was full may apply again.
    let roomWake = WakeSignal()
    /// Wakes the committer (one for every shard owned here).
    let commitWake = WakeSignal()
    /// What rides with each commit round (`CommitRider`): asked once per round (held weakly: it holds the engine).
    let riding = Mutex(RidingSource())
    /// The commit rounds' own connection on one server, which keeps the shards WATCHed between rounds (nil: a
    /// cluster, where each shard's commit is a fenced script).
    let commitLane: CommitLane?

    /// The engine; it takes its shards when it runs.
    public init(
        redis: RedisClient, settings: Settings = Settings(), board: ServiceBoard, logger: Logger,
        alerts: AlertQueue? = nil, recorder: FlightRecorder? = nil,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.recorder = recorder
        self.redis = redis
        self.settings = settings
        self.board = board
        self.logger = logger
        self.alerts = alerts
        self.now = now
        boot = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        lanes = (0..<max(1, settings.shards)).map { Lane(index: $0, redis: redis) }
        commitLane = redis.isCluster ? nil : CommitLane(url: redis.url)
        var outcomes: [String: Counter] = [:]
        for outcome in [
            "ok", "duplicate", "unknown_fire", "unknown_position", "wrong_user", "invalid", "rejected", "ignored",
            "undecodable", "rejected_untrusted",
        ] {
            outcomes[outcome] = Counter(
                label: "bitten_confirmations_processed_total", dimensions: [("outcome", outcome)])
        }
        self.outcomes = outcomes
        board.register(Self.name)
        pendingGauge.record(0)
    }

    /// How many shards.
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

    /// How long a request waits for a shard this process is still taking when it starts.
    static let startupWait: Duration = .seconds(5)

    /// Waits while this process, just started, has not yet tried to take the shard of `uuid` (its lease is being
    /// taken or its state loaded), for `startupWait` at most: a request that comes in the first moments after
    /// a start is then answered, not refused as "not loaded". At once when the shard was tried (owned here or
    /// by another process). The entry points (the fire desk's, the user store's) call it before they decide where a
    /// request goes.
    public func waitUntilTried(_ uuid: String) async { await waitUntilTried([lane(uuid)]) }

    /// As `waitUntilTried(_:)`, for every shard (a request that looks in all of them).
    public func waitUntilAllTried() async { await waitUntilTried(lanes) }

    private func waitUntilTried(_ lanes: [Lane]) async {
        func untried() -> Bool { lanes.contains { lane in !lane.state.withLock { $0.tried } } }
        guard untried() else { return }
        let deadline = ContinuousClock.now + Self.startupWait
        while untried(), ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

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

    func lane(_ uuid: String) -> Lane { lanes[shard(of: uuid)] }

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

    func unavailable(_ lane: Lane) -> TradeEngineUnavailable {
        TradeEngineUnavailable("trade shard \(lane.index) is not available here: \(lane.state.withLock { $0.status })")
    }

    /// What `perform` did: the body's result, and why what it changed is not stored yet (nil: stored).
    public struct Performed<T: Sendable>: Sendable {
        /// The value.
        public var value: T
        /// The commit failed: the change stays in memory and goes with the next commit that succeeds.
        public var notStored: TradeEngineUnavailable?
    }

    /// Applies `body` to the user's shard and returns once what it changed is stored. Throws only when the
    /// shard is not available here (nothing was applied). `decided` sees the body's result as soon as it is
    /// decided, outside the lane's lock, while the commit is still under way (work that can go alongside it).
    public func perform<T: Sendable>(
        _ uuid: String, _ body: (inout TradeShard) -> T, decided: ((T) -> Void)? = nil
    )
        async throws(TradeEngineUnavailable) -> Performed<T>
    {
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
                if registered != nil, let decided, let value { decided(value) }
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
    public func apply<T: Sendable>(_ uuid: String, _ body: (inout TradeShard) -> T) throws(TradeEngineUnavailable) -> T
    {
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

    /// Has `source` asked, once per commit round, for scripts to send with the round (one source: the last given).
    func carry(_ source: any CommitRiding) { riding.withLock { $0.source = source } }

    /// Wakes the committer for riders that wait (a round goes even when no shard has anything to store).
    func wakeCommitter() { commitWake.signal() }

    /// How long changes nobody waits for may stay uncommitted.
    static let lazyDelay: Duration = .milliseconds(20)

    /// Moves every overdue command of every owned shard to `timed_out`; returns the fire ids and close tickets.
    public func expire(at: Double, reason: String) -> (fires: [String], closes: [Int]) {
        var fires: [String] = []
        var closes: [Int] = []
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

    /// As `applyAll`, letting other tasks run between shards: for a sweep of every shard (the risk limits' market
    /// sweep), so that it never holds a thread of the shared pool for the whole of its work.
    public func applyEach<T: Sendable>(_ body: (inout TradeShard) -> [T]) async -> [T] {
        var results: [T] = []
        for lane in lanes {
            results += apply(on: lane, body)
            await Task.yield()
        }
        return results
    }

    /// Changes every shard owned here (stored with the next commits); the results, shard after shard.
    public func applyAll<T: Sendable>(_ body: (inout TradeShard) -> [T]) -> [T] {
        lanes.flatMap { apply(on: $0, body) }
    }

    /// `body` on one lane's shard (nothing when the shard is not owned), and the committer woken for what changed.
    private func apply<T: Sendable>(on lane: Lane, _ body: (inout TradeShard) -> [T]) -> [T] {
        let part: [T] = lane.state.withLock { state in
            guard state.shard != nil else { return [] }
            return body(&state.shard!)
        }
        if lane.state.withLock({ $0.shard?.hasChanges ?? false }) { commitWake.signal() }
        return part
    }
}
