import BittenCore
import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

@testable import BittenServices

/// The position watcher over a real trade engine and Redis, with quotes the test sets.
@Suite("Position watcher against real Redis")
struct PositionWatcherTests {
    /// Every symbol at the price the test sets, received just now.
    final class SetQuotes: QuoteSource {
        let price = Mutex<(bid: Double, ask: Double)>((1.10000, 1.10002))

        func quote(_ symbol: String) -> Quote? {
            let (bid, ask) = price.withLock { $0 }
            return Quote(symbol: symbol, bid: bid, ask: ask, spread: 2, receivedAt: Date().timeIntervalSince1970)
        }
        var latestQuotes: [String: Quote] { ["EURUSD": quote("EURUSD")!] }
        func quote(_ symbol: String, of uuid: String) -> Quote? { quote(symbol) }
    }

    /// A shard's open positions are read again only when its checkpoint moved (they change only with the ledger
    /// entries it applies): with nothing happening, a refresh costs one HGET per shard, not one HGETALL per open
    /// position. A position opened meanwhile is watched all the same: the market crossing the stops closes it with
    /// the others.
    @Test func onlyShardsWhoseCheckpointMovedAreReadAgain() async throws {
        let ledger = try await LedgerHarness.start(shards: 4)
        defer { ledger.server.stop() }
        let uuid = "user_watch_1"
        _ = try await ledger.openPositions(uuid, count: 2)
        let quotes = SetQuotes()
        let watcher = PositionWatcher(
            store: ledger.store, redis: ledger.client, quotes: quotes, registry: nil, board: ServiceBoard(),
            logger: Logger(label: "bitten.test"), refreshEvery: 0)
        /// One pass of the watcher: the HGETALLs and SMEMBERS it sent.
        func pass() async throws -> [Int] {
            _ = try ledger.redis.command(["CONFIG", "RESETSTAT"])
            await watcher.check()
            return [try ledger.calls("hgetall"), try ledger.calls("smembers")]
        }
        // The first pass reads every shard (4 SMEMBERS) and both positions.
        #expect(try await pass() == [2, 4])
        // Nothing moved: nothing read again.
        #expect(try await pass() == [0, 0])
        // A third fill moves the user's shard's checkpoint: that shard alone is looked at again (its open set), and
        // only the new position's record is read (the two watched ones have not changed: a record changes only when
        // its position closes, which takes it out of the set).
        _ = try await ledger.openPositions(uuid, count: 1, firstTicket: 900_100)
        #expect(try await pass() == [1, 1])
        // The market crosses the stops (1.099): an inferred close for each of the three.
        quotes.price.withLock { $0 = (1.09850, 1.09852) }
        await watcher.check()
        let keys = ledger.keys(uuid)
        let inferred = StreamEntry.list(try ledger.redis.command(["XRANGE", keys.confirmations, "-", "+"]))
            .filter { $0["type"] == InferredClose.type }
        #expect(Set(inferred.compactMap { $0["ticket"] }) == ["900000", "900001", "900100"])
        #expect(try await eventually { try await ledger.store.openPositions().isEmpty })
        // The closes moved the checkpoint: the shard is read again, and holds nothing to watch.
        #expect(try await pass() == [0, 1])
        await ledger.stop()
    }
    /// A position that closed leaves the watch without its record being read (its ticket left its shard's open set),
    /// and every `fullRefreshEvery` seconds every record is read again, moved shard or not.
    @Test func aClosedPositionLeavesTheWatchAndEveryRecordIsReadAgainNowAndThen() async throws {
        let ledger = try await LedgerHarness.start(shards: 4)
        defer { ledger.server.stop() }
        let uuid = "user_watch_2"
        _ = try await ledger.openPositions(uuid, count: 3)
        let clock = Mutex<Double>(Date().timeIntervalSince1970)
        let watcher = PositionWatcher(
            store: ledger.store, redis: ledger.client, quotes: SetQuotes(), registry: nil, board: ServiceBoard(),
            logger: Logger(label: "bitten.test"), refreshEvery: 0, fullRefreshEvery: 30, maxQuoteAge: 3600,
            now: { clock.withLock { $0 } })
        func pass() async throws -> [Int] {
            _ = try ledger.redis.command(["CONFIG", "RESETSTAT"])
            await watcher.check()
            return [try ledger.calls("hgetall"), try ledger.calls("smembers")]
        }
        #expect(try await pass() == [3, 4])
        #expect(watcher.watchedTickets == [900_000, 900_001, 900_002])
        // The EA answers a close of the first: its shard moved, its open set is read, no record.
        try ledger.appendCloses(uuid, profits: [10])
        try await ledger.settle(uuid)
        #expect(try await pass() == [0, 1])
        #expect(watcher.watchedTickets == [900_001, 900_002])
        // Nothing moved, but 30 s went by: every shard's open set and every record, read again.
        clock.withLock { $0 += 31 }
        #expect(try await pass() == [2, 4])
        #expect(watcher.watchedTickets == [900_001, 900_002])
        #expect(try await pass() == [0, 0])
        await ledger.stop()
    }
}
