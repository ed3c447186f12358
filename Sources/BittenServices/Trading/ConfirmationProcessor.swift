import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle

/// Consumes the durable ledger `stream:confirmations` with a consumer group and applies each entry
/// (fill, rejection, close with P&L and statistics) through one idempotent Lua script, then
/// acknowledges it. After a crash the entries this consumer read but did not acknowledge are read
/// again first; the scripts recognise what was already applied, so nothing counts twice.
public final class ConfirmationProcessor: Service, Sendable {
    public static let name = "confirmation_processor"
    public static let group = "processors"

    private let redis: RedisClient
    private let consumer: String
    private let board: ServiceBoard
    private let logger: Logger
    private let batchSize: Int
    private let pollInterval: Duration
    private let wakeups = WakeSignal()
    private let outcomes: [String: Counter]
    private let lagGauge = Gauge(label: "bitten_confirmations_pending")
    private let droppedStops = Counter(label: "bitten_stops_dropped_total")
    private let alerts: AlertQueue?
    private let throttle = LogThrottle()

    public init(redis: RedisClient, consumer: String = "bitten-1", board: ServiceBoard, batchSize: Int = 500,
                pollInterval: Duration = .milliseconds(250), logger: Logger, alerts: AlertQueue? = nil) {
        self.alerts = alerts
        self.redis = redis
        self.consumer = consumer
        self.board = board
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.logger = logger
        var outcomes: [String: Counter] = [:]
        for outcome in ["ok", "duplicate", "unknown_fire", "unknown_position", "wrong_user", "invalid", "rejected",
                        "ignored", "undecodable", "error", "rejected_untrusted"] {
            outcomes[outcome] = Counter(label: "bitten_confirmations_processed_total", dimensions: [("outcome", outcome)])
        }
        self.outcomes = outcomes
        board.register(Self.name)
    }

    /// Tells the processor that entries were appended (it also polls, for other processes' entries).
    public func wake() { wakeups.signal() }

