import Foundation

/// What CITADEL is asked to score.
public struct ProtectionQuery: Sendable, Equatable {
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// Nil: scored for both directions and the riskier one kept.
    public var direction: Direction?
    /// The entry price.
    public var entry: Double
    /// The stop loss price (nil: none).
    public var stopLoss: Double?
    /// When the signal was made (nil: now), for the age part of the decay.
    public var createdAt: Double?

    /// A query for an entry (and its stop loss), in one direction or both.
    public init(symbol: String, direction: Direction?, entry: Double, stopLoss: Double?, createdAt: Double? = nil) {
        self.symbol = symbol
        self.direction = direction
        self.entry = entry
        self.stopLoss = stopLoss
        self.createdAt = createdAt
    }
}

/// Each factor's value 0–10 (5 is neutral) and its weight in the score.
public struct ProtectionFactors: Sendable, Equatable, Codable {
    /// How far the entry is from the nearest zone.
    public var zoneProximity: Double
    /// Recent sweeps in the trade's favour or against it.
    public var sweepProtection: Double
    /// Volatility against its norm.
    public var volatility: Double
    /// Session and time of day.
    public var timeRisk: Double
    /// Decay and confluence.
    public var confluence: Double

    /// The factors' weights in the score.
    public static let weights = (zone: 0.30, sweep: 0.25, volatility: 0.20, time: 0.15, confluence: 0.10)

    /// 5 + Σ weight × (factor − 5), clamped to 1–10 and rounded to one decimal.
    public var score: Double {
        let w = Self.weights
        let raw =
            5 + w.zone * (zoneProximity - 5) + w.sweep * (sweepProtection - 5) + w.volatility * (volatility - 5)
            + w.time * (timeRisk - 5) + w.confluence * (confluence - 5)
        return (min(10, max(1, raw)) * 10).rounded() / 10
    }

    enum CodingKeys: String, CodingKey {
        case zoneProximity = "zone_proximity"
        case sweepProtection = "sweep_protection"
        case volatility
        case timeRisk = "time_risk"
        case confluence
    }
}

/// The decay of a live signal: 1 fresh, 0 worthless, with its parts.
public struct SignalDecay: Sendable, Equatable, Codable {
    /// Price drift since the signal as a signed fraction of the stop distance (positive: price ran
    /// in the trade's direction, i.e. the entry was run over; negative: towards the stop).
    public var drift: Double
    /// Spread now over spread when the signal came.
    public var spreadRatio: Double
    /// Volume now over volume when the signal came.
    public var volumeRatio: Double
    /// The signal's age, seconds.
    public var ageSeconds: Double
    /// 0.4 × drift term + 0.25 × spread term + 0.1 × volume term + 0.25 × age term.
    public var factor: Double

    enum CodingKeys: String, CodingKey {
        case drift, factor
        case spreadRatio = "spread_ratio"
        case volumeRatio = "volume_ratio"
        case ageSeconds = "age_seconds"
    }
}

/// CITADEL's full answer for one query.
public struct ProtectionReport: Sendable, Equatable {
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// `BUY` or `SELL`.
    public var direction: Direction?
    /// The entry price.
    public var entry: Double
    /// The stop loss price (nil: none).
    public var stopLoss: Double?
    /// Each factor, 0–10.
    public var factors: ProtectionFactors
    /// The protection score, 1–10.
    public var score: Double
    /// The risk level (`FORTRESS` … `DANGER`).
    public var level: RiskLevel
    /// The lot multiplier CITADEL gives the score.
    public var multiplier: Double
    /// What to do, in one line.
    public var recommendation: String
    /// CITADEL's reasons, one line each.
    public var insights: [String]
    /// How the signal has aged, for a live signal.
    public var decay: SignalDecay?
    /// When (epoch seconds).
    public var at: Double

    /// The score, level, multiplier and insights a signal record keeps.
    public var assessment: ProtectionAssessment {
        ProtectionAssessment(score: score, level: level.rawValue, multiplier: multiplier, insights: insights)
    }

