/// CITADEL's risk levels, from the protection score.
public enum RiskLevel: String, Sendable, Codable, CaseIterable {
    case fortress = "FORTRESS"
    case protected = "PROTECTED"
    case caution = "CAUTION"
    case highRisk = "HIGH_RISK"
    case danger = "DANGER"

    /// FORTRESS ≥ 8, PROTECTED ≥ 6, CAUTION ≥ 4, HIGH_RISK ≥ 2, else DANGER.
    public init(score: Double) {
        switch score {
        case 8...: self = .fortress
        case 6..<8: self = .protected
        case 4..<6: self = .caution
        case 2..<4: self = .highRisk
        default: self = .danger
        }
    }

    /// One line of advice for the level.
    public var recommendation: String {
        switch self {
        case .fortress: "Strong structure behind the entry: full size plus the FORTRESS bonus."
        case .protected: "Reasonable protection: trade at normal size."
        case .caution: "Mixed conditions: size down and respect the stop."
        case .highRisk: "Entry exposed to liquidity grabs or poor conditions: small size only, or wait."
        case .danger: "Conditions work against this trade: skip it or wait for a better entry."
        }
    }
}

/// CITADEL's tunables. Defaults follow the issue; everything is per instance so tests and the
/// configuration can change it.
public struct CitadelSettings: Sendable, Equatable {
    /// Length of the analysis bars in seconds (M5). Bars of this length come from the EA's OHLC when it
    /// sends them, otherwise they are built from ticks.
    public var barSeconds: Double = 300
    /// Bars each side a swing high or low needs.
    public var swingBars = 2
    /// How far (pips) price must pierce a zone for a sweep; per symbol in `sweepThresholdOverrides`.
    public var sweepThresholdPips = 3.0
    /// Sweep thresholds in pips for symbols that move in larger steps.
    public var sweepThresholdOverrides: [String: Double] = ["XAUUSD": 10, "BTCUSD": 50]
    /// Bars (including the piercing one) within which the close must come back inside.
    public var confirmationBars = 3
    /// Zones closer than this (pips, or a quarter of the ATR when larger) merge.
    public var zoneTolerancePips = 3.0
    /// Strength kept per day without a touch.
    public var dailyDecay = 0.95
    /// Seconds after its last touch a zone expires.
    public var zoneLifetime = 86_400.0
    /// Zones kept per symbol.
    public var maxZones = 15
    /// Zones at least this strong are institutional.
    public var institutionalStrength = 7.0
    /// Seconds sweeps are kept.
    public var sweepRetention = 86_400.0
    /// Seconds a sweep still counts for the score.
    public var sweepRelevance = 7_200.0
    /// Seconds between two alerts of one kind for one symbol.
    public var alertCooldown = 300.0
    /// A spread this many times the hour's median is a manipulation alert.
    public var spreadSpikeRatio = 3.0
    /// A bar with this many times the average volume is a manipulation alert.
    public var volumeSpikeRatio = 4.0
    /// A live signal whose decay factor falls below this is stale.
    public var staleDecay = 0.5
    /// Age (seconds) at which a signal's age term reaches zero.
    public var signalHorizon = 1_800.0
    /// Sizing multiplier per level.
    public var multipliers: [RiskLevel: Double] = [
        .danger: 0.25, .highRisk: 0.5, .caution: 0.75, .protected: 1.0, .fortress: 1.25,
    ]
    /// Analysis bars kept per symbol.
    public var maxBars = 500
    /// Ticks kept per symbol.
    public var maxTicks = 2_000
    /// Seconds of spread history for the statistics.
    public var spreadWindow = 3_600.0

    /// The defaults.
    public init() {}

    /// The depth, in price, a pierce needs to count as a sweep on `symbol`.
    public func sweepThreshold(symbol: String, pip: Double) -> Double {
        (sweepThresholdOverrides[symbol] ?? sweepThresholdPips) * pip
    }

    /// The lot multiplier of a risk level.
    public func multiplier(for level: RiskLevel) -> Double { multipliers[level] ?? 1.0 }
}

/// One pip of `symbol`: from the instrument table, else guessed from the price.
public func pipSize(symbol: String, price: Double, instruments: InstrumentTable = .standard) -> Double {
    if let instrument = instruments[symbol] { return instrument.pipSize }
    if symbol.hasSuffix("JPY") { return 0.01 }
    switch price {
    case ..<20: return 0.0001
    case ..<500: return 0.01
    case ..<5_000: return 0.1
    default: return 1
    }
}
