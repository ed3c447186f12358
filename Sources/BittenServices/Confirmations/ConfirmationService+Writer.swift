import BittenCore
import DequeModule
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// The ledger writer: accepted entries into each shard's confirmation stream (one script call per shard and
/// batch), handed to this process's engine, or kept in the spool while Redis is away.
extension ConfirmationService {
    func writeLoop() async {
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
    func drain() async {
        var backoff = Duration.milliseconds(50)
        while true {
            do {
                if let spool, spool.count > 0 {
                    let spooled = try spool.entries()
                    for start in stride(from: 0, to: spooled.count, by: 1000) {
                        try await append(spooled[start..<min(spooled.count, start + 1000)].map { Accepted(entry: $0) })
                    }
                    try spool.clear()
                    logger.notice(
                        "spooled confirmations replayed", metadata: ["bitten.confirmations.entries": "\(spooled.count)"]
                    )
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
                            logger.error(
                                "could not spool confirmations at shutdown (the journal keeps them)",
                                metadata: ["bitten.confirmations.entries": "\(waiting.count)"])
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
    struct Call {
        var shard: Int
        var args: [String]
        /// Each message's fields (its stream id is known once appended).
        var messages: [[(String, String)]] = []
        var events: [LedgerEvent?] = []
        var decoded = true
    }

    /// Appends entries through the idempotent script, one call (one stream entry) per shard and writer
    /// (entries from an older spool may carry another writer id), each shard's in order. What was appended
    /// goes to the engine here when it takes it (`HandOver`); the reader is woken for the rest.
    func append(_ entries: [Accepted]) async throws {
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
                var expected = ""
                if let handOver { expected = lastHanded.withLock { $0[shard] } ?? handOver.appliedCursor(shard) ?? "" }
                calls.append(
                    Call(
                        shard: shard,
                        args: [
                            "EVALSHA", "", "2", keys.confirmations, keys.list("confirmations:writers"), entry[0],
                            expected,
                        ]))
            }
            calls[at].args.append(entry[1])
            calls[at].args.append(LedgerRecord.encode(fields))
            calls[at].messages.append(fields)
            calls[at].events.append(accepted.event)
            calls[at].decoded = calls[at].decoded && accepted.decoded
        }
        guard !calls.isEmpty else { return }
        // The engine's reader leaves these ledgers to the hand-over from now on (withdrawn if nothing comes).
        if let handOver { for call in calls { handOver.handOverAnnounced(shard: call.shard) } }
        do {
            try await append(calls)
        } catch {
            for call in calls { handOver?.handOverWithdrawn(shard: call.shard) }
            throw error
        }
    }

    /// Sends the script calls and hands what was appended over.
    private func append(_ calls: [Call]) async throws {
        var replies: [RedisReply] = []
        if redis.isCluster {
            // Each shard's ledger is in its own slot: one script call per shard, in order within each.
            for call in calls {
                replies.append(
                    try await redis.evaluate(
                        Self.appendScript, keys: [call.args[3], call.args[4]], args: Array(call.args.dropFirst(5))))
            }
        } else {
            let prepared = calls.map(\.args)
            replies = try await redis.withConnection { connection in
                let sha = try connection.scriptSHA(Self.appendScript)
                let replies = try connection.pipeline(
                    prepared.map { call in
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
                leftUnoffered.increment(by: call.messages.count)
                handOver?.handOverWithdrawn(shard: call.shard)
                continue
            }
            if count == 0 {
                handOver?.handOverWithdrawn(shard: call.shard)
                continue
            }
            guard count == call.messages.count, call.decoded, handOver != nil, let id = parts[1].string,
                let previous = parts[2].string,
                !previous.isEmpty
            else {
                readerNeeded = true
                leftUnoffered.increment(by: count)
                // The ledger ends with this entry now: the next batch follows it and is offered (the engine catches
                // up to it first), instead of every later batch following an entry the engine has not applied yet.
                let end = handOver?.appliedCursor(call.shard) != nil ? parts[1].string : nil
                lastHanded.withLock { $0[call.shard] = end }
                handOver?.handOverWithdrawn(shard: call.shard)
                continue
            }
            let messages = call.messages.enumerated().map { StreamEntry(id: "\(id)#\($0.offset)", fields: $0.element) }
            handing.append(
                Handed(shard: call.shard, id: id, previous: previous, messages: messages, events: call.events))
            lastHanded.withLock { $0[call.shard] = id }
            handOver?.handOverComing(shard: call.shard, through: id)
        }
        if readerNeeded { handOver?.wake() }
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
    func handOverLoop() async {
        guard let handOver else { return }
        for await batch in handed {
            var readerNeeded = false
            for item in batch {
                await handOver.waitForRoom(shard: item.shard)
                // Entries before this batch were left to the reader (not offered): the engine reads them first.
                if let applied = handOver.appliedCursor(item.shard),
                    !StreamEntry.id(applied, isAtOrAfter: item.previous)
                {
                    _ = await handOver.catchUp(shard: item.shard, through: item.previous)
                }
                guard
                    !handOver.appended(
                        shard: item.shard, id: item.id, after: item.previous, messages: item.messages,
                        events: item.events)
                else {
                    handedOver.increment(by: item.messages.count)
                    continue
                }
                // The reader got there first (its poll, another wake-up): applied already, nothing to wake it for.
                // Waking it here made it read every batch still on its way, which were refused in turn.
                if let applied = handOver.appliedCursor(item.shard), StreamEntry.id(applied, isAtOrAfter: item.id) {
                    readFirst.increment(by: item.messages.count)
                    continue
                }
                readerNeeded = true
                leftRefused.increment(by: item.messages.count)
                lastHanded.withLock { if $0[item.shard] == item.id { $0[item.shard] = nil } }
            }
            handedBatches.subtract(1, ordering: .relaxed)
            if readerNeeded { handOver.wake() }
        }
    }

    /// The first `count` entries of the queue are in the ledger or the spool; once nothing waits in memory,
    /// the journal is emptied (under the queue's lock, so nothing accepted meanwhile is dropped from it).
    func taken(_ count: Int) {
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

    func markRedis(up: Bool, error: (any Error)? = nil) {
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
            logger.error(
                "Redis unreachable; spooling confirmations",
                metadata: ["bitten.error": "\(error.map { "\($0)" } ?? "")"])
        }
    }

    /// No ledger here: the entries go to the spool (memory when there is none), never to Redis.
    func keep(_ entries: [Accepted], because reason: String) {
        var spooled = false
        if let spool {
            do {
                try spool.append(entries.map(\.entry))
                spooled = true
            } catch {
                logger.error(
                    "could not spool confirmations",
                    metadata: ["bitten.confirmations.entries": "\(entries.count)", "bitten.error": "\(error)"])
            }
        }
        if !spooled { queue.withLock { $0.append(contentsOf: entries) } }
        keptThrottle.log(
            logger, .warning,
            "confirmation kept, not applied: the ledger is off here",
            metadata: [
                "bitten.confirmations.entries": "\(entries.count)", "bitten.reason": "\(reason)",
                "bitten.confirmations.backlog": "\(backlog)",
            ])
    }
}
