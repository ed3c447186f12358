import BittenCore
import BittenTestSupport
import Foundation
import Redis
import Testing

@testable import BittenServices

/// A shard's confirmation ledger keeps what its commits stored for `BITTEN_LEDGER_RETENTION_DAYS` and no longer,
/// and never loses an entry its checkpoint has not passed.
@Suite("Ledger retention")
struct LedgerRetentionTests {
    /// Below which id a ledger may be trimmed: the older of the retention's start and the last stored entry.
    @Test func theTrimStopsAtTheRetentionAndAtTheCheckpoint() {
        let now = 1_800_000_000.0
        let day = 86_400.0
        // Stored up to now: what is older than 30 days goes.
        #expect(
            TradeEngine.ledgerTrimID(committed: "1800000000000-5", now: now, retention: 30 * day) == "1797408000000-0")
        // Stored up to 40 days ago only: nothing after that entry's millisecond goes, however old.
        #expect(
            TradeEngine.ledgerTrimID(committed: "1796544000000-3", now: now, retention: 30 * day) == "1796544000000-0")
        // Nothing stored yet, or a retention reaching before 1970: nothing goes.
        #expect(TradeEngine.ledgerTrimID(committed: "0", now: now, retention: 30 * day) == nil)
        #expect(TradeEngine.ledgerTrimID(committed: "1800000000000-5", now: now, retention: now + 1) == nil)
    }

    /// Against real Redis, a retention of 1 ms: 30 entries from 1970 and the opening fills, all stored, are
    /// trimmed (by whole stream nodes); two closes appended after the checkpoint and not yet applied stay, although
    /// older than the retention, and are then applied, each once.
    @Test func storedEntriesPastTheRetentionAreTrimmedAndNothingAfterTheCheckpoint() async throws {
        let ledger = try await LedgerHarness.start(shards: 1, handOver: true) { settings in
            settings.ledgerRetention = 0.001
            settings.ledgerTrimEvery = .zero
        }
        defer { ledger.server.stop() }
        let uuid = "user_retention_1"
        let keys = ledger.keys(uuid)
        // Stream nodes of 10 entries (100 by default): trimming goes by whole nodes.
        _ = try ledger.redis.command(["CONFIG", "SET", "stream-node-max-entries", "10"])
        for sequence in 1...30 {
            _ = try ledger.redis.command(["XADD", keys.confirmations, "1000-\(sequence)", "m", "x"])
        }
        func count(_ start: String, _ end: String) throws -> Int {
            try ledger.redis.command(["XRANGE", keys.confirmations, start, end]).array?.count ?? -1
        }
        // The engine trims at each lease renewal (every 2.5 s); here, when the test says.
        let shard = ledger.engine.shard(of: uuid)
        func trim() async { await ledger.engine.trimLedger(ledger.engine.lanes[shard]) }
        // Nothing stored yet: nothing trimmed.
        await trim()
        #expect(try count("-", "1000-30") == 30)
        ledger.engine.wake()
        _ = try await ledger.openPositions(uuid, count: 2)
        let checkpoint = try #require(ledger.engine.committedCheckpoint(shard))
        // The reader is asleep (handing over): these two wait after the checkpoint.
        let waiting = try ledger.appendRaw(uuid, tickets: 900_000..<900_002)
        await trim()
        #expect(try count("-", "1000-30") < 10)
        // More trims leave what follows the checkpoint alone.
        await trim()
        await trim()
        #expect(try count(checkpoint, "+") == 3)
        #expect(ledger.engine.committedCheckpoint(shard) == checkpoint)
        ledger.engine.wake()
        #expect(try await eventually(.seconds(10)) { ledger.engine.committedCheckpoint(shard) == waiting[1].id })
        #expect(TradeStats(hash: try ledger.hash(keys.statistics("global_trade_stats"))).total == 2)
        #expect(try await ledger.store.openPositions().isEmpty)
        await ledger.stop()
    }
}
