import Foundation

/// A user's risk limits (nil: no limit). Defaults come per tier from the configuration; a user's own values
/// replace them one by one (`bitten user set --daily-loss 3`).
public struct RiskLimits: Sendable, Equatable, Codable {
    /// The most the user may lose in a trading day, in % of the balance at its start (realized + unrealized at
    /// current quotes, plus what the new trade risks at its stop).
    public var dailyLossPercent: Double?
    /// The most equity may fall from its peak, in % of the peak (the new trade's risk at its stop included).
    public var drawdownPercent: Double?
    /// The most all open trades may lose at their stops together, in % of the balance.
    public var openRiskPercent: Double?
    /// The most net lots in any one currency across open trades (EURUSD BUY 1 lot: +1 EUR, −1 USD).
    public var exposureLots: Double?
    /// The most trades (fires sent) in a trading day.
    public var tradesPerDay: Int?
    /// After this many losing trades in a row, no new trade for `cooldownMinutes`.
    public var lossStreak: Int?
    /// How long the cooldown after a losing streak lasts.
    public var cooldownMinutes: Double?

    /// Limits (each nil when not given).
    public init(
        dailyLossPercent: Double? = nil, drawdownPercent: Double? = nil, openRiskPercent: Double? = nil,
        exposureLots: Double? = nil, tradesPerDay: Int? = nil, lossStreak: Int? = nil, cooldownMinutes: Double? = nil
    ) {
        self.dailyLossPercent = dailyLossPercent
        self.drawdownPercent = drawdownPercent
        self.openRiskPercent = openRiskPercent
        self.exposureLots = exposureLots
        self.tradesPerDay = tradesPerDay
        self.lossStreak = lossStreak
        self.cooldownMinutes = cooldownMinutes
    }

    /// No limit at all.
    public static let none = RiskLimits()

    /// These values where set, `defaults` elsewhere.
    public func over(_ defaults: RiskLimits) -> RiskLimits {
        RiskLimits(
            dailyLossPercent: dailyLossPercent ?? defaults.dailyLossPercent,
            drawdownPercent: drawdownPercent ?? defaults.drawdownPercent,
            openRiskPercent: openRiskPercent ?? defaults.openRiskPercent,
            exposureLots: exposureLots ?? defaults.exposureLots,
            tradesPerDay: tradesPerDay ?? defaults.tradesPerDay, lossStreak: lossStreak ?? defaults.lossStreak,
            cooldownMinutes: cooldownMinutes ?? defaults.cooldownMinutes)
    }

    /// Whether no limit is set.
    public var isEmpty: Bool { self == .none }

    // MARK: stored form (a user's own values, in the user's hash)

    static let keys = [
        "limit_daily_loss", "limit_drawdown", "limit_open_risk", "limit_exposure_lots", "limit_trades_per_day",
        "limit_loss_streak", "limit_cooldown_minutes",
    ]

    /// The fields of a user's hash that hold them ("" for a limit not set).
    public var userFields: [String] {
        let values: [String?] = [
            dailyLossPercent.map(Self.text), drawdownPercent.map(Self.text), openRiskPercent.map(Self.text),
            exposureLots.map(Self.text), tradesPerDay.map(String.init), lossStreak.map(String.init),
            cooldownMinutes.map(Self.text),
        ]
        return zip(Self.keys, values).flatMap { [$0, $1 ?? ""] }
    }

    /// A user's own limits from its hash.
    public init(userHash hash: [String: String]) {
        func number(_ key: String) -> Double? { hash[key].flatMap(Double.init).flatMap { $0.isFinite ? $0 : nil } }
        self.init(
            dailyLossPercent: number("limit_daily_loss"), drawdownPercent: number("limit_drawdown"),
            openRiskPercent: number("limit_open_risk"), exposureLots: number("limit_exposure_lots"),
            tradesPerDay: hash["limit_trades_per_day"].flatMap { Int($0) },
            lossStreak: hash["limit_loss_streak"].flatMap { Int($0) },
            cooldownMinutes: number("limit_cooldown_minutes"))
    }

    static func text(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 4) ?? "0" }
}

/// A user's figures for the limits: the trading day (its start balance, equity peak, trades) and the losing streak.
public struct RiskDay: Sendable, Equatable, Codable {
    /// The trading day (`YYYYMMDD`, server time; it rolls over at 00:00).
    public var day: String
    /// The balance when the day started (the first balance seen that day).
    public var startBalance: Double
    /// The highest equity seen (kept across days: drawdown is from the peak).
    public var equityPeak: Double
    /// Trades fired today.
    public var trades: Int
    /// Losing trades in a row (a win resets it).
    public var lossStreak: Int
    /// When the last losing trade closed (epoch seconds).
    public var lastLossAt: Double

