import BittenCore
import Foundation
import Synchronization

/// Open positions with unrealized P&L at the latest quotes and exposure per symbol. Each snapshot
/// reads the open sets from Redis (one pipelined round trip), so what is open is never staler than Redis. The
/// snapshot of everything open (the dashboard's, once a second while one is open) reads only the records of positions
/// it has not seen yet: a record is written once when its position opens and changes only when it closes, which
/// takes it out of the open set. Every `fullRefreshEvery` seconds it reads every record again all the same.
public final class PositionTracker: Sendable {
    /// Net lots and P&L of one symbol.
    public struct Exposure: Sendable, Codable, Equatable {
        /// The canonical symbol (`EURUSD`), or as the message named it.
        public var symbol: String
        /// Open positions in the symbol.
        public var positions: Int
        /// Long lots minus short lots.
        public var netLots: Double
        /// The profit if closed at the latest quote, in the account currency.
        public var unrealizedProfit: Double
    }

    /// Everything open, priced now.
    public struct Snapshot: Sendable, Encodable {
        /// The open positions.
        public var positions: [PositionRecord]
        /// Net lots and P&L per symbol.
        public var exposure: [Exposure]
        /// The profit if closed at the latest quote, in the account currency.
        public var unrealizedProfit: Double
        /// When it was priced (epoch seconds).
        public var asOf: Double
    }

    private let store: TradeStore
    private let quotes: (any QuoteSource)?
    private let now: @Sendable () -> Double
    private let fullRefreshEvery: Double
    /// The records of the positions open at the last snapshot of everything, and when every record was last read.
    private let cache = Mutex<(records: [Int: PositionRecord], fullyReadAt: Double)>(([:], -.infinity))

    /// A tracker over the store, pricing at `quotes`.
    public init(
        store: TradeStore, quotes: (any QuoteSource)?, fullRefreshEvery: Double = 30,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.store = store
        self.quotes = quotes
        self.fullRefreshEvery = fullRefreshEvery
        self.now = now
    }

    /// Open positions (all, or one user's) priced at the latest quotes.
    public func snapshot(user: String? = nil) async throws -> Snapshot {
        let at = now()
        var open: [PositionRecord]
        if let user {
            open = try await store.openPositions(user: user)
        } else {
            open = try await everythingOpen(at: at)
        }
        var exposure: [String: Exposure] = [:]
        var total = 0.0
        for index in open.indices {
            let position = open[index]
            var entry =
                exposure[position.symbol]
                ?? Exposure(symbol: position.symbol, positions: 0, netLots: 0, unrealizedProfit: 0)
            entry.positions += 1
            entry.netLots += position.direction == "BUY" ? position.lot : -position.lot
            // The user's own broker's quote first (that is where the position is), else any EA's.
            if let quote = quotes?.quote(position.symbol, of: position.userUUID) ?? quotes?.quote(position.symbol) {
                let pnl = position.profit(bid: quote.bid, ask: quote.ask)
                open[index].unrealizedProfit = pnl
                open[index].currentPrice = position.direction == "BUY" ? quote.bid : quote.ask
                entry.unrealizedProfit += pnl
                total += pnl
            }
            exposure[position.symbol] = entry
        }
        return Snapshot(
            positions: open, exposure: exposure.values.sorted { $0.symbol < $1.symbol },
            unrealizedProfit: (total * 100).rounded() / 100, asOf: at)
    }

    /// Every open position: the open sets, and the records of the tickets not seen at the last call (all of them
    /// every `fullRefreshEvery` seconds).
    private func everythingOpen(at: Double) async throws -> [PositionRecord] {
        let (known, full) = cache.withLock { c in
            at - c.fullyReadAt >= fullRefreshEvery ? ([:], true) : (c.records, false)
        }
        let (tickets, read) = try await store.openPositions(shards: nil, skipping: Set(known.keys))
        var records = known.filter { tickets.contains($0.key) }
        for record in read { records[record.ticket] = record }
        cache.withLock { c in
            c.records = records
            if full { c.fullyReadAt = at }
        }
        return records.values.sorted { $0.ticket < $1.ticket }
    }
}
