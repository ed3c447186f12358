import BittenCore
import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

@testable import BittenServices

/// The position tracker (`GET /positions`, the dashboard's snapshot) over a real trade engine and Redis.
@Suite("Position tracker against real Redis")
struct PositionTrackerTests {
    /// The snapshot of everything open reads every open set each time (what is open is never staler than Redis), but
    /// only the records of positions it has not seen: a close shows at once, a new position costs one HGETALL, and
    /// every 30 s every record is read again.
    @Test func everythingOpenReadsOnlyTheRecordsItHasNotSeen() async throws {
        let ledger = try await LedgerHarness.start(shards: 4)
        defer { ledger.server.stop() }
        let uuid = "user_track_1"
        _ = try await ledger.openPositions(uuid, count: 3)
        let clock = Mutex<Double>(1_000)
        let tracker = PositionTracker(
            store: ledger.store, quotes: PositionWatcherTests.SetQuotes(), now: { clock.withLock { $0 } })
        /// One snapshot: its tickets, and the HGETALLs and SMEMBERS it sent.
        func snapshot() async throws -> (tickets: [Int], calls: [Int]) {
            _ = try ledger.redis.command(["CONFIG", "RESETSTAT"])
            let tickets = try await tracker.snapshot().positions.map(\.ticket)
            return (tickets, [try ledger.calls("hgetall"), try ledger.calls("smembers")])
        }
        var (tickets, calls) = try await snapshot()
        #expect(tickets == [900_000, 900_001, 900_002] && calls == [3, 4])
        (tickets, calls) = try await snapshot()
        #expect(tickets == [900_000, 900_001, 900_002] && calls == [0, 4])
        // A new position: its record alone is read.
        _ = try await ledger.openPositions(uuid, count: 1, firstTicket: 900_100)
        (tickets, calls) = try await snapshot()
        #expect(tickets == [900_000, 900_001, 900_002, 900_100] && calls == [1, 4])
        // The EA answers a close of the first: gone from the next snapshot, nothing read but the open sets.
        try ledger.appendCloses(uuid, profits: [10])
        try await ledger.settle(uuid)
        (tickets, calls) = try await snapshot()
        #expect(tickets == [900_001, 900_002, 900_100] && calls == [0, 4])
        // 30 s later, every record again; and priced at the quotes all the same (from memory or not).
        clock.withLock { $0 += 31 }
        (tickets, calls) = try await snapshot()
        #expect(tickets == [900_001, 900_002, 900_100] && calls == [3, 4])
        let priced = try await tracker.snapshot()
        #expect(priced.positions.allSatisfy { $0.currentPrice == 1.10000 } && priced.exposure.first?.positions == 3)
        await ledger.stop()
    }
}