    /// A user's figures.
    public init(
        day: String = "", startBalance: Double = 0, equityPeak: Double = 0, trades: Int = 0, lossStreak: Int = 0,
        lastLossAt: Double = 0
    ) {
        self.day = day
        self.startBalance = startBalance
        self.equityPeak = equityPeak
        self.trades = trades
        self.lossStreak = lossStreak
        self.lastLossAt = lastLossAt
    }

    /// The trading day of `time` (`YYYYMMDD`).
    public static func day(of time: Double) -> String {
        // Digits by hand: this runs at every fire and for every user at every sweep (String(format:) costs ~µs).
        let t = MetaTraderTime(epochSeconds: Int(time))
        return PlainDecimal.padded(t.year * 10_000 + t.month * 100 + t.day, width: 8)
    }

    /// When the trading day of `time` ends (the next 00:00).
    public static func nextDay(after time: Double) -> Double { (floor(time / 86_400) + 1) * 86_400 }

    /// The figures at `time` with the account at `balance` and `equity`: a new day starts at this balance; the
    /// peak follows equity up.
    public func rolled(at time: Double, balance: Double, equity: Double) -> RiskDay {
        var next = self
        let today = Self.day(of: time)
        if day != today {
            next.day = today
            next.startBalance = balance
            next.trades = 0
        }
        if equity > next.equityPeak { next.equityPeak = equity }
        return next
    }

    /// A closed trade's profit counted in the streak.
    public mutating func closed(profit: Double, at time: Double) {
        if profit < 0 {
            lossStreak += 1
            lastLossAt = time
        } else if profit > 0 {
            lossStreak = 0
        }
    }

    /// The fields of a user's hash that hold them.
    public var userFields: [String] {
        [
            "risk_day", day, "risk_start_balance", RiskLimits.text(startBalance), "risk_equity_peak",
            RiskLimits.text(equityPeak), "risk_trades", String(trades), "risk_loss_streak", String(lossStreak),
            "risk_last_loss_at", RiskLimits.text(lastLossAt),
        ]
    }

    /// A user's figures from its hash.
    public init(userHash hash: [String: String]) {
        self.init(
            day: hash["risk_day"] ?? "", startBalance: hash["risk_start_balance"].flatMap(Double.init) ?? 0,
            equityPeak: hash["risk_equity_peak"].flatMap(Double.init) ?? 0,
            trades: hash["risk_trades"].flatMap { Int($0) } ?? 0,
            lossStreak: hash["risk_loss_streak"].flatMap { Int($0) } ?? 0,
            lastLossAt: hash["risk_last_loss_at"].flatMap(Double.init) ?? 0)
    }
}

/// One open (or in-flight) trade as the limits see it.
public struct RiskExposure: Sendable, Equatable {
    /// The canonical symbol.
    public var symbol: String
    /// True for a BUY.
    public var isBuy: Bool
    /// The volume in lots.
    public var lot: Double
    /// What it loses at its stop, in the account currency; nil when it has no stop.
    public var riskAtStop: Double?

    /// A trade.
    public init(symbol: String, isBuy: Bool, lot: Double, riskAtStop: Double?) {
        self.symbol = symbol
        self.isBuy = isBuy
        self.lot = lot
        self.riskAtStop = riskAtStop
    }

    /// What a trade loses at its stop: the distance in ticks × tick value × lots; nil without a stop.
    public static func risk(
        entry: Double, stopLoss: Double, lot: Double, tickSize: Double, tickValue: Double
    ) -> Double? {
        guard stopLoss > 0, entry > 0, tickSize > 0 else { return nil }
        return abs(entry - stopLoss) / tickSize * tickValue * lot
    }

    /// The two currencies of a symbol (`EURUSD` → EUR, USD; `XAUUSD` → XAU, USD); a symbol of another form is
    /// its own currency.
    public static func currencies(of symbol: String) -> (base: String, quote: String?) {
        let letters = symbol.uppercased()
        guard letters.count == 6, letters.allSatisfy({ $0.isLetter && $0.isASCII }) else { return (letters, nil) }
        return (String(letters.prefix(3)), String(letters.suffix(3)))
    }

