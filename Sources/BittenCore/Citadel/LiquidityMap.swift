import Foundation

/// A support or resistance zone found from a swing.
public struct Zone: Sendable, Equatable, Codable {
    /// Below the price (support) or above it (resistance).
    public enum Kind: String, Sendable, Codable { case support, resistance }

    /// The id.
    public var id: Int
    /// What kind it is.
    public var kind: Kind
    /// The price.
    public var price: Double
    /// Strength 1–10 as of `updatedAt`; read it with `strength(at:)`, which applies the daily decay.
    public var baseStrength: Double
    /// How often the price came back to it.
    public var touches: Int
    /// When the zone formed (epoch seconds).
    public var formedAt: Double
    /// When the strength was last set (epoch seconds).
    public var updatedAt: Double
    /// The bar volume when the zone formed.
    public var volumeAtFormation: Double
    /// Open time of the newest bar that formed or touched the zone (one touch per bar).
    public var lastBar: Double
    /// A pierce beyond the sweep threshold waiting for a close back inside.
    var pierce: Pierce?

    struct Pierce: Sendable, Equatable, Codable {
        var bars: Int
        var extreme: Double
    }

    /// Strength after the daily decay since the last update, 1–10.
    public func strength(at time: Double, dailyDecay: Double) -> Double {
        let days = max(0, time - updatedAt) / 86_400
        return min(10, max(1, baseStrength * pow(dailyDecay, days)))
    }
}

/// A pierce of a zone that closed back inside within the confirmation window.
public struct Sweep: Sendable, Equatable, Codable {
    /// `bullish_sweep`: through resistance then back below; `bearish_sweep`: through support then back above.
    public var kind: String
    /// The swept zone's price.
    public var zonePrice: Double
    /// The swept zone's kind.
    public var zoneKind: Zone.Kind
    /// The swept zone's strength.
    public var zoneStrength: Double
    /// How far beyond the zone price went, in pips.
    public var depthPips: Double
    /// When (epoch seconds).
    public var at: Double
    /// The direction the reversal favours: SELL after a resistance sweep, BUY after a support sweep.
    public var reversal: Direction
}

/// What the liquidity map noticed on one bar.
public enum LiquidityEvent: Sendable, Equatable {
    case zoneFormed(Zone)
    case zoneTouched(Zone)
    case sweep(Sweep)
    case zoneBroken(Zone, closedAt: Double)
}

/// Support and resistance zones of one symbol, with sweeps. Fed completed bars in time order; pure.
///
/// - Swings: a bar whose high (low) is above (below) the `swingBars` bars each side forms a
///   resistance (support) zone at that price.
/// - Strength 1–10 at formation: 3, plus up to 2 for volume against the average, up to 2 for the
///   swing's prominence against the ATR, plus 2 near a round 50-pip level (1 near a 10-pip one).
///   Each touch (price coming within tolerance without piercing, or a new swing merging into it)
///   adds 1, capped at 10. Strength decays ×`dailyDecay` a day; a zone expires `zoneLifetime`
///   after its last update; at most `maxZones` are kept, strongest first.
/// - Sweeps: a bar piercing a zone by the sweep threshold that closes back inside within
///   `confirmationBars` bars is a sweep (recorded once); a pierce that stays outside is a break,
///   and the zone is removed.
public struct LiquidityMap: Sendable {
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public let symbol: String
    /// The zones, strongest first.
    public private(set) var zones: [Zone] = []
    /// The recent sweeps, oldest first.
    public private(set) var sweeps: [Sweep] = []
    private var nextID = 1
    let settings: CitadelSettings

    /// An empty map for `symbol`.
    public init(symbol: String, settings: CitadelSettings) {
        self.symbol = symbol
        self.settings = settings
    }

    /// Zones with their decayed strength, strongest first.
    public func currentZones(at time: Double) -> [(zone: Zone, strength: Double)] {
        zones.map { ($0, $0.strength(at: time, dailyDecay: settings.dailyDecay)) }.sorted { $0.strength > $1.strength }
    }

    /// Sweeps recorded within `window` seconds before `time`, newest first.
    public func recentSweeps(at time: Double, window: Double) -> [Sweep] {
        sweeps.filter { time - $0.at <= window && $0.at <= time }.sorted { $0.at > $1.at }
    }

