import BittenCore
import Foundation

/// Open positions with unrealized P&L at the latest quotes and exposure per symbol. Each snapshot
/// reads the open set from Redis (one pipelined round trip), so it is never staler than Redis.
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

    /// A tracker over the store, pricing at `quotes`.
    public init(
        store: TradeStore, quotes: (any QuoteSource)?,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.store = store
        self.quotes = quotes
        self.now = now
    }

    /// Open positions (all, or one user's) priced at the latest quotes.
    public func snapshot(user: String? = nil) async throws -> Snapshot {
        let at = now()
        var open = try await store.openPositions(user: user)
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
}
