import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// Persistence: restoring the nodes at start and writing what changed (flush) in one pipeline.
extension NodeRegistry {
    /// Loads persisted nodes, then flushes changes until shutdown (with a last flush on the way out).
    public func run() async throws {
        board.set(Self.name, .running)
        await restore()
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await flush()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.flushInterval) }
            }
        } onGracefulShutdown: {
        }
        await flush(all: true)
        board.set(Self.name, .stopped)
    }

    func restore() async {
        for attempt in 0..<20 {
            do {
                // Shared connections, not a blocking one: on a cluster the hashes live on several primaries.
                let uuids =
                    try await redis.command(["SMEMBERS", RedisKeys.activeNodes]).array?.compactMap(\.string) ?? []
                let replies =
                    uuids.isEmpty ? [] : try await redis.pipeline(uuids.map { ["HGETALL", RedisKeys.node($0)] })
                let records = replies.compactMap { $0.hash.flatMap(NodeRecord.init(redisHash:)) }
                state.withLock { $0.table.restore(records) }
                if !records.isEmpty { logger.info("restored nodes", metadata: ["bitten.count": "\(records.count)"]) }
                return
            } catch {
                if attempt == 19 { logger.warning("could not restore nodes", metadata: ["bitten.error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Writes every changed node and pending event in one pipeline. On failure they stay queued. The heartbeat-only
    /// changes are due every `heartbeatWriteInterval` and go out a share per flush (all of them with `all`).
    public func flush(all: Bool = false) async {
        let started = now()
        let (records, events, counts): ([NodeRecord], [NodeEvent], [String: (online: Int, total: Int)]) = state.withLock
        { s in
            if all || started - s.lazyFlushedAt >= heartbeatWriteInterval {
                // A second of overlap: a message stamped just before the last write may have been applied
                // just after it (a node written twice is only compared twice: unchanged fields are not sent).
                markLazyDue(since: s.lazyFlushedAt - 1, in: &s)
                s.lazyFlushedAt = started
            }
            takeLazyShare(all: all, from: &s)
            let records = s.dirty.compactMap { s.table.nodes[$0] }
            let events = s.events
            s.dirty.removeAll(keepingCapacity: true)
            s.events = []
            return (records, events, events.isEmpty ? [:] : s.table.countsByBroker)
        }
        onlineGauge.record(self.counts(at: now()).online)
        guard !records.isEmpty || !events.isEmpty else { return }
        let at = now()
        let (changes, _) = written.withLock { w in Self.changes(of: records, since: w, at: at) }
        let commands = commandsFor(changes: changes, events: events, counts: counts)
        guard !commands.isEmpty else { return }
        do {
            let replies = try await redis.pipeline(commands)
            if let failure = replies.first(where: { if case .error = $0 { true } else { false } }) {
                logger.error("node flush had an error reply", metadata: ["bitten.redis.reply": "\(failure)"])
                // Whole hashes again next time: what the error left out is not known.
                written.withLock { w in for record in records { w[record.uuid] = nil } }
            } else {
                written.withLock { w in
                    if w.count > 200_000 { w.removeAll() }
                    for change in changes { w[change.uuid] = change.written }
                }
            }
            board.count(Self.name, out: records.count + events.count)
        } catch {
            state.withLock { s in
                for record in records { s.dirty.insert(record.uuid) }
                s.events = events + s.events
            }
            board.count(Self.name, errors: 1)
        }
    }

    /// The heartbeat write's due nodes: every node seen since `since` joins those still queued (in order, once
    /// each), and each flush from now on writes a share of them, the queue written out within half the interval.
    func markLazyDue(since: Double, in s: inout State) {
        var due = Array(s.lazyDue[s.lazyCursor...])
        let queued = Set(due)
        let nodes = s.table.nodes
        // By index: reading a node's `lastSeen` in place, not a copy of each 44-field record.
        for index in nodes.indices where nodes.values[index].lastSeen >= since {
            let uuid = nodes.keys[index]
            if !queued.contains(uuid) { due.append(uuid) }
        }
        s.lazyDue = due
        s.lazyCursor = 0
        let flushes = max(1, Int(heartbeatWriteInterval / max(flushInterval / .seconds(1), 0.001) / 2))
        s.lazyShare = max(Self.minLazyShare, (due.count + flushes - 1) / flushes)
    }

    /// Moves this flush's share of the due nodes (all of them with `all`) to the dirty set.
    func takeLazyShare(all: Bool, from s: inout State) {
        let left = s.lazyDue.count - s.lazyCursor
        guard left > 0 else { return }
        let take = all ? left : min(left, s.lazyShare)
        for uuid in s.lazyDue[s.lazyCursor..<(s.lazyCursor + take)] { s.dirty.insert(uuid) }
        s.lazyCursor += take
        if s.lazyCursor == s.lazyDue.count {
            s.lazyDue.removeAll(keepingCapacity: true)
            s.lazyCursor = 0
        }
    }

    /// What a node's flush writes: the fields that changed since the last write (all of them the first
    /// time and every `fullWriteInterval`), and the active-set update when its status changed.
    struct NodeChange {
        var uuid: String
        var fields: [(String, String)]
        var status: Bool?
        var written: WrittenNode
    }

    /// A node as last written. A class: reading one out of the map then costs one retain, not a copy
    /// of the 44-field record (10 000 of them a second at 10 000 EAs).
    final class WrittenNode: Sendable {
        let record: NodeRecord
        let fullAt: Double

        init(record: NodeRecord, fullAt: Double) {
            self.record = record
            self.fullAt = fullAt
        }
    }

    static func changes(of records: [NodeRecord], since written: [String: WrittenNode], at time: Double)
        -> ([NodeChange], Int)
    {
        var changes: [NodeChange] = []
        var unchanged = 0
        for record in records {
            guard let last = written[record.uuid], time - last.fullAt < fullWriteInterval else {
                changes.append(
                    NodeChange(
                        uuid: record.uuid, fields: record.redisFields, status: record.online,
                        written: WrittenNode(record: record, fullAt: time)))
                continue
            }
            let changed = record.redisFields(changedSince: last.record)
            let status: Bool? = last.record.online == record.online ? nil : record.online
            guard !changed.isEmpty || status != nil else {
                unchanged += 1
                continue
            }
            changes.append(
                NodeChange(
                    uuid: record.uuid, fields: changed, status: status,
                    written: WrittenNode(record: record, fullAt: last.fullAt)))
        }
        return (changes, unchanged)
    }

    func commandsFor(changes: [NodeChange], events: [NodeEvent], counts: [String: (online: Int, total: Int)])
        -> [[String]]
    {
        var commands: [[String]] = []
        for change in changes {
            if !change.fields.isEmpty {
                commands.append(["HSET", RedisKeys.node(change.uuid)] + change.fields.flatMap { [$0.0, $0.1] })
            }
            if let online = change.status {
                commands.append([online ? "SADD" : "SREM", RedisKeys.activeNodes, change.uuid])
            }
        }
        var brokers: Set<String> = []
        for event in events {
            switch event {
            case .connected(let uuid, let nodeID, let account, let broker, let at, let reconnect):
                commands.append([
                    "LPUSH", RedisKeys.nodeHistory(uuid),
                    #"{"event":"\#(reconnect ? "reconnect" : "connect")","node_id":"\#(RedisKeys.safe(nodeID))","account":\#(account),"at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.nodeHistory(uuid), "0", String(historyLength - 1)])
                commands.append(["HINCRBY", RedisKeys.brokerStats(broker), "connections", "1"])
                commands.append(["HSET", RedisKeys.brokerStats(broker), "last_seen", String(Int(at))])
                brokers.insert(broker)
            case .accountSwitch(let uuid, let old, let new, let at):
                commands.append([
                    "LPUSH", RedisKeys.accountSwitches(uuid),
                    #"{"old_account":\#(old),"new_account":\#(new),"at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.accountSwitches(uuid), "0", String(historyLength - 1)])
            case .offline(let uuid, let broker, let reason, let at):
                commands.append([
                    "LPUSH", RedisKeys.nodeHistory(uuid),
                    #"{"event":"offline","reason":"\#(reason)","at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.nodeHistory(uuid), "0", String(historyLength - 1)])
                brokers.insert(broker)
            case .switchPending(let uuid, _, let account, _, _, let at):
                commands.append([
                    "LPUSH", RedisKeys.nodeHistory(uuid),
                    #"{"event":"switch_pending","account":\#(account),"at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.nodeHistory(uuid), "0", String(historyLength - 1)])
            case .duplicateEA(let uuid, _, _, let account, let at):
                commands.append([
                    "LPUSH", RedisKeys.nodeHistory(uuid),
                    #"{"event":"duplicate_refused","account":\#(account),"at":\#(Int(at))}"#,
                ])
                commands.append(["LTRIM", RedisKeys.nodeHistory(uuid), "0", String(historyLength - 1)])
            }
        }
        for broker in brokers {
            let count = counts[broker] ?? (0, 0)
            commands.append([
                "HSET", RedisKeys.brokerStats(broker), "nodes", String(count.total), "online", String(count.online),
            ])
        }
        return commands
    }
}
