import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// Running: the shard leases, the group commits and what a commit round reports.
extension TradeEngine {
    /// Runs until the group shuts down.
    public func run() async throws {
        board.set(Self.name, .starting, detail: "taking \(lanes.count) shards")
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.leaseLoop() }
                group.addTask { await self.ledgerLoop() }
                // On one server the rounds run on the commit lane's own thread: each round's blocking EXEC and the
                // code around it follow one another there, with no hand-off to the pool and back per round.
                group.addTask {
                    await withTaskExecutorPreference(self.commitLane?.client.executor) { await self.commitLoop() }
                }
            }
        } onGracefulShutdown: {
            self.commitWake.signal()
            self.ledgerWake.signal()
        }
        // What is still in memory and uncommitted goes now; the leases are given back for the next run.
        await commitRound()
        commitLane?.shutdown()
        for lane in lanes {
            if let token = lane.state.withLock({ $0.token }) { try? await lane.store.release(token: token) }
        }
        board.set(Self.name, .stopped)
    }

    var stopping: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    /// Takes and renews the leases; a shard newly taken (or taken back with a new fence) is loaded first. The
    /// shards are tended side by side: at a start, every shard is taken and loaded in about the time of one.
    func leaseLoop() async {
        let renewEvery = settings.leaseTTL / 4
        while !stopping {
            await withDiscardingTaskGroup { group in
                for lane in lanes { group.addTask { await self.tend(lane) } }
            }
            let owned = ownedShards
            board.set(
                Self.name, owned == lanes.count ? .running : .starting,
                detail: owned == lanes.count ? nil : "\(owned) of \(lanes.count) trade shards owned here")
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: renewEvery) }
        }
    }

    /// Takes or renews one shard's lease; loads the shard when it is newly taken.
    private func tend(_ lane: Lane) async {
        guard !stopping else { return }
        do {
            let token = try await lane.store.acquire(
                instance: settings.instance, boot: boot, ttl: settings.leaseTTL)
            let held = lane.state.withLock { $0.token }
            if token == nil {
                if held != nil { lose(lane, because: "another process took the lease") }
                lane.state.withLock { state in
                    state.status = "owned by another process"
                    state.tried = true
                }
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
                    state.tried = true
                }
                ledgerWake.signal()
                logger.info(
                    "trade shard taken",
                    metadata: [
                        "bitten.trade.shard": "\(lane.index)",
                        "bitten.trade.checkpoint": "\(loaded.checkpoint)",
                    ])
            }
            if token != nil { await trimLedger(lane) }
        } catch {
            throttle.log(
                logger, .warning,
                "trade shard lease not renewed",
                metadata: [
                    "bitten.trade.shard": "\(lane.index)", "bitten.error": "\(error)",
                ])
        }
    }

    /// The shard is no longer ours: its memory is dropped (the next owner loads what was committed) and
    /// everyone waiting is told.
    func lose(_ lane: Lane, because reason: String) {
        let waiters = lane.state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.shard = nil
            state.token = nil
            state.backlog = []
            state.uncommittedEntries = 0
            state.status = "lost: \(reason)"
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters {
            waiter.resume(throwing: TradeEngineUnavailable("trade shard \(lane.index) lost: \(reason)"))
        }
        logger.warning(
            "trade shard lost", metadata: ["bitten.trade.shard": "\(lane.index)", "bitten.reason": "\(reason)"])
    }

    /// Commits for every shard owned here, round after round: a round takes what each shard changed since
    /// its last commit and stores all of it together (`ShardStore.commit(_:redis:)`); what changes while a
    /// round is on its way goes with the next.
    func commitLoop() async {
        var backoff = Duration.milliseconds(20)
        while !stopping {
            await commitWake.wait()
            // Only changes nobody waits for: a moment for more to join them (ended by one somebody waits for).
            let lazyOnly =
                lanes.allSatisfy { lane in
                    lane.state.withLock { $0.waiters.isEmpty && $0.uncommittedEntries == 0 && $0.backlog.isEmpty }
                } && !(riding.withLock { $0.source }?.waitingToRide ?? false)
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
    func commandsRefused(_ refused: [ShardStore.CommandFailure]) {
        commandsRefusedCounter.increment(by: refused.count)
        throttle.log(
            logger, .error,
            "trade commit: Redis refused commands (the rest of the commit is stored)",
            metadata: [
                "bitten.socket.refused": "\(refused.prefix(5).map(\.description).joined(separator: "; "))",
                "bitten.count": "\(refused.count)",
            ])
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

    func stage(_ fault: Fault, _ taken: [Taken]) {
        guard settings.fault == fault,
            taken.contains(where: { $0.changes.contains { if case .fireCreated = $0 { true } else { false } } })
        else { return }
        logger.critical("fault injection: the process dies here", metadata: ["bitten.trade.fault": "\(fault.rawValue)"])
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
    func commitRound() async -> CommitOutcome {
        var taken: [Taken] = []
        var traced: [(changes: [TradeChange], closeFires: [Int: String])] = []
        defer {
            // Outside the lanes' locks, and made into steps at the recorder's flush, not here: the recorder only
            // needs the changes and the fires of the close requests.
            if let recorder, !traced.isEmpty {
                let at = now()
                let batch = traced
                recorder.later {
                    batch.flatMap { Self.traceSteps($0.changes, closeFires: $0.closeFires, at: at) }
                }
            }
        }
        for lane in lanes {
            let item: Taken? = lane.state.withLock { state in
                guard state.shard != nil, let token = state.token else { return nil }
                let fresh = state.shard!.takeChanges()
                if recorder != nil, !fresh.isEmpty { traced.append((fresh, Self.closeFires(fresh, in: state.shard!))) }
                state.lazy = false
                guard
                    !fresh.isEmpty || !state.backlog.isEmpty || state.applied != state.committed
                        || !state.waiters.isEmpty
                else { return nil }
                defer {
                    state.backlog = []
                    state.waiters = []
                }
                return Taken(
                    // Joined only when a failed round left a backlog (a join copies every change).
                    lane: lane, changes: state.backlog.isEmpty ? fresh : state.backlog + fresh, waiters: state.waiters,
                    sequence: state.shard!.book.sequence,
                    applied: state.applied, token: token, entries: state.uncommittedEntries,
                    checkpointMoved: state.applied != state.committed)
            }
            if let item { taken.append(item) }
        }
        let riders = riding.withLock { $0.source }?.takeRiders() ?? []
        guard !taken.isEmpty || !riders.isEmpty else { return .idle }
        let stored = taken.filter { !$0.changes.isEmpty || $0.checkpointMoved }
        let pending = stored.map {
            ShardStore.Pending(
                store: $0.lane.store,
                commands: ShardStore.commands(
                    for: $0.changes, keys: $0.lane.store.keys, sequence: $0.sequence,
                    lastApplied: $0.applied),
                token: $0.token)
        }
        var results: [Int: Result<[ShardStore.CommandFailure], any Error>] = [:]
        if !pending.isEmpty {
            stage(.exitBeforeCommit, stored)
            for (item, result) in zip(
                stored, await ShardStore.commit(pending, riders: riders, redis: redis, lane: commitLane))
            {
                results[item.lane.index] = result
            }
            commitsCounter.increment()
            stage(.exitAfterCommit, stored)
        } else {
            await CommitRider.run(riders, redis: redis)
        }
        var failed = false
        var roomMade = false
        var ledgerFreed = false
        for item in taken {
            switch results[item.lane.index] ?? .success([]) {
            case .success(let refused):
                if !refused.isEmpty { commandsRefused(refused) }
                item.lane.state.withLock { state in
                    if state.token == item.token {
                        state.committed = item.applied
                        state.uncommittedEntries -= item.entries
                        roomMade = roomMade || item.entries > 0
                        if state.ledgerHeld {
                            state.ledgerHeld = false
                            ledgerFreed = true
                        }
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
                    waiter.resume(
                        throwing: TradeEngineUnavailable("the trade state could not be stored (Redis): \(error)"))
                }
                throttle.log(
                    logger, .error,
                    "trade commit failed; retrying",
                    metadata: [
                        "bitten.trade.shard": "\(item.lane.index)", "bitten.trade.changes": "\(item.changes.count)",
                        "bitten.error": "\(error)",
                    ])
            }
        }
        // The round's changes are freed on the pool, not here: one thread makes every round while Redis waits for it,
        // and freeing a round's thousands of changes took a sixth of that thread's time.
        let spent = (consume taken, consume stored, consume pending)
        Task.detached { withExtendedLifetime(spent) {} }
        recordPending()
        // A shard whose ledger waited for this commit may go on.
        if roomMade { roomWake.signal() }
        if ledgerFreed { ledgerWake.signal() }
        return failed ? .failed : .committed
    }
}