    /// Net lots per currency of these trades.
    public static func net(_ trades: [RiskExposure]) -> [String: Double] {
        var net: [String: Double] = [:]
        for trade in trades {
            let sign = trade.isBuy ? 1.0 : -1.0
            let (base, quote) = currencies(of: trade.symbol)
            net[base, default: 0] += sign * trade.lot
            if let quote { net[quote, default: 0] -= sign * trade.lot }
        }
        return net
    }
}

/// The limits' verdict on one new trade: pure, given the figures.
public enum RiskCheck {
    /// What the check needs to know about the account and the new trade.
    public struct Inputs: Sendable, Equatable {
        /// The account's balance now.
        public var balance: Double
        /// The open trades' P&L at current quotes.
        public var unrealized: Double
        /// The trades open or in flight.
        public var open: [RiskExposure]
        /// The new trade.
        public var new: RiskExposure
        /// What a trade without a stop counts as, in % of the balance.
        public var noStopRiskPercent: Double

        /// The inputs.
        public init(
            balance: Double, unrealized: Double, open: [RiskExposure], new: RiskExposure,
            noStopRiskPercent: Double = 10
        ) {
            self.balance = balance
            self.unrealized = unrealized
            self.open = open
            self.new = new
            self.noStopRiskPercent = noStopRiskPercent
        }

        func riskOf(_ trade: RiskExposure) -> Double { trade.riskAtStop ?? balance * noStopRiskPercent / 100 }
    }

    /// Why the new trade is refused, or nil. A limit is broken when the figure goes past it (a figure equal to
    /// the limit passes); each message gives the figure and the limit.
    public static func refusal(_ limits: RiskLimits, day: RiskDay, at time: Double, _ inputs: Inputs)
        -> FireRefusal?
    {
        let newRisk = inputs.riskOf(inputs.new)
        let equity = inputs.balance + inputs.unrealized
        if let limit = limits.lossStreak, let minutes = limits.cooldownMinutes, limit > 0, day.lossStreak >= limit {
            let ends = day.lastLossAt + minutes * 60
            if time < ends {
                return FireRefusal(
                    .lossStreakCooldown,
                    "\(day.lossStreak) losing trades in a row (limit \(limit)): cooling down for \(fmt(minutes)) min, until \(MetaTraderTime(epochSeconds: Int(ends.rounded(.up))))"
                )
            }
        }
        if let limit = limits.tradesPerDay, day.trades + 1 > limit {
            return FireRefusal(
                .tradesPerDayLimit, "this would be trade \(day.trades + 1) today; the limit is \(limit) a day")
        }
        if let limit = limits.dailyLossPercent, day.startBalance > 0 {
            let loss = (day.startBalance - equity + newRisk) / day.startBalance * 100
            if loss > limit + 1e-9 {
                return FireRefusal(
                    .dailyLossLimit,
                    "today's loss would reach \(fmt(loss)) % of the day's starting balance \(fmt(day.startBalance)) (realized and unrealized \(fmt(day.startBalance - equity)), this trade's risk \(fmt(newRisk))); the limit is \(fmt(limit)) %"
                )
            }
        }
        if let limit = limits.drawdownPercent {
            let peak = max(day.equityPeak, equity)
            if peak > 0 {
                let drawdown = (peak - equity + newRisk) / peak * 100
                if drawdown > limit + 1e-9 {
                    return FireRefusal(
                        .drawdownLimit,
                        "the drawdown from the equity peak \(fmt(peak)) would reach \(fmt(drawdown)) % (equity \(fmt(equity)), this trade's risk \(fmt(newRisk))); the limit is \(fmt(limit)) %"
                    )
                }
            }
        }
        if let limit = limits.openRiskPercent, inputs.balance > 0 {
            let total = inputs.open.map(inputs.riskOf).reduce(0, +) + newRisk
            let percent = total / inputs.balance * 100
            if percent > limit + 1e-9 {
                return FireRefusal(
                    .openRiskLimit,
                    "open risk at the stops would be \(fmt(percent)) % of the balance (\(fmt(total)) of \(fmt(inputs.balance))); the limit is \(fmt(limit)) %"
                )
            }
        }
        if let limit = limits.exposureLots {
            let before = RiskExposure.net(inputs.open)
            let after = RiskExposure.net(inputs.open + [inputs.new])
            for (currency, lots) in after.sorted(by: { $0.key < $1.key })
            where abs(lots) > limit + 1e-9 && abs(lots) > abs(before[currency] ?? 0) + 1e-9 {
                return FireRefusal(
                    .exposureLimit,
                    "net exposure in \(currency) would be \(fmt(lots)) lots; the limit is ±\(fmt(limit))")
            }
        }
        return nil
    }

    static func fmt(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 2) ?? "\(value)" }
}