    public func run() async throws {
        board.set(Self.name, .running)
        await withGracefulShutdownHandler {
            var backlogFirst = true
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    let processed = try await processBatch(id: backlogFirst ? "0" : ">")
                    if backlogFirst && processed == 0 { backlogFirst = false }
                    if processed > 0 { continue }
                } catch {
                    backlogFirst = true
                    if Task.isCancelled { break }
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                await wakeups.wait(timeout: pollInterval)
            }
        } onGracefulShutdown: {
            self.wakeups.signal()
        }
        board.set(Self.name, .stopped)
    }

    /// Reads one batch (`0`: this consumer's unacknowledged entries; `>`: new ones), applies it and
    /// acknowledges it. Returns how many entries it handled.
    @discardableResult
    public func processBatch(id: String = ">") async throws -> Int {
        let stream = RedisKeys.confirmations
        let group = Self.group
        let consumer = self.consumer
        let size = batchSize
        let (entries, results, notes, pending): ([StreamEntry], [String], [String?], Int) = try await redis.withConnection { connection in
            try connection.xgroupCreate(stream, group: group)
            let entries = try connection.xreadgroup(group: group, consumer: consumer, stream: stream, id: id, count: size)
            guard !entries.isEmpty else { return ([], [], [], try connection.xpendingCount(stream, group: group)) }
            let sha = try connection.scriptSHA(TradeScripts.applyBatch)
            // Decodable entries go to the batch script in chunks (each chunk one atomic script run,
            // short enough not to hold Redis up for long); the rest stay "undecodable".
            var results = [String](repeating: "undecodable", count: entries.count)
            var notes = [String?](repeating: nil, count: entries.count)
            var chunks: [(indices: [Int], call: [String])] = []
            for (index, entry) in entries.enumerated() {
                if entry["untrusted"] != nil {
                    // Kept in the ledger (this stream entry), listed, never applied.
                    results[index] = "rejected_untrusted"
                    continue
                }
                guard let arguments = Self.arguments(for: entry) else { continue }
                if chunks.isEmpty || chunks[chunks.count - 1].indices.count >= Self.scriptChunk {
                    chunks.append(([], ["EVALSHA", sha, "0"]))
                }
                chunks[chunks.count - 1].indices.append(index)
                chunks[chunks.count - 1].call += arguments
            }
            let replies = chunks.isEmpty ? [] : try connection.pipeline(chunks.map(\.call))
            if replies.contains(where: RedisConnection.isNoScript) {
                // Redis lost its scripts (restarted): nothing is acknowledged, the batch is read again and
                // the entries that did apply are recognised as duplicates.
                connection.forgetScripts()
                throw RedisError(.server, "NOSCRIPT: scripts reloaded, batch will be retried")
            }
            for (chunk, reply) in zip(chunks, replies) {
                guard let outcomes = reply.array, outcomes.count == chunk.indices.count else {
                    // The script as a whole failed: nothing of this chunk is acknowledged (read again later).
                    throw RedisError(.server, "confirmation batch failed: \(reply)")
                }
                for (index, outcome) in zip(chunk.indices, outcomes) {
                    let text = outcome.string ?? "error:unreadable reply"
                    if text.hasPrefix("error:") {
                        // Never let one entry block the ledger: note it for a later replay (the entry stays
                        // in the stream) and go on.
                        results[index] = "error"
                        _ = try connection.pipeline([
                            ["LPUSH", "confirmations:failed", "\(entries[index].id) \(text.dropFirst(6))"],
                            ["LTRIM", "confirmations:failed", "0", "9999"],
                        ])
                    } else {
                        results[index] = text
                    }
                    if text.hasPrefix("ok:") { results[index] = "ok"; notes[index] = String(text.dropFirst(3)) }
                }
            }
            let untrusted = entries.filter { $0["untrusted"] != nil }
            if !untrusted.isEmpty {
                var list: [String] = ["LPUSH", "confirmations:untrusted"]
                for entry in untrusted {
                    list.append("\(entry.id) \(entry["user_uuid"] ?? "") from \(entry["peer"] ?? "?"): \(entry["untrusted"] ?? "")")
                }
                _ = try connection.pipeline([list, ["LTRIM", "confirmations:untrusted", "0", "9999"]])
            }
            _ = try connection.xack(stream, group: group, ids: entries.map(\.id))
            return (entries, results, notes, try connection.xpendingCount(stream, group: group))
        }
        lagGauge.record(pending)
        for entry in entries where entry["untrusted"] != nil {
            let uuid = entry["user_uuid"] ?? ""
            alerts?.raise(kind: "untrusted_confirmation", uuid: uuid,
                          reason: "a \(entry["type"] ?? "confirmation") for \(uuid) from \(entry["peer"] ?? "?") was not applied: \(entry["untrusted"] ?? "")",
                          at: Date().timeIntervalSince1970)
        }
        for (entry, note) in zip(entries, notes) {
            guard let note, note.contains("dropped") else { continue }
            stopsDropped(entry, note)
        }
        for (entry, result) in zip(entries, results) {
            outcomes[result]?.increment()
            if !["ok", "duplicate", "rejected", "ignored"].contains(result) {
                if result == "rejected_untrusted", throttle.allow() == nil { continue }
                logger.warning("confirmation not applied", metadata: [
                    "stream_id": "\(entry.id)", "outcome": "\(result)", "type": "\(entry["type"] ?? "")",
                    "bitten.node.uuid": "\(entry["user_uuid"] ?? "")",
                ])
            }
        }
        if !entries.isEmpty { board.count(Self.name, in: entries.count, out: results.filter { $0 == "ok" }.count) }
        return entries.count
    }

    /// A fill whose stop loss or take profit was on the wrong side of the fill price: the EA dropped it,
    /// so the position runs without it. Logged, counted and alerted.
    private func stopsDropped(_ entry: StreamEntry, _ note: String) {
        let uuid = entry["user_uuid"] ?? ""
        let message = entry["payload"].flatMap { try? EAMessage.decode(Array($0.utf8), channel: .confirm) }
        var fireID = "", ticket = 0
        if case .confirmation(let c)? = message { (fireID, ticket) = (c.fireID, c.ticket) }
        let what = note == "sl_tp_dropped" ? "stop loss and take profit" : (note == "sl_dropped" ? "stop loss" : "take profit")
        droppedStops.increment()
        logger.warning("position opened without its \(what): it was on the wrong side of the fill price and the EA dropped it",
                       metadata: ["bitten.node.uuid": "\(uuid)", "bitten.fire.id": "\(fireID)", "ticket": "\(ticket)"])
        alerts?.raise(kind: note == "tp_dropped" ? "target_dropped" : "stop_dropped", uuid: uuid,
                      reason: "position \(ticket) (fire \(fireID)) runs without its \(what): it was on the wrong side of the fill price",
                      at: Date().timeIntervalSince1970)
    }

    /// Entries per script run: long enough to share the statistics reads and writes, short enough
    /// (a few milliseconds) not to hold up the fire path's own Redis calls.
    static let scriptChunk = 200

    /// The batch script's arguments for one ledger entry, or nil when its payload cannot be read.
    static func arguments(for entry: StreamEntry) -> [String]? {
        guard let receivedAt = entry["received_at"] else { return nil }
        let day = MetaTraderTime(epochSeconds: Int(Double(receivedAt) ?? 0))
        let dayText = String(format: "%04d-%02d-%02d", day.year, day.month, day.day)
        if entry["type"] == InferredClose.type {
            // Written by the position watcher: the market crossed a stop loss or take profit.
            guard let ticket = entry["ticket"], Int(ticket) != nil, let reason = entry["reason"],
                  reason == "stop_loss" || reason == "take_profit", let price = entry["price"], Double(price) != nil else { return nil }
            return ["i", "6", entry.id, ticket, reason, price, receivedAt, dayText]
        }
        guard let payload = entry["payload"],
              let message = try? EAMessage.decode(Array(payload.utf8), channel: .confirm) else { return nil }
        func n(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 8) ?? "0" }
        switch message {
        case .confirmation(let c):
            guard !c.fireID.isEmpty else { return nil }
            return ["c", "11", entry.id, c.fireID, c.succeeded ? "success" : "failed", String(c.ticket),
                    n(c.price), n(c.lot), c.message, String(c.accountNumber), c.userUUID, receivedAt, n(c.account.balance)]
        case .closeConfirmation(let c):
            return ["x", "13", entry.id, String(c.ticket), c.succeeded ? "success" : "failed", n(c.closePrice),
                    n(c.lot), c.message, String(c.accountNumber), c.userUUID, receivedAt, dayText, c.commandType,
                    n(c.account.balance), entry["quotes"] ?? ""]
        default:
            return nil
        }
    }
}
