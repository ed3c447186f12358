/// Why a trade could not be sized.
public struct SizingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What happened, for a person.
    public let message: String
    /// A refusal with its reason.
    public init(_ message: String) { self.message = message }
    /// A one-line description.
    public var description: String { message }
}

/// The outcome of sizing one trade.
public struct PositionSize: Sendable, Equatable, Codable {
    /// Lots to trade (a multiple of the lot step, within the broker's limits).
    public var lot: Double
    /// The risk percent applied after multipliers and the tier cap.
    public var riskPercent: Double
    /// Money at risk if the stop is hit, at `lot`.
    public var riskAmount: Double
    /// Stop distance in ticks.
    public var stopTicks: Double
    /// Value of one tick per lot in the account currency.
    public var tickValue: Double
}

/// Lot sizing: balance × risk % ÷ (stop distance × tick value), rounded down to the lot step and
/// clamped to the broker's limits. Risk % = base (or the user's override) × tier multiplier ×
/// CITADEL multiplier, never above the tier's maximum.
public struct PositionSizer: Sendable, Equatable {
    /// Base risk per trade in percent (1–2).
    public var baseRiskPercent: Double

    /// A sizer risking `baseRiskPercent` of the balance by default.
    public init(baseRiskPercent: Double = 1.0) { self.baseRiskPercent = baseRiskPercent }

    /// The risk percent for a trade.
    public func riskPercent(rule: TierRule, userOverride: Double?, citadelMultiplier: Double) -> Double {
        let base = userOverride ?? baseRiskPercent
        return max(0, min(base * rule.riskMultiplier * citadelMultiplier, rule.maxRiskPercent))
    }

    /// Sizes a trade. `tickValue` is the value of one tick per lot in the account currency.
    public func size(
        balance: Double, entry: Double, stopLoss: Double, instrument: Instrument, tickValue: Double,
        rule: TierRule, userOverride: Double?, citadelMultiplier: Double
    ) throws(SizingError) -> PositionSize {
        guard balance.isFinite, balance > 0 else { throw SizingError("account balance \(balance) is not positive") }
        guard tickValue.isFinite, tickValue > 0 else { throw SizingError("tick value \(tickValue) is not positive") }
        let distance = abs(entry - stopLoss)
        let stopTicks = (distance / instrument.tickSize).rounded()
        guard stopTicks >= 1 else { throw SizingError("stop distance \(distance) is under one tick") }
        let percent = riskPercent(rule: rule, userOverride: userOverride, citadelMultiplier: citadelMultiplier)
        let raw = balance * percent / 100 / (stopTicks * tickValue)
        // Round down to the step (with a hair of tolerance so 0.35 stays 0.35 in binary).
        var lot = (raw / instrument.lotStep + 1e-9).rounded(.down) * instrument.lotStep
        lot = min(max(lot, instrument.minLot), instrument.maxLot)
        let decimals = Self.decimals(of: instrument.lotStep)
        lot = Self.round(lot, decimals)
        return PositionSize(
            lot: lot, riskPercent: Self.round(percent, 4),
            riskAmount: Self.round(lot * stopTicks * tickValue, 2), stopTicks: stopTicks,
            tickValue: tickValue)
    }

    /// Decimal places of a step such as 0.01 (2) or 0.00001 (5).
    public static func decimals(of step: Double) -> Int {
        var digits = 0
        var value = step
        while digits < 8 && abs(value.rounded() - value) > 1e-9 {
            value *= 10
            digits += 1
        }
        return digits
    }

    static func round(_ value: Double, _ digits: Int) -> Double {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        return (value * scale).rounded() / scale
    }
}
