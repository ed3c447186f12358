import Foundation

/// A recorded fire as the replay needs it: what the flight recorder kept of its checks, its outcome and its close.
public struct ReplayFire: Sendable, Equatable {
    /// The fire's id.
    public var fireID: String
    /// The signal it was made of.
    public var signalID: String
    /// The user.
    public var userUUID: String
    /// The canonical symbol.
    public var symbol: String
    /// True for a BUY.
    public var isBuy: Bool
    /// When it was checked (epoch seconds).
    public var at: Double
    /// The balance it was sized from.
    public var balance: Double
    /// The signal's entry and stop loss.
    public var entry: Double, stopLoss: Double
    /// The instrument's tick value (in the account currency, as converted then).
    public var tickValue: Double
    /// The user's tier.
    public var tier: Tier
    /// The user's risk override, if any.
    public var riskOverride: Double?
    /// CITADEL's multiplier of the signal.
    public var citadelMultiplier: Double
    /// The lot it was sent with.
    public var lot: Double
    /// Whether the EA filled it (a rejection or a timeout never opened a position).
    public var filled: Bool
    /// When its position closed, and its profit (nil: still open, or never opened).
    public var closedAt: Double?, profit: Double?

    /// A recorded fire.
    public init(
        fireID: String, signalID: String, userUUID: String, symbol: String, isBuy: Bool, at: Double, balance: Double,
        entry: Double, stopLoss: Double, tickValue: Double, tier: Tier, riskOverride: Double?,
        citadelMultiplier: Double, lot: Double, filled: Bool, closedAt: Double?, profit: Double?
    ) {
        self.fireID = fireID
        self.signalID = signalID
        self.userUUID = userUUID
        self.symbol = symbol
        self.isBuy = isBuy
        self.at = at
        self.balance = balance
        self.entry = entry
        self.stopLoss = stopLoss
        self.tickValue = tickValue
        self.tier = tier
        self.riskOverride = riskOverride
        self.citadelMultiplier = citadelMultiplier
        self.lot = lot
        self.filled = filled
        self.closedAt = closedAt
        self.profit = profit
    }
}

/// What another configuration would have made of one recorded fire.
public struct ReplayOutcome: Sendable, Equatable {
    /// The recorded fire.
    public var fire: ReplayFire
    /// The lot it would have had (nil: refused).
    public var lot: Double?
    /// Why it would have been refused.
    public var refusal: FireRefusal?
    /// Its profit at that lot (the recorded profit scaled by the lots; 0 when refused or never closed).
    public var profit: Double

    /// Refused, resized or unchanged.
    public var change: String {
        guard let lot else { return "refused" }
        return abs(lot - fire.lot) < 1e-9 ? "unchanged" : "resized"
    }
}

/// Replays recorded fires under another configuration (tiers, base risk, risk limits), user by user in time order:
/// each is sized again from its recorded inputs and checked against the limits with the figures the replay itself
/// builds (the day's trades and losses, the losing streak, the trades it keeps open); a trade it keeps closes when
/// the recorded one did, with the recorded profit scaled by the lots. Unrealized P&L between closes is not
/// recorded, so the daily-loss and drawdown checks see realized P&L only.
public enum Replay {
    /// The configuration to replay with.
    public struct Configuration: Sendable {
        /// Sizing.
        public var sizer: PositionSizer
        /// The tiers' slots and risk.
        public var tiers: TierTable
        /// The instruments.
        public var instruments: InstrumentTable
        /// The tiers' risk limits.
        public var limits: [Tier: RiskLimits]
        /// What a trade without a stop counts as in the open-risk limit, in % of the balance.
        public var noStopRiskPercent: Double

        /// A configuration.
        public init(
            sizer: PositionSizer, tiers: TierTable, instruments: InstrumentTable, limits: [Tier: RiskLimits],
            noStopRiskPercent: Double = 10
        ) {
            self.sizer = sizer
            self.tiers = tiers
            self.instruments = instruments
            self.limits = limits
            self.noStopRiskPercent = noStopRiskPercent
        }
    }

    struct Kept {
        var fire: ReplayFire
        var lot: Double
        var exposure: RiskExposure
    }

