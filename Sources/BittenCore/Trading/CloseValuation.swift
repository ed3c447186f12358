import Foundation

/// What a closed position made, and how that is known. The EA v2.05 reports every close at price 0, so a
/// close is valued at the market quote that arrived with it, at the level the market crossed (an inferred
/// stop or target), or from the account's balance difference when exactly one position closed since the
/// account last reported its balance — and the balance wins over the price when both exist.
///
/// Pure Swift; `PositionBook` applies it to every close, and the trade engine stores the result.
public struct CloseValuation: Sendable, Equatable {
    /// How a close counts in the statistics.
    public enum Result: String, Sendable { case win, loss, breakeven, unvalued }

    /// The terms of the open position that the valuation needs.
    public struct Position: Sendable, Equatable {
        /// True for a BUY.
        public var isBuy: Bool
        /// The price it opened at.
        public var openPrice: Double
        /// The volume in lots.
        public var lot: Double
        /// The smallest price step.
        public var tickSize: Double
        /// The value of one tick for one lot, in the account currency.
        public var tickValue: Double

        /// What a position needs to be valued.
        public init(isBuy: Bool, openPrice: Double, lot: Double, tickSize: Double, tickValue: Double) {
            self.isBuy = isBuy
            self.openPrice = openPrice
            self.lot = lot
            self.tickSize = tickSize
            self.tickValue = tickValue
        }

        /// Account money per unit of price movement (tick value × lot ÷ tick size).
        public var perPrice: Double { tickValue * lot / tickSize }

        /// Unrealized P&L in cents were the position closed at this quote: a BUY closes at the bid, a SELL at
        /// the ask (the spread is a cost from the first moment).
        public func unrealizedCents(bid: Double, ask: Double) -> Int {
            TradeStatistics.cents(isBuy ? (bid - openPrice) * perPrice : (openPrice - ask) * perPrice)
        }
    }

    /// The price it closed at, valued (the EA v2.05 always reports 0; `closePriceSource` says where it came from).
    public var closePrice: Double
    /// `ea`, `market`, `inferred`, `balance` (the price follows from the balance) or `unvalued`.
    public var closePriceSource: String
    /// The realized profit in cents of the account currency.
    public var profitCents: Int
    /// `price`, `balance`, or `none` when nothing valued it.
    public var profitSource: String
    /// Win, loss, breakeven or unvalued.
    public var result: Result
    /// Both figures, when a price and a balance difference both valued the close.
    public var byPriceCents: Int?
    /// The profit the balance difference gives, in cents, when known.
    public var byBalanceCents: Int?

    /// Whether the close counts in the statistics (a close nothing could value does not).
    public var counted: Bool { result != .unvalued }

    /// Values a close at `price` (from `source`), or by the balance difference `byBalance` (which wins),
    /// or both; with neither, the close is `unvalued` at its open price and profit 0.
    public static func settle(_ p: Position, price: Double?, source: String?, byBalance: Double?) -> CloseValuation {
        let direction: Double = p.isBuy ? 1 : -1
        let perPrice = p.perPrice
        let byPrice = price.map { TradeStatistics.cents(($0 - p.openPrice) * direction * perPrice) }
        let byBalanceCents = byBalance.map(TradeStatistics.cents)
        var cents = byPrice
        var profitSource = "price"
        if let byBalanceCents { (cents, profitSource) = (byBalanceCents, "balance") }
        var closePrice = price
        var closeSource = source
        if closePrice == nil, let cents {
            // No quote: the close price follows from the balance.
            closePrice = p.openPrice + Double(cents) / 100 / perPrice * direction
            closeSource = "balance"
        }
        guard let cents, let closePrice else {
            return CloseValuation(
                closePrice: p.openPrice, closePriceSource: "unvalued", profitCents: 0, profitSource: "none",
                result: .unvalued, byPriceCents: nil, byBalanceCents: nil)
        }
        let both = byPrice != nil && byBalanceCents != nil
        return CloseValuation(
            closePrice: closePrice, closePriceSource: closeSource ?? "", profitCents: cents, profitSource: profitSource,
            result: cents > 0 ? .win : cents < 0 ? .loss : .breakeven,
            byPriceCents: both ? byPrice : nil, byBalanceCents: both ? byBalanceCents : nil)
    }

    /// The close price as stored: eight decimals without trailing zeros (`1.10025`, `2641`).
    public var closePriceText: String { Self.priceText(closePrice) }

    /// The profit as stored: money with two decimals.
    public var profitText: String { Self.centsText(profitCents) }

    /// Whole cents as money text: `-1234` → `-12.34` (what `%.2f` prints, without Foundation's formatter).
    public static func centsText(_ cents: Int) -> String {
        let magnitude = cents.magnitude
        let fraction = magnitude % 100
        return (cents < 0 ? "-" : "") + String(magnitude / 100) + (fraction < 10 ? ".0" : ".") + String(fraction)
    }

    /// A price as stored: eight decimals without trailing zeros.
    public static func priceText(_ price: Double) -> String {
        // Digits by hand (once per close); Foundation's formatter only for what that cannot print.
        if price != 0 || price.sign == .plus, let text = PlainDecimal.format(price, maxFractionDigits: 8) {
            return text
        }
        var text = String(format: "%.8f", price)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// The quote a ledger entry carries for `symbol` (`SYMBOL:bid:ask:source;…`): the bid closes a BUY,
    /// the ask a SELL; a quote that is not a positive number is no quote.
    public static func marketPrice(in quotes: String, symbol: String, isBuy: Bool) -> (price: Double, source: String)? {
        for entry in quotes.split(separator: ";") {
            // SYMBOL may itself hold ':' (the last three parts are bid, ask, source).
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 4, !parts.last!.isEmpty, parts.last!.allSatisfy(\.isLetter) else { continue }
            let symbolPart = parts.dropLast(3).joined(separator: ":")
            guard !symbolPart.isEmpty, symbolPart == symbol, !parts[parts.count - 3].isEmpty,
                !parts[parts.count - 2].isEmpty
            else { continue }
            if let price = Double(String(isBuy ? parts[parts.count - 3] : parts[parts.count - 2])), price > 0 {
                return (price, String(parts.last!))
            }
        }
        return nil
    }
}
