import Foundation

/// An open position as the trade path keeps it.
public struct OpenPosition: Sendable, Equatable {
    /// The broker's ticket of the position.
    public var ticket: Int
    /// The fire's id (`F-YYYYMMDD-SS-NNNNNN`).
    public var fireID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The MetaTrader account number.
    public var account: Int
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// True for a BUY.
    public var isBuy: Bool
    /// The volume in lots.
    public var lot: Double
    /// The price it opened at.
    public var openPrice: Double
    /// The stop loss price (0: none).
    public var stopLoss: Double
    /// The take profit price (0: none).
    public var takeProfit: Double
    /// When it opened (epoch seconds).
    public var openTime: Double
    /// The smallest price step.
    public var tickSize: Double
    /// The value of one tick for one lot, in the account currency.
    public var tickValue: Double

    /// An open position.
    public init(
        ticket: Int, fireID: String, userUUID: String, account: Int, symbol: String, isBuy: Bool, lot: Double,
        openPrice: Double, stopLoss: Double, takeProfit: Double, openTime: Double, tickSize: Double, tickValue: Double
    ) {
        self.ticket = ticket
        self.fireID = fireID
        self.userUUID = userUUID
        self.account = account
        self.symbol = symbol
        self.isBuy = isBuy
        self.lot = lot
        self.openPrice = openPrice
        self.stopLoss = stopLoss
        self.takeProfit = takeProfit
        self.openTime = openTime
        self.tickSize = tickSize
        self.tickValue = tickValue
    }

    /// Unrealized P&L in cents at this quote (`CloseValuation.Position.unrealizedCents`).
    public func unrealizedCents(bid: Double, ask: Double) -> Int { terms.unrealizedCents(bid: bid, ask: ask) }

    var terms: CloseValuation.Position {
        CloseValuation.Position(isBuy: isBuy, openPrice: openPrice, lot: lot, tickSize: tickSize, tickValue: tickValue)
    }
}

/// A position closed: how, when, for what.
public struct ClosedTrade: Sendable, Equatable {
    /// The position as it was open.
    public var position: OpenPosition
    /// Its close price and profit, and where they came from.
    public var valuation: CloseValuation
    /// When it closed (epoch seconds).
    public var closeTime: Double
    /// `requested`, `close_all`, `stop_loss`, `take_profit`, `closed_at_broker`.
    public var reason: String
}

/// What applying an event asks the store to do.
public enum PositionAction: Sendable, Equatable {
    case closed(ClosedTrade)
    /// A statistics record (`global_trade_stats`, `symbol_stats:S`, `account_stats_trades:A`, `user_stats:U`) as it now is.
    case statistics(key: String, TradeStatistics)
    /// The balance an account last reported, and how many positions closed unseen since.
    case balance(account: Int, balance: Double, closesSince: Int)
}

/// The open positions and statistics of a set of users, and the rules that close positions — pure: each
/// event returns the actions to store. The EA v2.05's ways are the rules' reason: every close comes at
/// price 0 (valued at the market quote that came with the answer), `close_all` is answered once with
/// ticket 0 (every open position of that account closes), stops and targets are never reported (the
/// market crossing one closes it at that level), and the balance after a close is the profit when exactly
/// one position closed since the account last reported it (`CloseValuation`).
///
/// A `TradeShard` holds one (through its `TradeBook`); the trade engine stores what it returns.
public struct PositionBook: Sendable {
    /// The open positions.
    public private(set) var positions: [Int: OpenPosition] = [:]
    /// The tickets of each user's open positions (so that a user's positions are found without looking at all).
    private var tickets: [String: Set<Int>] = [:]
    /// Statistics per key (`global_trade_stats`, `symbol_stats:EURUSD`…).
    public private(set) var statistics: [String: TradeStatistics] = [:]
    /// Per account: the balance last reported and the closes since that it did not see.
    public private(set) var balances: [Int: (balance: Double, closes: Int)] = [:]

    /// An empty book.
    public init() {}

    /// Puts back an open position as stored (loading a shard).
    public mutating func restore(_ position: OpenPosition) { put(position) }

    /// Puts back a statistics record as stored.
    public mutating func restore(statistics: TradeStatistics, key: String) { self.statistics[key] = statistics }

    /// Puts back an account's last balance and the closes it has not seen since.
    public mutating func restore(balance: Double, closes: Int, of account: Int) {
        balances[account] = (balance, closes)
    }

    /// The open positions of one user, by ticket.
    public func open(of userUUID: String) -> [OpenPosition] {
        (tickets[userUUID] ?? []).sorted().compactMap { positions[$0] }
    }

    /// The users with open positions.
    public var holders: Dictionary<String, Set<Int>>.Keys { tickets.keys }

    /// Adds (or replaces) an open position, and indexes it under its user.
    private mutating func put(_ position: OpenPosition) {
        if let earlier = positions[position.ticket] { take(earlier.ticket) }
        positions[position.ticket] = position
        tickets[position.userUUID, default: []].insert(position.ticket)
    }

