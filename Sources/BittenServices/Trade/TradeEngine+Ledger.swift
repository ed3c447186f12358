import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// The ledger side: reading each owned shard's confirmation stream and applying it (or what this process's
/// confirmation writer hands over).
extension TradeEngine: ConfirmationService.HandOver {
    /// Reads every owned shard's ledger after its cursor, in one pipeline, and applies what came; waits for
    /// a wake-up (an append in this process) or `pollInterval` (appends of other processes) when nothing did.
    func ledgerLoop() async {
        while !stopping {
            // A shard that has applied its share ahead of its commits is left until one has stored them.
            let cursors: [(Lane, String, Int)] = lanes.compactMap { lane in
                lane.state.withLock { state in
                    guard state.shard != nil else { return nil }
                    // Left to this process's writer, which is about to hand it over (read back from the stream,
                    // its entries would be decoded twice and the hand-over would find them taken).
                    if let coming = state.handOverComing, coming.since.duration(to: .now) < settings.handOverGrace {
                        return nil
                    }
                    let room = settings.maxUncommitted - state.uncommittedEntries
                    state.ledgerHeld = room <= 0
                    return room > 0 ? (lane, state.applied, min(settings.batch, room)) : nil
                }
            }
            guard !cursors.isEmpty else {
                await ledgerWake.wait(timeout: settings.pollInterval)
                continue
            }
            let replies: [RedisReply]
            do {
                replies = try await redis.pipeline(
                    cursors.map { lane, cursor, count in
                        [
                            "XRANGE", lane.store.keys.confirmations, cursor == "0" ? "-" : "(" + cursor, "+", "COUNT",
                            String(count),
                        ]
                    })
            } catch {
                throttle.log(
                    logger, .warning,
                    "trade ledger not read",
                    metadata: ["bitten.error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            var any = false
            for ((lane, cursor, _), reply) in zip(cursors, replies) {
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
    public func appended(
        shard: Int, id: String, after previous: String, messages: [StreamEntry], events: [LedgerEvent?]
    ) -> Bool {
        guard lanes.indices.contains(shard), messages.count == events.count else { return false }
        let applied = apply(messages, events: events, through: id, on: lanes[shard], after: previous)
        // Refused, the reader must read it now; the last one announced, the reader may read what comes after.
        lanes[shard].state.withLock { state in
            if !applied || state.handOverComing?.id == id { state.handOverComing = nil }
        }
        return applied
    }

    /// Reads and applies `shard`'s ledger up to stream entry `previous` (included), where a batch the writer is
    /// about to hand over follows: entries appended before it that were left to the reader (not offered: the
    /// shard was not owned here yet, another writer's entry came between) and that the reader, kept away from a
    /// ledger with a hand-over coming, has not applied yet. Without this every later batch would follow an entry
    /// the engine has not applied, be refused in turn and be read back from the stream, for as long as the
    /// writer stays ahead: under a steady load, for good. In bounded steps, as the reader does (room for
    /// `Settings.maxUncommitted`); returns whether the engine now stands at `previous`. Stops (false) when the
    /// shard is not owned here, the engine is already past `previous`, or the ledger cannot be read.
    public func catchUp(shard: Int, through previous: String) async -> Bool {
        guard lanes.indices.contains(shard) else { return false }
        let lane = lanes[shard]
        while !stopping {
            await waitForRoom(shard: shard)
            let step: (cursor: String, count: Int)? = lane.state.withLock { state in
                guard state.shard != nil, state.applied != previous,
                    !StreamEntry.id(state.applied, isAtOrAfter: previous)
                else { return nil }
                return (state.applied, min(settings.batch, max(settings.maxUncommitted - state.uncommittedEntries, 1)))
            }
            guard let step else { break }
            let entries: [StreamEntry]
            do {
                let start = step.cursor == "0" ? "-" : "(" + step.cursor
                entries = StreamEntry.list(
                    try await redis.command([
                        "XRANGE", lane.store.keys.confirmations, start, previous, "COUNT", String(step.count),
                    ]))
            } catch {
                throttle.log(
                    logger, .warning, "trade ledger not read (catching up before a hand-over)",
                    metadata: ["bitten.error": "\(error)"])
                return false
            }
            // Nothing up to `previous` (not in this ledger): left to the reader.
            guard let last = entries.last?.id else { break }
            let messages = entries.flatMap(LedgerRecord.messages(of:))
            // Not applied when the reader (past its grace) got there first: the next step starts where it stopped.
            if apply(messages, events: nil, through: last, on: lane, after: step.cursor) {
                caughtUp.increment(by: messages.count)
            }
        }
        return appliedCursor(shard) == previous
    }

    /// Trims `lane`'s ledger (at most once per `Settings.ledgerTrimEvery`): the entries older than
    /// `Settings.ledgerRetention`, and only those its commits have stored (`ledgerTrimID`), so the ledger does not
    /// grow for ever and a restart or a takeover still finds every entry after the checkpoint it replays from.
    /// Trimmed by whole stream nodes (`MINID ~`, 10 000 entries at most per call): cheap for Redis, and what a
    /// call leaves goes with the next.
    func trimLedger(_ lane: Lane) async {
        guard settings.ledgerRetention > 0 else { return }
        let committed: String? = lane.state.withLock { state in
            guard state.token != nil else { return nil }
            if let at = state.trimmedAt, at.duration(to: .now) < settings.ledgerTrimEvery { return nil }
            state.trimmedAt = .now
            return state.committed
        }
        guard let committed,
            let minID = Self.ledgerTrimID(committed: committed, now: now(), retention: settings.ledgerRetention)
        else { return }
        do {
            let trimmed =
                try await redis.command([
                    "XTRIM", lane.store.keys.confirmations, "MINID", "~", minID, "LIMIT", "10000",
                ]).int ?? 0
            trimmedEntries.increment(by: trimmed)
        } catch {
            throttle.log(
                logger, .warning, "trade ledger not trimmed",
                metadata: ["bitten.trade.shard": "\(lane.index)", "bitten.error": "\(error)"])
        }
    }

    /// Below which stream id a ledger may be trimmed: the older of `now` less `retention` and the entry the
    /// shard's commits stored last (`committed`; an entry after it is still to be replayed). Nil when nothing
    /// may go: no entry stored yet ("0"), or a retention reaching before 1970.
    static func ledgerTrimID(committed: String, now: Double, retention: Double) -> String? {
        guard committed != "0", let stored = UInt64(committed.split(separator: "-").first ?? ""), now > retention
        else { return nil }
        return "\(min(UInt64((now - retention) * 1000), stored))-0"
    }

    /// This process's writer is appending to `shard`'s ledger to hand it over: until it has (`appended`) or
    /// withdraws, or for `Settings.handOverGrace` at most, the reader leaves that ledger alone.
    public func handOverAnnounced(shard: Int) {
        guard lanes.indices.contains(shard) else { return }
        lanes[shard].state.withLock { $0.handOverComing = (nil, .now) }
    }

    /// This process's writer has appended stream entry `id` to `shard`'s ledger and is about to hand it over.
    public func handOverComing(shard: Int, through id: String) {
        guard lanes.indices.contains(shard) else { return }
        lanes[shard].state.withLock { $0.handOverComing = (id, .now) }
    }

    /// Nothing is coming for `shard` after all: the reader reads its ledger again.
    public func handOverWithdrawn(shard: Int) {
        guard lanes.indices.contains(shard) else { return }
        lanes[shard].state.withLock { $0.handOverComing = nil }
    }

    /// Returns once `shard` may apply more ledger messages (`Settings.maxUncommitted`): at once, unless it has
    /// applied that many ahead of its commits; then after a commit has stored them. The confirmation writer
    /// waits here before it hands a batch over, so a burst is applied (and stored) in bounded commits.
    public func waitForRoom(shard: Int) async {
        guard lanes.indices.contains(shard) else { return }
        let lane = lanes[shard]
        func full() -> Bool {
            lane.state.withLock { $0.shard != nil && $0.uncommittedEntries >= settings.maxUncommitted }
        }
        while !stopping, full() {
            commitWake.signal()
            await roomWake.wait(timeout: .milliseconds(100))
        }
    }

    /// The last ledger entry applied in memory for `shard` ("0": none), while this process owns it.
    public func appliedCursor(_ shard: Int) -> String? {
        guard lanes.indices.contains(shard) else { return nil }
        return lanes[shard].state.withLock { $0.shard != nil ? $0.applied : nil }
    }

    /// Applies ledger messages (decoded here unless `events` come with them) that end with stream entry
    /// `last` and follow `cursor`; nothing when the shard is not owned here or `cursor` is not where it stands.
    @discardableResult
    func apply(
        _ entries: [StreamEntry], events: [LedgerEvent?]?, through last: String, on lane: Lane, after cursor: String
    ) -> Bool {
        let results: [String]? = lane.state.withLock { state in
            guard state.shard != nil, state.applied == cursor else { return nil }
            var results: [String] = []
            results.reserveCapacity(entries.count)
            for (index, entry) in entries.enumerated() {
                if let reason = entry["untrusted"] {
                    // Kept in the ledger (this entry), listed, never applied.
                    state.shard!.note(
                        "\(entry.id) \(entry["user_uuid"] ?? "") from \(entry["peer"] ?? "?"): \(reason)",
                        on: "confirmations:untrusted")
                    results.append("rejected_untrusted")
                } else if let event = events.map({ $0[index] }) ?? LedgerEvent(entry: entry) {
                    results.append(state.shard!.apply(event, streamID: entry.id))
                } else {
                    results.append("undecodable")
                }
            }
            // Their events written here, outside the commit round (which one thread makes for every shard).
            state.shard!.writeEvents()
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
    func recordPending() {
        pendingGauge.record(lanes.reduce(0) { $0 + $1.state.withLock { $0.uncommittedEntries } })
    }

    func report(_ entries: [StreamEntry], _ results: [String]) {
        var applied = 0
        for (entry, result) in zip(entries, results) {
            let outcome = result.hasPrefix("ok") ? "ok" : result
            outcomes[outcome]?.increment()
            if outcome == "ok" { applied += 1 }
            if result.hasSuffix("dropped") { stopsDropped(entry, result) }
            if result == "rejected_untrusted" {
                let uuid = entry["user_uuid"] ?? ""
                alerts?.raise(
                    kind: "untrusted_confirmation", uuid: uuid,
                    reason:
                        "a \(entry["type"] ?? "confirmation") for \(uuid) from \(entry["peer"] ?? "?") was not applied: \(entry["untrusted"] ?? "")",
                    at: now())
                if throttle.allow() == nil { continue }
            }
            if !["ok", "duplicate", "rejected", "ignored"].contains(outcome) {
                notAppliedLog.log(
                    logger, .warning,
                    "confirmation not applied",
                    metadata: [
                        "bitten.trade.stream_id": "\(entry.id)", "bitten.outcome": "\(result)",
                        "bitten.type": "\(entry["type"] ?? "")",
                        "bitten.node.uuid": "\(entry["user_uuid"] ?? "")",
                    ])
            }
        }
        board.count(Self.name, in: entries.count, out: applied)
    }

    /// A fill whose stop loss or take profit was on the wrong side of the fill price: the EA dropped it,
    /// so the position runs without it. Logged, counted and alerted.
    func stopsDropped(_ entry: StreamEntry, _ result: String) {
        let uuid = entry["user_uuid"] ?? ""
        var fireID = ""
        var ticket = 0
        if case .fire(let answer)? = LedgerEvent(entry: entry) { (fireID, ticket) = (answer.fireID, answer.ticket) }
        let what =
            result == "ok:sl_tp_dropped"
            ? "stop loss and take profit" : (result == "ok:sl_dropped" ? "stop loss" : "take profit")
        droppedStops.increment()
        logger.warning(
            "position opened without its \(what): it was on the wrong side of the fill price and the EA dropped it",
            metadata: [
                "bitten.node.uuid": "\(uuid)", "bitten.fire.id": "\(fireID)", "bitten.position.ticket": "\(ticket)",
            ])
        alerts?.raise(
            kind: result == "ok:tp_dropped" ? "target_dropped" : "stop_dropped", uuid: uuid,
            reason:
                "position \(ticket) (fire \(fireID)) runs without its \(what): it was on the wrong side of the fill price",
            at: now())
    }
}
