/// What the risk limits need at a reservation or a sweep that the shard does not hold itself: the tiers'
/// default limits, the account's balance and the market.
public struct RiskContext: Sendable {
    /// The default limits of each tier (a user's own values replace them one by one).
    public var defaults: [Tier: RiskLimits]
    /// The account's balance now.
    public var balance: Double
    /// What a trade without a stop counts as, in % of the balance.
    public var noStopRiskPercent: Double
    /// The latest bid and ask of a symbol for this user (the user's own EA's first), nil when none is fresh.
    public var quote: @Sendable (String) -> (bid: Double, ask: Double)?

    /// The context.
    public init(
        defaults: [Tier: RiskLimits], balance: Double, noStopRiskPercent: Double = 10,
        quote: @escaping @Sendable (String) -> (bid: Double, ask: Double)?
    ) {
        self.defaults = defaults
        self.balance = balance
        self.noStopRiskPercent = noStopRiskPercent
        self.quote = quote
    }
}

/// The risk limits in the shard: checked at every reservation (atomically with the slots: the shard is the user's
/// only writer), the losing streak counted at every close, and the market swept for users whose loss crossed a limit.
extension TradeShard {
    /// The limits in force for a user.
    public func limits(of user: ShardUser, defaults: [Tier: RiskLimits]) -> RiskLimits {
        user.limits.over(defaults[user.tier] ?? .none)
    }

    /// The user's open positions and fires in flight as the limits see them, and the positions' P&L at current
    /// quotes (a position without a quote counts 0).
    public func exposures(of uuid: String, quote: (String) -> (bid: Double, ask: Double)?) -> (
        open: [RiskExposure], unrealized: Double
    ) {
        var open: [RiskExposure] = []
        var unrealized = 0.0
        for position in book.positions.open(of: uuid) {
            open.append(
                RiskExposure(
                    symbol: position.symbol, isBuy: position.isBuy, lot: position.lot,
                    riskAtStop: RiskExposure.risk(
                        entry: position.openPrice, stopLoss: position.stopLoss, lot: position.lot,
                        tickSize: position.tickSize, tickValue: position.tickValue)))
            if let q = quote(position.symbol) {
                let terms = CloseValuation.Position(
                    isBuy: position.isBuy, openPrice: position.openPrice, lot: position.lot,
                    tickSize: position.tickSize, tickValue: position.tickValue)
                unrealized += Double(terms.unrealizedCents(bid: q.bid, ask: q.ask)) / 100
            }
        }
        for id in book.slots[uuid] ?? [] {
            guard let fire = book.fires[id], fire.state == .pending || fire.state == .sent else { continue }
            open.append(
                RiskExposure(
                    symbol: fire.symbol, isBuy: fire.isBuy, lot: fire.lot,
                    riskAtStop: RiskExposure.risk(
                        entry: fire.entry, stopLoss: fire.stopLoss, lot: fire.lot, tickSize: fire.tickSize,
                        tickValue: fire.tickValue)))
        }
        return (open, unrealized)
    }

    /// The limits' verdict on a sized fire, with the user's figures rolled to `at` (nil figures: no limit set).
    func check(_ user: ShardUser, _ fire: FireInFlight, _ context: RiskContext, at: Double) -> (
        refusal: FireRefusal?, figures: RiskDay?
    ) {
        let limits = limits(of: user, defaults: context.defaults)
        guard !limits.isEmpty else { return (nil, nil) }
        let (open, unrealized) = exposures(of: user.uuid, quote: context.quote)
        let figures = user.risk.rolled(at: at, balance: context.balance, equity: context.balance + unrealized)
        let new = RiskExposure(
            symbol: fire.symbol, isBuy: fire.isBuy, lot: fire.lot,
            riskAtStop: RiskExposure.risk(
                entry: fire.entry, stopLoss: fire.stopLoss, lot: fire.lot, tickSize: fire.tickSize,
                tickValue: fire.tickValue))
        let inputs = RiskCheck.Inputs(
            balance: context.balance, unrealized: unrealized, open: open, new: new,
            noStopRiskPercent: context.noStopRiskPercent)
        return (RiskCheck.refusal(limits, day: figures, at: at, inputs), figures)
    }

    /// A closed trade counts in its user's losing streak (a close that could not be valued does not).
    mutating func countInStreak(_ trade: ClosedTrade, at: Double) {
        guard trade.valuation.counted, var user = users[trade.position.userUUID] else { return }
        user.risk.closed(profit: Double(trade.valuation.profitCents) / 100, at: at)
        users[user.uuid] = user
        changes.append(.userRisk(uuid: user.uuid, user.risk))
    }

    /// The market against the daily-loss and drawdown limits of every user with open positions: a user whose loss
    /// has crossed one goes close-only until the next trading day (00:00 server time) or an operator's resume, with
    /// an event. `context` gives each user's balance and quotes (nil: unknown now, skipped). Returns the users
    /// flipped, with why.
    public mutating func sweepLimits(
        at: Double, defaults: [Tier: RiskLimits], context: (String) -> RiskContext?
    ) -> [(user: String, refusal: FireRefusal)] {
        var flipped: [(user: String, refusal: FireRefusal)] = []
        for uuid in book.positions.holders.sorted() {
            guard var user = users[uuid], user.trading.effective(at: at) == .active else { continue }
            let all = limits(of: user, defaults: defaults)
            let market = RiskLimits(dailyLossPercent: all.dailyLossPercent, drawdownPercent: all.drawdownPercent)
            guard !market.isEmpty, let context = context(uuid) else { continue }
            let (open, unrealized) = exposures(of: uuid, quote: context.quote)
            let rolled = user.risk.rolled(at: at, balance: context.balance, equity: context.balance + unrealized)
            let newDay = rolled.day != user.risk.day
            if rolled != user.risk {
                user.risk = rolled
                users[uuid] = user
            }
            if newDay { changes.append(.userRisk(uuid: uuid, rolled)) }
            let nothing = RiskExposure(symbol: "", isBuy: true, lot: 0, riskAtStop: 0)
            let inputs = RiskCheck.Inputs(balance: context.balance, unrealized: unrealized, open: open, new: nothing)
            guard let refusal = RiskCheck.refusal(market, day: rolled, at: at, inputs) else { continue }
            setTrading(
                uuid,
                TradingControl(
                    state: .closeOnly, reason: refusal.message, by: "risk:" + refusal.code.rawValue, at: at,
                    until: RiskDay.nextDay(after: at)))
            changes.append(
                .event(
                    "risk.limit_crossed",
                    [
                        "user_uuid": uuid, "code": refusal.code.rawValue, "message": refusal.message,
                        "at": Self.number(at),
                    ]
                ))
            flipped.append((uuid, refusal))
        }
        return flipped
    }
}