    /// The protocol's reply object (original fields plus Bitten's).
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "type": .string("protection_score"),
            "symbol": .string(symbol), "entry_price": .number(entry, isInteger: false),
            "protection_score": .number(score, isInteger: false), "risk_level": .string(level.rawValue),
            "recommendation": .string(recommendation), "multiplier": .number(multiplier, isInteger: false),
            "insights": .array(insights.map { .string($0) }), "timestamp": .number(at.rounded(), isInteger: true),
            "factors": .object([
                "zone_proximity": .number(factors.zoneProximity, isInteger: false),
                "sweep_protection": .number(factors.sweepProtection, isInteger: false),
                "volatility": .number(factors.volatility, isInteger: false),
                "time_risk": .number(factors.timeRisk, isInteger: false),
                "confluence": .number(factors.confluence, isInteger: false),
            ]),
        ]
        if let direction { object["direction"] = .string(direction.rawValue) }
        if let stopLoss { object["sl"] = .number(stopLoss, isInteger: false) }
        if let decay {
            object["decay"] = .object([
                "factor": .number(decay.factor, isInteger: false), "drift": .number(decay.drift, isInteger: false),
                "spread_ratio": .number(decay.spreadRatio, isInteger: false),
                "volume_ratio": .number(decay.volumeRatio, isInteger: false),
                "age_seconds": .number(decay.ageSeconds.rounded(), isInteger: true),
            ])
        }
        return .object(object)
    }
}