    /// Processes the newest completed bar of `market`.
    public mutating func onBar(market: SymbolMarket, at time: Double) -> [LiquidityEvent] {
        guard let bar = market.bars.last else { return [] }
        let pip = market.pip
        let atr = market.atr() ?? 0
        let tolerance = max(settings.zoneTolerancePips * pip, atr / 4)
        let threshold = settings.sweepThreshold(symbol: symbol, pip: pip)
        var events: [LiquidityEvent] = []

        // Expiry and the bounded sweep history.
        zones.removeAll { time - $0.updatedAt > settings.zoneLifetime }
        sweeps.removeAll { time - $0.at > settings.sweepRetention }

        // Pierces, sweeps, breaks and touches against the existing zones.
        var broken: Set<Int> = []
        for index in zones.indices {
            var zone = zones[index]
            let strength = zone.strength(at: time, dailyDecay: settings.dailyDecay)
            let beyond: Double = zone.kind == .resistance ? bar.high - zone.price : zone.price - bar.low
            let closedInside = zone.kind == .resistance ? bar.close < zone.price : bar.close > zone.price
            if zone.pierce == nil && beyond >= threshold {
                zone.pierce = Zone.Pierce(bars: 0, extreme: zone.kind == .resistance ? bar.high : bar.low)
            }
            if var pierce = zone.pierce {
                pierce.bars += 1
                pierce.extreme = zone.kind == .resistance ? max(pierce.extreme, bar.high) : min(pierce.extreme, bar.low)
                if closedInside {
                    let sweep = Sweep(
                        kind: zone.kind == .resistance ? "bullish_sweep" : "bearish_sweep", zonePrice: zone.price,
                        zoneKind: zone.kind, zoneStrength: strength,
                        depthPips: abs(pierce.extreme - zone.price) / pip, at: time,
                        reversal: zone.kind == .resistance ? .sell : .buy)
                    sweeps.append(sweep)
                    events.append(.sweep(sweep))
                    zone.pierce = nil
                    // A swept level held: it counts as a touch.
                    zone.baseStrength = min(10, strength + 1)
                    zone.touches += 1
                    zone.updatedAt = time
                    zone.lastBar = bar.time
                } else if pierce.bars >= settings.confirmationBars {
                    broken.insert(zone.id)
                    events.append(.zoneBroken(zone, closedAt: bar.close))
                    zone.pierce = nil
                } else {
                    zone.pierce = pierce
                }
            } else if beyond > -tolerance && beyond < threshold && bar.time > zone.lastBar {
                // Came within tolerance (or pierced less than the threshold): a touch.
                zone.baseStrength = min(10, strength + 1)
                zone.touches += 1
                zone.updatedAt = time
                zone.lastBar = bar.time
                events.append(.zoneTouched(zone))
            }
            zones[index] = zone
        }
        zones.removeAll { broken.contains($0.id) }

        // A swing completed `swingBars` bars ago.
        let n = settings.swingBars
        if market.bars.count >= 2 * n + 1 {
            let centre = market.bars.count - 1 - n
            let candidate = market.bars[centre]
            var isHigh = true
            var isLow = true
            for offset in 1...n {
                let left = market.bars[centre - offset]
                let right = market.bars[centre + offset]
                if !(candidate.high > left.high && candidate.high >= right.high) { isHigh = false }
                if !(candidate.low < left.low && candidate.low <= right.low) { isLow = false }
            }
            var neighbourHigh = -Double.infinity
            var neighbourLow = Double.infinity
            for offset in 1...n {
                neighbourHigh = max(neighbourHigh, market.bars[centre - offset].high, market.bars[centre + offset].high)
                neighbourLow = min(neighbourLow, market.bars[centre - offset].low, market.bars[centre + offset].low)
            }
            if isHigh {
                events += addSwing(
                    .resistance, price: candidate.high, prominence: candidate.high - neighbourHigh,
                    volume: candidate.volume, market: market, atr: atr, tolerance: tolerance, at: time)
            }
            if isLow {
                events += addSwing(
                    .support, price: candidate.low, prominence: neighbourLow - candidate.low,
                    volume: candidate.volume, market: market, atr: atr, tolerance: tolerance, at: time)
            }
        }

        // Keep the strongest.
        if zones.count > settings.maxZones {
            zones = Array(currentZones(at: time).prefix(settings.maxZones).map(\.zone))
        }
        return events
    }

    private mutating func addSwing(
        _ kind: Zone.Kind, price: Double, prominence: Double, volume: Double,
        market: SymbolMarket, atr: Double, tolerance: Double, at time: Double
    )
        -> [LiquidityEvent]
    {
        if let index = zones.firstIndex(where: { $0.kind == kind && abs($0.price - price) <= tolerance }) {
            var zone = zones[index]
            let strength = zone.strength(at: time, dailyDecay: settings.dailyDecay)
            zone.price = (zone.price * Double(zone.touches) + price) / Double(zone.touches + 1)
            zone.touches += 1
            zone.baseStrength = min(10, strength + 1)
            zone.updatedAt = time
            zone.lastBar = max(zone.lastBar, market.bars.last?.time ?? time)
            zones[index] = zone
            return [.zoneTouched(zone)]
        }
        var strength = 3.0
        if let average = market.averageVolume(), average > 0 {
            strength += min(2, max(0, (volume / average - 1) * 1.5))
        }
        if atr > 0 { strength += min(2, max(0, prominence / atr)) }
        strength += Self.roundNumberBonus(price: price, pip: market.pip)
        let zone = Zone(
            id: nextID, kind: kind, price: price, baseStrength: min(10, max(1, strength)), touches: 1,
            formedAt: time, updatedAt: time, volumeAtFormation: volume,
            lastBar: market.bars.last?.time ?? time)
        nextID += 1
        zones.append(zone)
        return [.zoneFormed(zone)]
    }

    /// 2 within 3 pips of a 50-pip level, 1 within 2 pips of a 10-pip level, else 0.
    static func roundNumberBonus(price: Double, pip: Double) -> Double {
        guard pip > 0 else { return 0 }
        let pips = price / pip
        let to50 = abs(pips - (pips / 50).rounded() * 50)
        if to50 <= 3 { return 2 }
        let to10 = abs(pips - (pips / 10).rounded() * 10)
        return to10 <= 2 ? 1 : 0
    }
}
