import BittenCore
import BittenServices
import BittenTestSupport
import Foundation
import Redis
import Testing

/// A burst of confirmations is applied no faster than it is stored: each shard applies at most
/// `TradeEngine.Settings.maxUncommitted` ledger messages ahead of its commits, so the commits stay small (a
/// commit of thousands of messages held Redis, and every fire's commit behind it, for hundreds of ms).
@Suite("Ledger back-pressure against real Redis")
struct LedgerBackpressureTests {
    /// The reader, finding 24 closes waiting, reads them 4 at a time, each 4 stored before the next are read:
    /// at least 6 commits, and every close counted once.
    @Test func theReaderAppliesABacklogInBoundedCommits() async throws {
        let ledger = try await LedgerHarness.start(shards: 1, maxUncommitted: 4)
        defer { ledger.server.stop() }
        let uuid = "user_burst_01"
        _ = try await ledger.openPositions(uuid, count: 24)
        _ = try ledger.redis.command(["CONFIG", "RESETSTAT"])
        // Appended faster than the reader's 50 ms poll: it finds all 24 waiting.
        try ledger.appendCloses(uuid, profits: Array(repeating: 10, count: 24))
        try await ledger.settle(uuid)
        #expect(try ledger.calls("exec") >= 6)
        let keys = ledger.keys(uuid)
        #expect(TradeStats(hash: try ledger.hash(keys.statistics("global_trade_stats"))).total == 24)
        #expect(try await ledger.store.openPositions().isEmpty)
        await ledger.stop()
    }

    /// While this process's writer has announced a hand-over for a ledger, the reader leaves that ledger alone
    /// (it would read the entries back and decode them twice); once the writer withdraws, or after the grace
    /// when nothing comes, the reader reads it as usual. The grace is 3 s here, not the 1 s default: with 1 s, a
    /// loaded CI machine once let more than the grace pass between the announcement and the check below.
    @Test func theReaderLeavesAnAnnouncedLedgerToTheHandOver() async throws {
        let ledger = try await LedgerHarness.start(shards: 1, handOverGrace: .seconds(3))
        defer { ledger.server.stop() }
        let uuid = "user_burst_03"
        _ = try await ledger.openPositions(uuid, count: 2)
        let shard = ledger.engine.shard(of: uuid)
        let before = try #require(ledger.engine.committedCheckpoint(shard))
        ledger.engine.handOverAnnounced(shard: shard)
        try ledger.appendCloses(uuid, profits: [10])
        ledger.engine.wake()
        // The reader polls every 50 ms: left alone, the entry would be applied by now.
        try await Task.sleep(for: .milliseconds(400))
        #expect(ledger.engine.committedCheckpoint(shard) == before)
        ledger.engine.handOverWithdrawn(shard: shard)
        try await ledger.settle(uuid)
        // Announced and never handed over: the reader takes it after the grace.
        let second = try #require(ledger.engine.committedCheckpoint(shard))
        ledger.engine.handOverAnnounced(shard: shard)
        try ledger.appendCloses(uuid, profits: [20], firstTicket: 900_001)
        try await Task.sleep(for: .milliseconds(400))
        #expect(ledger.engine.committedCheckpoint(shard) == second)
        try await ledger.settle(uuid)
        let keys = ledger.keys(uuid)
        #expect(TradeStats(hash: try ledger.hash(keys.statistics("global_trade_stats"))).total == 2)
        await ledger.stop()
    }