    /// Removes an open position and its index entry.
    private mutating func take(_ ticket: Int) {
        guard let position = positions.removeValue(forKey: ticket) else { return }
        tickets[position.userUUID]?.remove(ticket)
        if tickets[position.userUUID]?.isEmpty == true { tickets[position.userUUID] = nil }
    }

    /// A fill opened a position; its answer carried the account's balance.
    public mutating func opened(_ position: OpenPosition, balance: Double?) -> [PositionAction] {
        put(position)
        return reported(balance, of: position.account)
    }

    /// The EA's answer to `close_ticket` (its price is 0 from the EA v2.05; a price > 0 is used as the EA's).
    public mutating func closeAnswered(
        ticket: Int, userUUID: String, closePrice: Double, balance: Double?, quotes: String,
        at: Double
    ) -> [PositionAction] {
        guard let position = positions[ticket], position.userUUID == userUUID else { return [] }
        var price: (Double, String)?
        if closePrice > 0 {
            price = (closePrice, "ea")
        } else if let quoted = CloseValuation.marketPrice(in: quotes, symbol: position.symbol, isBuy: position.isBuy) {
            price = (quoted.price, "market")
        }
        let byBalance = balanceDifference(position.account, balance)
        var actions = settle(position, price: price, byBalance: byBalance, reason: "requested", at: at)
        actions += reported(balance, of: position.account)
        return actions
    }

    /// `close_all` answered once, with ticket 0: every open position of that user on that account closes,
    /// each at its market quote; the balance difference values it only when exactly one was open.
    public mutating func closeAllAnswered(userUUID: String, account: Int, balance: Double?, quotes: String, at: Double)
        -> [PositionAction]
    {
        let open = self.open(of: userUUID).filter { $0.account == account }
        guard !open.isEmpty else { return reported(balance, of: account) }
        let byBalance = open.count == 1 ? balanceDifference(account, balance) : nil
        var actions: [PositionAction] = []
        for position in open {
            let quoted = CloseValuation.marketPrice(in: quotes, symbol: position.symbol, isBuy: position.isBuy)
            actions += settle(
                position, price: quoted.map { ($0.price, "market") }, byBalance: byBalance, reason: "close_all", at: at)
        }
        actions += reported(balance, of: account)
        return actions
    }

    /// The market crossed a position's stop or target: the broker closed it there, unseen by the account's
    /// balance figures.
    public mutating func crossed(ticket: Int, level: Double, reason: String, at: Double) -> [PositionAction] {
        guard let position = positions[ticket] else { return [] }
        var actions = settle(position, price: (level, "inferred"), byBalance: nil, reason: reason, at: at)
        actions += unseenClose(position.account)
        return actions
    }

    /// `Position not found`: the broker closed it already; valued at the market if a quote came.
    public mutating func notFoundAtBroker(ticket: Int, userUUID: String, quotes: String, at: Double) -> [PositionAction]
    {
        guard let position = positions[ticket], position.userUUID == userUUID else { return [] }
        let quoted = CloseValuation.marketPrice(in: quotes, symbol: position.symbol, isBuy: position.isBuy)
        var actions = settle(
            position, price: quoted.map { ($0.price, "market") }, byBalance: nil, reason: "closed_at_broker", at: at)
        actions += unseenClose(position.account)
        return actions
    }

    /// The profit the balance shows, when exactly this one close happened since the last report.
    private func balanceDifference(_ account: Int, _ balance: Double?) -> Double? {
        guard let balance, let known = balances[account], known.closes == 0 else { return nil }
        return balance - known.balance
    }

    /// The account reported its balance (with any answer): the next close is valued by it if it is alone.
    public mutating func reported(_ balance: Double?, of account: Int) -> [PositionAction] {
        guard let balance else { return [] }
        balances[account] = (balance, 0)
        return [.balance(account: account, balance: balance, closesSince: 0)]
    }

    private mutating func unseenClose(_ account: Int) -> [PositionAction] {
        guard var known = balances[account] else { return [] }
        known.closes += 1
        balances[account] = known
        return [.balance(account: account, balance: known.balance, closesSince: known.closes)]
    }

    private mutating func settle(
        _ position: OpenPosition, price: (Double, String)?, byBalance: Double?, reason: String,
        at: Double
    ) -> [PositionAction] {
        take(position.ticket)
        let valuation = CloseValuation.settle(position.terms, price: price?.0, source: price?.1, byBalance: byBalance)
        var actions: [PositionAction] = [
            .closed(ClosedTrade(position: position, valuation: valuation, closeTime: at, reason: reason))
        ]
        guard valuation.counted else { return actions }
        for key in [
            "global_trade_stats", "symbol_stats:\(position.symbol)", "account_stats_trades:\(position.account)",
            "user_stats:\(position.userUUID)",
        ] {
            statistics[key, default: TradeStatistics()].record(
                profitCents: valuation.profitCents, at: PlainDecimal.format(at, maxFractionDigits: 6))
            actions.append(.statistics(key: key, statistics[key]!))
        }
        return actions
    }
}