/// The pure scoring model. Factor rules (each 0–10, 5 neutral):
/// - **zone proximity** (30 %): a zone against the trade within 2 ATR of the entry (resistance above a
///   BUY, support below a SELL) subtracts up to 4 × strength/10, more the closer it is; a zone behind
///   the entry (support below a BUY) adds up to 3 × strength/10, and 1 more when the stop sits beyond it.
/// - **sweep protection** (25 %): the latest sweep of the last `sweepRelevance` seconds adds up to 4
///   when its reversal favours the trade, subtracts up to 3 when it opposes it, fading with age.
/// - **volatility** (20 %): 7 when the short ATR is 0.7–1.3 × the long one, falling to 2 above 2.5 ×,
///   4 when very quiet; 2 off when the stop is inside half an ATR (noise will take it).
/// - **time risk** (15 %): by UTC hour — London/New York overlap 9, London 8, New York 7, Asia 5,
///   the rollover hour (21–22 UTC) 2, the weekend 1, Friday evening 3.
/// - **confluence** (10 %): 10 × the signal's decay factor (drift, spread, volume, age).
public enum ProtectionModel {
    /// The protection score of `query` from the market state and the liquidity map (the rules above).
    public static func assess(
        _ query: ProtectionQuery, market: SymbolMarket?, map: LiquidityMap?, settings: CitadelSettings, at time: Double
    ) -> ProtectionReport {
        guard let direction = query.direction else {
            let buy = assess(with(query, .buy), market: market, map: map, settings: settings, at: time)
            let sell = assess(with(query, .sell), market: market, map: map, settings: settings, at: time)
            var riskier = buy.score <= sell.score ? buy : sell
            riskier.direction = nil
            riskier.insights = Array(
                (["No direction given: scored for the riskier side (\(buy.score <= sell.score ? "BUY" : "SELL"))."]
                    + riskier.insights).prefix(3))
            return riskier
        }
        let pip = market?.pip ?? pipSize(symbol: query.symbol, price: query.entry)
        let atr = market?.atr() ?? 0
        var notes: [(weight: Double, text: String)] = []

        // Zone proximity.
        var zoneValue = 5.0
        if let map, atr > 0 {
            let reach = 2 * atr
            for (zone, strength) in map.currentZones(at: time) {
                let against =
                    (direction == .buy && zone.kind == .resistance && zone.price >= query.entry)
                    || (direction == .sell && zone.kind == .support && zone.price <= query.entry)
                let behind =
                    (direction == .buy && zone.kind == .support && zone.price <= query.entry)
                    || (direction == .sell && zone.kind == .resistance && zone.price >= query.entry)
                let distance = abs(zone.price - query.entry)
                guard distance <= reach else { continue }
                let closeness = 1 - distance / reach
                let sweptAgo = map.recentSweeps(at: time, window: settings.sweepRelevance)
                    .first { abs($0.zonePrice - zone.price) < pip / 2 }.map { Int((time - $0.at) / 60) }
                let sweptText = sweptAgo.map { " that was swept \($0) minutes ago" } ?? ""
                let side = zone.kind == .resistance ? "under" : "above"
                if against {
                    let penalty = 4 * strength / 10 * closeness
                    zoneValue -= penalty
                    notes.append(
                        (
                            penalty,
                            String(
                                format: "Entry sits %.1f pips %@ a strength-%.0f %@%@.",
                                distance / pip, side, strength, zone.kind.rawValue, sweptText)
                        ))
                } else if behind {
                    var bonus = 3 * strength / 10 * closeness
                    if let sl = query.stopLoss,
                        direction == .buy ? sl < zone.price : sl > zone.price
                    {
                        bonus += 1
                    }
                    zoneValue += bonus
                    notes.append(
                        (
                            bonus,
                            String(
                                format: "A strength-%.0f %@ %.1f pips %@ the entry backs the trade%@.",
                                strength, zone.kind.rawValue, distance / pip,
                                zone.kind == .support ? "below" : "above",
                                query.stopLoss == nil ? "" : " with the stop beyond it")
                        ))
                }
            }
        }
        zoneValue = clamp(zoneValue)

        // Sweep context.
        var sweepValue = 5.0
        if let latest = map?.recentSweeps(at: time, window: settings.sweepRelevance).first {
            let freshness = max(0, 1 - (time - latest.at) / settings.sweepRelevance)
            let minutes = Int((time - latest.at) / 60)
            if latest.reversal == direction {
                sweepValue += 4 * freshness
                notes.append(
                    (
                        4 * freshness,
                        String(
                            format: "Trades with the reversal of a %.1f-pip %@ %d minutes ago.",
                            latest.depthPips, latest.kind.replacingOccurrences(of: "_", with: " "), minutes)
                    ))
            } else {
                sweepValue -= 3 * freshness
                notes.append(
                    (
                        3 * freshness,
                        String(
                            format: "Trades against the reversal of a %@ %d minutes ago.",
                            latest.kind.replacingOccurrences(of: "_", with: " "), minutes)
                    ))
            }
        }
        sweepValue = clamp(sweepValue)

        // Volatility.
        var volatilityValue = 5.0
        if let market, atr > 0 {
            let ratio = market.volatilityRatio()
            switch ratio {
            case ..<0.5: volatilityValue = 4
            case 0.5..<0.7: volatilityValue = 6
            case 0.7...1.3: volatilityValue = 7
            case 1.3..<2.5: volatilityValue = 7 - 5 * (ratio - 1.3) / 1.2
            default: volatilityValue = 2
            }
            if ratio > 1.6 {
                notes.append((abs(volatilityValue - 5), String(format: "Volatility is %.1f× its normal level.", ratio)))
            }
            if let sl = query.stopLoss, abs(query.entry - sl) < atr / 2 {
                volatilityValue -= 2
                notes.append(
                    (
                        2,
                        String(
                            format: "The stop is %.1f pips away, inside half the average bar range (%.1f pips).",
                            abs(query.entry - sl) / pip, atr / pip)
                    ))
            }
        }
        volatilityValue = clamp(volatilityValue)

        // Session and time.
        let (timeValue, session) = sessionRisk(at: time)
        if timeValue <= 3 { notes.append((5 - timeValue, "\(session): thin liquidity and wide spreads are likely.")) }

        // Decay and confluence.
        var decay: SignalDecay?
        var confluenceValue = 5.0
        if let market, market.bid > 0 {
            let d = signalDecay(query, direction: direction, market: market, settings: settings, at: time)
            decay = d
            confluenceValue = clamp(10 * d.factor)
            if d.factor < 0.6 {
                var reasons: [String] = []
                if d.drift > 0.3 {
                    reasons.append(
                        String(format: "price already ran %.0f%% of the stop distance past the entry", d.drift * 100))
                }
                if d.drift < -0.3 {
                    reasons.append(String(format: "price moved %.0f%% of the way to the stop", -d.drift * 100))
                }
                if d.spreadRatio > 1.5 { reasons.append(String(format: "the spread is %.1f× normal", d.spreadRatio)) }
                if d.ageSeconds > settings.signalHorizon / 2 {
                    reasons.append("the signal is \(Int(d.ageSeconds / 60)) minutes old")
                }
                notes.append(
                    (
                        5 - confluenceValue,
                        "The signal has decayed: "
                            + (reasons.isEmpty ? "conditions changed" : reasons.joined(separator: ", ")) + "."
                    ))
            }
        }

        let factors = ProtectionFactors(
            zoneProximity: round1(zoneValue), sweepProtection: round1(sweepValue),
            volatility: round1(volatilityValue), timeRisk: round1(timeValue),
            confluence: round1(confluenceValue))
        let score = factors.score
        let level = RiskLevel(score: score)
        var insights = notes.sorted { $0.weight > $1.weight }.prefix(3).map(\.text)
        if insights.isEmpty {
            insights =
                market == nil
                ? ["No market data for \(query.symbol) yet: neutral view."]
                : ["No nearby institutional levels, sweeps or unusual conditions: a neutral setup."]
        }
        return ProtectionReport(
            symbol: query.symbol, direction: direction, entry: query.entry, stopLoss: query.stopLoss,
            factors: factors, score: score, level: level, multiplier: settings.multiplier(for: level),
            recommendation: level.recommendation, insights: insights, decay: decay, at: time)
    }