    /// Entries the writer appended before a batch and left to the reader (not offered: the shard was not owned
    /// here yet, another writer's entry came between) are read by the engine itself when that batch is handed
    /// over (`catchUp`): in steps of at most `maxUncommitted`, each stored before the next is read; then the batch
    /// is taken, and every close is counted once. At or past the entry, or on a shard not owned here, there is
    /// nothing to read.
    @Test func theEngineCatchesUpWithEntriesLeftToTheReaderBeforeAHandOver() async throws {
        let ledger = try await LedgerHarness.start(shards: 1, handOver: true, maxUncommitted: 2)
        defer { ledger.server.stop() }
        let uuid = "user_catch_up_1"
        _ = try await ledger.openPositions(uuid, count: 5)
        let shard = ledger.engine.shard(of: uuid)
        let keys = ledger.keys(uuid)
        // Four closes; the first three were left to the reader (asleep here), the fourth is being handed over.
        let appended = try ledger.appendRaw(uuid, tickets: 900_000..<900_004)
        let (left, own) = (appended[2].id, appended[3])
        let event = LedgerEvent(entry: own.message)
        // It does not follow where the engine stands: refused, as before.
        #expect(
            !ledger.engine.appended(shard: shard, id: own.id, after: left, messages: [own.message], events: [event]))
        _ = try ledger.redis.command(["CONFIG", "RESETSTAT"])
        #expect(await ledger.engine.catchUp(shard: shard, through: left))
        #expect(ledger.engine.appliedCursor(shard) == left)
        #expect(try ledger.calls("xrange") == 2, "two steps of at most two")
        #expect(ledger.engine.appended(shard: shard, id: own.id, after: left, messages: [own.message], events: [event]))
        #expect(!(await ledger.engine.catchUp(shard: shard, through: appended[0].id)))
        #expect(!(await ledger.engine.catchUp(shard: 99, through: left)))
        #expect(ledger.engine.appliedCursor(shard) == own.id)
        try await ledger.settle(uuid)
        #expect(TradeStats(hash: try ledger.hash(keys.statistics("global_trade_stats"))).total == 4)
        #expect(try await ledger.store.openPositions().count == 1)
        await ledger.stop()
    }

    /// The writer's hand-over waits (`waitForRoom`) while its shard has applied its share and cannot store it
    /// (Redis down), and goes on once a commit has stored it: nothing piles up in memory meanwhile, nothing
    /// is lost.
    @Test func theHandOverWaitsUntilACommitHasStoredWhatWasApplied() async throws {
        let server = try RedisServerProcess(appendOnly: true)
        let ledger = try await LedgerHarness.start(shards: 1, server: server, handOver: true, maxUncommitted: 4)
        defer { ledger.server.stop() }
        let uuid = "user_burst_02"
        _ = try await ledger.openPositions(uuid, count: 4)
        let shard = ledger.engine.shard(of: uuid)
        let keys = ledger.keys(uuid)
        // Four closes appended to the ledger (as the writer does); Redis goes down before they are handed over.
        let appended = try ledger.appendRaw(uuid, tickets: 900_000..<900_004)
        server.stop()
        var previous = try #require(ledger.engine.appliedCursor(shard))
        for (id, message) in appended {
            #expect(
                ledger.engine.appended(
                    shard: shard, id: id, after: previous, messages: [message], events: [LedgerEvent(entry: message)]))
            previous = id
        }
        let engine = ledger.engine
        let waiting = Task {
            await engine.waitForRoom(shard: shard)
            return Date()
        }
        try await Task.sleep(for: .milliseconds(600))
        // Four applied, none stored: the hand-over of a fifth waits.
        #expect(engine.committedCheckpoint(shard) != previous)
        let restarted = Date()
        try server.start()
        #expect(await waiting.value >= restarted)
        // It went on because the four were stored.
        #expect(ledger.engine.committedCheckpoint(shard) == previous)
        // (The harness's own connection went with the first server.)
        let redis = try RedisConnection(url: RedisURL(parsing: server.url))
        let statistics = try redis.command(["HGETALL", keys.statistics("global_trade_stats")]).hash ?? [:]
        #expect(TradeStats(hash: statistics).total == 4)
        await ledger.stop()
    }
}

extension LedgerHarness {
    /// How many times Redis ran `command` (lower case) since its last `CONFIG RESETSTAT`.
    func calls(_ command: String) throws -> Int {
        let stats = try redis.command(["INFO", "commandstats"]).string ?? ""
        let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_\(command):") }
        return line.flatMap { Int($0.split(separator: "=")[1].split(separator: ",")[0]) } ?? 0
    }

    /// Closes appended to the user's ledger as the confirmation writer appends them (one `m` message per stream
    /// entry), neither handed over nor read (the reader is asleep while handing over): each stream entry's id and
    /// its message.
    func appendRaw(_ uuid: String, tickets: Range<Int>) throws -> [(id: String, message: StreamEntry)] {
        try tickets.map { ticket in
            let fields = try Self.closeFields(uuid, ticket: ticket)
            let id = try redis.xadd(keys(uuid).confirmations, fields: [("m", LedgerRecord.encode(fields))])
            return (id, StreamEntry(id: id + "#0", fields: fields))
        }
    }
}
