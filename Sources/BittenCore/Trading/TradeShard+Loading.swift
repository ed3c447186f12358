/// A shard's state restored from Redis on load or takeover, and the text of its records and events.
extension TradeShard {
    // MARK: loading

    /// Loads state as stored (an owner taking the shard over).
    public mutating func restore(user: ShardUser) { users[user.uuid] = user }
    /// A fire in flight, as stored (its deadline rescheduled).
    public mutating func restore(fire: FireInFlight) {
        book.restore(fire)
        if fire.state == .pending || fire.state == .sent, let deadline = fire.deadline { schedule(fire.id, deadline) }
    }
    /// A (signal, user) fire marker, as stored.
    public mutating func restoreMarker(signalID: String, user: String, fireID: String, signalExpiresAt: Double) {
        book.restoreMarker(signalID: signalID, user: user, fireID: fireID)
        markers[signalID, default: (signalExpiresAt, [])].users.append(user)
    }
    /// An open position, as stored.
    public mutating func restore(position: OpenPosition) { book.restore(position) }
    /// A close request in flight, as stored.
    public mutating func restore(close: CloseRequest) { closes[close.ticket] = close }
    /// A statistics record, as stored.
    public mutating func restore(statistics: TradeStatistics, key: String) {
        book.restorePositions { $0.restore(statistics: statistics, key: key) }
    }
    /// An account's balance after its last valued close, as stored.
    public mutating func restore(balance: Double, closes: Int, of account: Int) {
        book.restorePositions { $0.restore(balance: balance, closes: closes, of: account) }
    }

    // MARK: text

    func eventFields(_ fire: FireInFlight) -> [String: String] {
        var fields = [
            "fire_id": fire.id, "kind": "fire", "state": fire.state.rawValue, "user_uuid": fire.userUUID,
            "signal_id": fire.signalID, "symbol": fire.symbol, "direction": fire.isBuy ? "BUY" : "SELL",
            "sl": Self.number(fire.stopLoss), "tp": Self.number(fire.takeProfit), "lot": Self.number(fire.lot),
        ]
        if !fire.brokerSymbol.isEmpty { fields["broker_symbol"] = fire.brokerSymbol }
        return fields
    }

    /// A closed trade as its record and event carry it.
    public static func tradeFields(_ trade: ClosedTrade) -> [String: String] {
        let p = trade.position
        let v = trade.valuation
        return [
            "ticket": String(p.ticket), "fire_id": p.fireID, "user_uuid": p.userUUID, "account": String(p.account),
            "symbol": p.symbol, "direction": p.isBuy ? "BUY" : "SELL", "lot": number(p.lot),
            "open_price": number(p.openPrice),
            "close_price": v.closePriceText, "sl": number(p.stopLoss), "tp": number(p.takeProfit),
            "open_time": number(p.openTime),
            "close_time": number(trade.closeTime), "duration": String(Int((trade.closeTime - p.openTime).rounded())),
            "profit": v.profitText, "result": v.result.rawValue, "close_price_source": v.closePriceSource,
            "close_reason": trade.reason, "profit_source": v.profitSource,
        ]
    }

    /// Numbers as stored: plain decimal, at most 8 fraction digits.
    public static func number(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 8) ?? "0" }
}