    /// The outcome of every fire, in the order given.
    public static func run(_ fires: [ReplayFire], with configuration: Configuration) -> [ReplayOutcome] {
        var outcomes: [String: ReplayOutcome] = [:]
        for (_, userFires) in Dictionary(grouping: fires, by: \.userUUID) {
            var day = RiskDay()
            var kept: [Kept] = []
            var difference = 0.0  // replayed minus recorded realized profit so far
            for fire in userFires.sorted(by: { ($0.at, $0.fireID) < ($1.at, $1.fireID) }) {
                // Closes before this fire: the streak and the balance as the replay has them.
                let closed = kept.filter { ($0.fire.closedAt ?? .infinity) <= fire.at }
                for trade in closed.sorted(by: { ($0.fire.closedAt ?? 0) < ($1.fire.closedAt ?? 0) }) {
                    let scaled = scale(trade.fire, to: trade.lot)
                    day.closed(profit: scaled, at: trade.fire.closedAt ?? fire.at)
                    difference += scaled - (trade.fire.profit ?? 0)
                }
                kept.removeAll { ($0.fire.closedAt ?? .infinity) <= fire.at }
                let balance = fire.balance + difference
                day = day.rolled(at: fire.at, balance: balance, equity: balance)
                let outcome = decide(fire, balance: balance, day: day, open: kept, configuration)
                if let lot = outcome.lot {
                    day.trades += 1
                    if fire.filled {
                        let risk = RiskExposure.risk(
                            entry: fire.entry, stopLoss: fire.stopLoss, lot: lot,
                            tickSize: configuration.instruments[fire.symbol]?.tickSize ?? 0, tickValue: fire.tickValue)
                        kept.append(
                            Kept(
                                fire: fire, lot: lot,
                                exposure: RiskExposure(
                                    symbol: fire.symbol, isBuy: fire.isBuy, lot: lot, riskAtStop: risk)))
                    }
                }
                outcomes[fire.fireID] = outcome
            }
        }
        return fires.compactMap { outcomes[$0.fireID] }
    }

    static func decide(
        _ fire: ReplayFire, balance: Double, day: RiskDay, open: [Kept], _ configuration: Configuration
    ) -> ReplayOutcome {
        func refused(_ refusal: FireRefusal) -> ReplayOutcome {
            ReplayOutcome(fire: fire, lot: nil, refusal: refusal, profit: 0)
        }
        guard let instrument = configuration.instruments[fire.symbol] else {
            return refused(FireRefusal(.unknownInstrument, "no instrument definition for \(fire.symbol)"))
        }
        let rule = configuration.tiers.rule(fire.tier)
        if open.count >= rule.slots {
            return refused(
                FireRefusal(.noFreeSlot, "\(fire.tier.rawValue) has \(rule.slots) slot(s) and \(open.count) in use"))
        }
        let lot: Double
        do {
            lot = try configuration.sizer.size(
                balance: balance, entry: fire.entry, stopLoss: fire.stopLoss, instrument: instrument,
                tickValue: fire.tickValue, rule: rule, userOverride: fire.riskOverride,
                citadelMultiplier: fire.citadelMultiplier
            ).lot
        } catch {
            return refused(FireRefusal(.sizing, error.message))
        }
        let limits = configuration.limits[fire.tier] ?? .none
        if !limits.isEmpty {
            let new = RiskExposure(
                symbol: fire.symbol, isBuy: fire.isBuy, lot: lot,
                riskAtStop: RiskExposure.risk(
                    entry: fire.entry, stopLoss: fire.stopLoss, lot: lot, tickSize: instrument.tickSize,
                    tickValue: fire.tickValue))
            let inputs = RiskCheck.Inputs(
                balance: balance, unrealized: 0, open: open.map(\.exposure), new: new,
                noStopRiskPercent: configuration.noStopRiskPercent)
            if let refusal = RiskCheck.refusal(limits, day: day, at: fire.at, inputs) { return refused(refusal) }
        }
        return ReplayOutcome(fire: fire, lot: lot, refusal: nil, profit: scale(fire, to: lot))
    }

    /// The recorded profit at another lot.
    static func scale(_ fire: ReplayFire, to lot: Double) -> Double {
        guard let profit = fire.profit, fire.lot > 0 else { return 0 }
        return (profit * lot / fire.lot * 100).rounded() / 100
    }
}
