/// A CITADEL verdict on a signal: score 1–10, its risk level, the sizing multiplier and plain-word
/// reasons.
public struct ProtectionAssessment: Sendable, Equatable, Codable {
    /// The protection score, 1–10.
    public var score: Double
    /// The risk level (`FORTRESS` … `DANGER`).
    public var level: String
    /// The lot multiplier CITADEL gives the score.
    public var multiplier: Double
    /// CITADEL's reasons, one line each.
    public var insights: [String]

    /// An assessment.
    public init(score: Double, level: String, multiplier: Double, insights: [String]) {
        self.score = score
        self.level = level
        self.multiplier = multiplier
        self.insights = insights
    }
}

/// Scores signals for market protection (CITADEL).
public protocol ProtectionScorer: Sendable {
    /// The assessment of `signal` at `time` (epoch seconds).
    func assess(_ signal: Signal, at time: Double) -> ProtectionAssessment
}

/// The stand-in until CITADEL scoring exists: every signal gets the neutral score 5 (CAUTION) and
/// multiplier 1.0, and says so.
public struct NeutralScorer: ProtectionScorer {
    /// The neutral scorer.
    public init() {}

    /// Every signal scores 5, level CAUTION, multiplier 1.
    public func assess(_ signal: Signal, at time: Double) -> ProtectionAssessment {
        ProtectionAssessment(
            score: 5, level: "CAUTION", multiplier: 1.0,
            insights: ["CITADEL market analysis is not active yet: neutral score, no size adjustment"])
    }
}
