/// A user's rank: it sets how many trades may be open at once and the most a trade may risk.
public enum Tier: String, Sendable, CaseIterable, Codable {
    case recruit = "RECRUIT"
    case soldier = "SOLDIER"
    case corporal = "CORPORAL"
    case sergeant = "SERGEANT"
    case lieutenant = "LIEUTENANT"
    case captain = "CAPTAIN"
    case major = "MAJOR"
    case colonel = "COLONEL"
    case general = "GENERAL"
    case commander = "COMMANDER"

    /// Parses a tier name, case-insensitively.
    public init?(name: String) { self.init(rawValue: name.uppercased()) }
}

/// What one tier allows.
public struct TierRule: Sendable, Equatable, Codable {
    /// Open trades (pending, sent or filled and not closed) at once.
    public var slots: Int
    /// The most one trade may risk, in percent of the balance.
    public var maxRiskPercent: Double
    /// Multiplies the base risk.
    public var riskMultiplier: Double

    /// A rule.
    public init(slots: Int, maxRiskPercent: Double, riskMultiplier: Double) {
        self.slots = slots
        self.maxRiskPercent = maxRiskPercent
        self.riskMultiplier = riskMultiplier
    }
}

/// The tier table: slots, maximum risk and risk multiplier per tier.
public struct TierTable: Sendable, Equatable {
    /// The rule of each tier.
    public var rules: [Tier: TierRule]

    /// A table of these rules.
    public init(rules: [Tier: TierRule]) { self.rules = rules }

    /// The rule of `tier` (the default table's when the configured table lacks it).
    public func rule(_ tier: Tier) -> TierRule { rules[tier] ?? TierTable.standard.rules[tier]! }

    /// The default table: slots and maximum risk from the product's rank ladder; the multiplier
    /// grows with rank so that higher tiers may risk more, always capped by their maximum.
    public static let standard = TierTable(rules: [
        .recruit: TierRule(slots: 1, maxRiskPercent: 2.0, riskMultiplier: 1.0),
        .soldier: TierRule(slots: 1, maxRiskPercent: 2.5, riskMultiplier: 1.0),
        .corporal: TierRule(slots: 2, maxRiskPercent: 3.0, riskMultiplier: 1.1),
        .sergeant: TierRule(slots: 2, maxRiskPercent: 3.5, riskMultiplier: 1.2),
        .lieutenant: TierRule(slots: 3, maxRiskPercent: 4.0, riskMultiplier: 1.3),
        .captain: TierRule(slots: 3, maxRiskPercent: 4.5, riskMultiplier: 1.4),
        .major: TierRule(slots: 4, maxRiskPercent: 5.0, riskMultiplier: 1.5),
        .colonel: TierRule(slots: 5, maxRiskPercent: 5.5, riskMultiplier: 1.6),
        .general: TierRule(slots: 10, maxRiskPercent: 6.0, riskMultiplier: 1.8),
        .commander: TierRule(slots: 15, maxRiskPercent: 10.0, riskMultiplier: 2.0),
    ])
}