    /// The decay of a signal against the current market.
    public static func signalDecay(
        _ query: ProtectionQuery, direction: Direction, market: SymbolMarket,
        settings: CitadelSettings, at time: Double
    ) -> SignalDecay {
        let atr = market.atr() ?? 0
        let stopDistance = max(query.stopLoss.map { abs(query.entry - $0) } ?? 1.5 * atr, market.pip)
        let price = direction == .buy ? market.ask : market.bid
        let drift = (direction == .buy ? price - query.entry : query.entry - price) / stopDistance
        let driftTerm = max(0, 1 - abs(drift))
        let spread = market.spreadStats(at: time, window: settings.spreadWindow)
        let spreadRatio = spread.samples >= 10 ? spread.ratio : 1
        let spreadTerm = spreadRatio <= 1.5 ? 1 : max(0, 1 - (spreadRatio - 1.5) / 3)
        let volumeRatio = market.volumeRatio
        let volumeTerm = volumeRatio <= 3 ? 1 : max(0, 1 - (volumeRatio - 3) / 5)
        let age = max(0, time - (query.createdAt ?? time))
        let ageTerm = max(0, 1 - age / settings.signalHorizon)
        let factor = 0.4 * driftTerm + 0.25 * spreadTerm + 0.1 * volumeTerm + 0.25 * ageTerm
        return SignalDecay(
            drift: drift, spreadRatio: spreadRatio, volumeRatio: volumeRatio, ageSeconds: age, factor: factor)
    }

    /// The time-risk value and the session's name at `time` (UTC).
    public static func sessionRisk(at time: Double) -> (Double, String) {
        // UTC from epoch arithmetic (no Calendar per query): 1970-01-01 was a Thursday.
        let seconds = Int(time.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let weekday = ((days + 4) % 7 + 7) % 7 + 1  // 1 = Sunday … 7 = Saturday
        let hour = (seconds - days * 86_400) / 3_600
        if weekday == 7 || (weekday == 1 && hour < 21) { return (1, "Weekend") }
        if weekday == 6 && hour >= 20 { return (3, "Friday close") }
        switch hour {
        case 21: return (2, "Rollover hour")
        case 12..<16: return (9, "London/New York overlap")
        case 7..<12: return (8, "London session")
        case 16..<21: return (7, "New York session")
        default: return (5, "Asian session")
        }
    }

    private static func with(_ query: ProtectionQuery, _ direction: Direction) -> ProtectionQuery {
        var copy = query
        copy.direction = direction
        return copy
    }

    private static func clamp(_ value: Double) -> Double { min(10, max(0, value)) }
    private static func round1(_ value: Double) -> Double { (value * 10).rounded() / 10 }
}
