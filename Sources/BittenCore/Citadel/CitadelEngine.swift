/// A CITADEL alert. `kind` is the protocol's: `liquidity_sweep`, `manipulation_detected`,
/// `zone_broken`, `signal_stale`.
public struct CitadelAlert: Sendable, Equatable {
    /// What kind it is.
    public var kind: String
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// When (epoch seconds).
    public var at: Double
    /// What happened, for a person.
    public var message: String
    /// What the alert's kind adds (the zone, the depth of a sweep…).
    public var details: [String: JSONValue]

    /// The alert's JSON object (for the PUB frame, Redis and the API).
    public var json: JSONValue {
        var object = details
        object["kind"] = .string(kind)
        object["symbol"] = .string(symbol)
        object["timestamp"] = .number(at, isInteger: false)
        object["message"] = .string(message)
        return .object(object)
    }
}

/// All of CITADEL's state, for every symbol: market state, liquidity map, alert cooldowns and the live
/// signals it watches for decay. Pure and clock-free: every call takes the time. Not thread-safe; the
/// service keeps it behind a lock.
public struct CitadelEngine: Sendable {
    /// The settings.
    public let settings: CitadelSettings
    /// The instruments by symbol.
    public let instruments: InstrumentTable
    /// The market state per symbol.
    public private(set) var markets: [String: SymbolMarket] = [:]
    /// The liquidity map (zones, sweeps) per symbol.
    public private(set) var maps: [String: LiquidityMap] = [:]
    private var lastAlert: [String: Double] = [:]
    private var liveSignals: [String: (query: ProtectionQuery, expiresAt: Double, stale: Bool)] = [:]
    /// Alerts held back by the cooldown, by kind.
    public private(set) var suppressed: [String: Int] = [:]
    /// Ticks and bars processed.
    public private(set) var ticksSeen = 0
    /// Bars taken in.
    public private(set) var barsSeen = 0

    /// The live signals watched for decay at most.
    public static let maxLiveSignals = 500

    /// An engine with no market data yet.
    public init(settings: CitadelSettings = CitadelSettings(), instruments: InstrumentTable = .standard) {
        self.settings = settings
        self.instruments = instruments
    }

    /// Symbols with market data.
    public var symbols: [String] { markets.keys.sorted() }

    /// A quote; returns the alerts it raised (spread spikes, and whatever a completed bar raised).
    public mutating func addTick(symbol: String, bid: Double, ask: Double, volume: Double, at time: Double)
        -> [CitadelAlert]
    {
        guard bid > 0, ask >= bid else { return [] }
        ticksSeen += 1
        // Mutated in place: copying the market out and back would copy its rings on every tick.
        let settings = self.settings
        let instruments = self.instruments
        let completed = markets[
            symbol, default: SymbolMarket(symbol: symbol, price: bid, settings: settings, instruments: instruments)
        ]
        .addTick(bid: bid, ask: ask, volume: volume, at: time)
        guard let market = markets[symbol] else { return [] }
        var alerts: [CitadelAlert] = []
        // Spread spike against the hour's median (needs a minute of history).
        let stats = SpreadStats(
            current: market.spreadPips, median: market.spreadMedian, p90: 0, p99: 0,
            samples: market.spreadSampleCount)
        if stats.samples >= 60, stats.median > 0, stats.current >= settings.spreadSpikeRatio * stats.median,
            stats.current - stats.median >= 1
        {
            if let alert = raise(
                CitadelAlert(
                    kind: "manipulation_detected", symbol: symbol, at: time,
                    message: String(
                        format: "%@ spread %.1f pips is %.1f× its hourly median of %.1f", symbol, stats.current,
                        stats.ratio, stats.median),
                    details: [
                        "reason": .string("spread_spike"), "spread_pips": .number(stats.current, isInteger: false),
                        "median_pips": .number(stats.median, isInteger: false),
                        "ratio": .number(stats.ratio, isInteger: false),
                    ]))
            {
                alerts.append(alert)
            }
        }
        if completed != nil { alerts += onBar(symbol: symbol, at: time) }
        return alerts
    }

    /// A completed bar of the analysis timeframe from the feed (EA's OHLC).
    public mutating func addBar(symbol: String, _ bar: Bar, at time: Double) -> [CitadelAlert] {
        let settings = self.settings
        let instruments = self.instruments
        let added = markets[
            symbol,
            default: SymbolMarket(symbol: symbol, price: bar.close, settings: settings, instruments: instruments)
        ]
        .addFeedBar(bar)
        guard added != nil else { return [] }
        return onBar(symbol: symbol, at: time)
    }

    /// A bar of another timeframe: kept for display, not analysed.
    public mutating func addOtherBar(symbol: String, timeframe: String, _ bar: Bar) {
        let settings = self.settings
        let instruments = self.instruments
        markets[
            symbol,
            default: SymbolMarket(symbol: symbol, price: bar.close, settings: settings, instruments: instruments)
        ]
        .addOtherBar(bar, timeframe: timeframe)
    }

    private mutating func onBar(symbol: String, at time: Double) -> [CitadelAlert] {
        guard let market = markets[symbol] else { return [] }
        barsSeen += 1
        let settings = self.settings
        let events = maps[symbol, default: LiquidityMap(symbol: symbol, settings: settings)].onBar(
            market: market, at: time)
        var alerts: [CitadelAlert] = []
        for event in events {
            switch event {
            case .sweep(let sweep):
                let candidate = CitadelAlert(
                    kind: "liquidity_sweep", symbol: symbol, at: time,
                    message: String(
                        format: "%@ %@: pierced the strength-%.0f %@ at %@ by %.1f pips and closed back inside",
                        symbol, sweep.kind, sweep.zoneStrength, sweep.zoneKind.rawValue,
                        PlainDecimal.format(sweep.zonePrice, maxFractionDigits: 6) ?? "?", sweep.depthPips),
                    details: [
                        "sweep_type": .string(sweep.kind), "zone_price": .number(sweep.zonePrice, isInteger: false),
                        "zone_kind": .string(sweep.zoneKind.rawValue),
                        "zone_strength": .number(sweep.zoneStrength, isInteger: false),
                        "depth_pips": .number(sweep.depthPips, isInteger: false),
                        "reversal": .string(sweep.reversal.rawValue),
                    ])
                if let alert = raise(candidate) { alerts.append(alert) }
            case .zoneBroken(let zone, let close):
                let candidate = CitadelAlert(
                    kind: "zone_broken", symbol: symbol, at: time,
                    message: String(
                        format: "%@ %@ at %@ broke: price stayed beyond it for %d bars", symbol, zone.kind.rawValue,
                        PlainDecimal.format(zone.price, maxFractionDigits: 6) ?? "?", settings.confirmationBars),
                    details: [
                        "zone_price": .number(zone.price, isInteger: false), "zone_kind": .string(zone.kind.rawValue),
                        "close": .number(close, isInteger: false),
                    ])
                if let alert = raise(candidate) { alerts.append(alert) }
            case .zoneFormed, .zoneTouched:
                break
            }
        }
        // Volume spike on the bar just completed.
        if let average = market.averageVolume(), let last = market.bars.last,
            last.volume >= settings.volumeSpikeRatio * average
        {
            if let alert = raise(
                CitadelAlert(
                    kind: "manipulation_detected", symbol: symbol, at: time,
                    message: String(
                        format: "%@ bar volume %.0f is %.1f× the average", symbol, last.volume, last.volume / average),
                    details: [
                        "reason": .string("volume_spike"), "volume": .number(last.volume, isInteger: false),
                        "average": .number(average, isInteger: false),
                    ]))
            {
                alerts.append(alert)
            }
        }
        return alerts
    }

    /// Applies the per-symbol, per-kind cooldown.
    private mutating func raise(_ alert: CitadelAlert) -> CitadelAlert? {
        let key = alert.symbol + "|" + alert.kind
        if let last = lastAlert[key], alert.at - last < settings.alertCooldown {
            suppressed[alert.kind, default: 0] += 1
            return nil
        }
        lastAlert[key] = alert.at
        return alert
    }

    /// Scores a query against the current state.
    public func assess(_ query: ProtectionQuery, at time: Double) -> ProtectionReport {
        ProtectionModel.assess(
            query, market: markets[query.symbol], map: maps[query.symbol], settings: settings, at: time)
    }

    /// Starts watching a signal for decay until it expires.
    public mutating func watch(signalID: String, query: ProtectionQuery, expiresAt: Double) {
        if liveSignals.count >= Self.maxLiveSignals,
            let oldest = liveSignals.min(by: { $0.value.expiresAt < $1.value.expiresAt })
        {
            liveSignals.removeValue(forKey: oldest.key)
        }
        liveSignals[signalID] = (query, expiresAt, false)
    }

    /// Number of signals watched.
    public var watchedSignals: Int { liveSignals.count }

    /// Re-scores the live signals; a signal whose decay falls below the threshold is marked stale once
    /// and alerted (cooldown per symbol applies to the alert, not to the marking).
    public mutating func reviewSignals(at time: Double) -> [CitadelAlert] {
        var alerts: [CitadelAlert] = []
        for (id, entry) in liveSignals {
            if time > entry.expiresAt {
                liveSignals.removeValue(forKey: id)
                continue
            }
            guard !entry.stale, let direction = entry.query.direction, let market = markets[entry.query.symbol],
                market.bid > 0
            else { continue }
            let decay = ProtectionModel.signalDecay(
                entry.query, direction: direction, market: market, settings: settings, at: time)
            guard decay.factor < settings.staleDecay else { continue }
            liveSignals[id]?.stale = true
            if let alert = raise(
                CitadelAlert(
                    kind: "signal_stale", symbol: entry.query.symbol, at: time,
                    message: String(
                        format:
                            "signal %@ is stale: decay %.2f (drift %.2f of the stop, spread %.1f× normal, %d minutes old)",
                        id, decay.factor, decay.drift, decay.spreadRatio, Int(decay.ageSeconds / 60)),
                    details: [
                        "signal_id": .string(id), "decay": .number(decay.factor, isInteger: false),
                        "drift": .number(decay.drift, isInteger: false),
                        "spread_ratio": .number(decay.spreadRatio, isInteger: false),
                    ]))
            {
                alerts.append(alert)
            }
        }
        return alerts
    }

    /// Whether a watched signal has been marked stale.
    public func isStale(_ signalID: String) -> Bool? { liveSignals[signalID]?.stale }
}

extension CitadelEngine {
    /// The state of one symbol for `GET /citadel/{symbol}` and the `zones` query: zones (strongest
    /// first), recent sweeps, spread and volatility. Nil when the symbol has no data.
    public func snapshot(symbol: String, at time: Double) -> JSONValue? {
        guard let market = markets[symbol] else { return nil }
        let map = maps[symbol]
        let zones: [JSONValue] = (map?.currentZones(at: time) ?? []).map { zone, strength in
            .object([
                "kind": .string(zone.kind.rawValue), "price": .number(zone.price, isInteger: false),
                "strength": .number((strength * 10).rounded() / 10, isInteger: false),
                "institutional": .bool(strength >= settings.institutionalStrength),
                "touches": .number(Double(zone.touches), isInteger: true),
                "formed_at": .number(zone.formedAt, isInteger: false),
                "updated_at": .number(zone.updatedAt, isInteger: false),
                "distance_pips": .number(
                    market.bid > 0 ? ((zone.price - market.mid) / market.pip * 10).rounded() / 10 : 0,
                    isInteger: false),
            ])
        }
        let sweeps: [JSONValue] = (map?.recentSweeps(at: time, window: settings.sweepRetention) ?? []).map { sweep in
            .object([
                "kind": .string(sweep.kind), "zone_price": .number(sweep.zonePrice, isInteger: false),
                "zone_kind": .string(sweep.zoneKind.rawValue),
                "zone_strength": .number(sweep.zoneStrength, isInteger: false),
                "depth_pips": .number((sweep.depthPips * 10).rounded() / 10, isInteger: false),
                "at": .number(sweep.at, isInteger: false), "reversal": .string(sweep.reversal.rawValue),
            ])
        }
        let spread = market.spreadStats(at: time, window: settings.spreadWindow)
        let atr = market.atr()
        return .object([
            "symbol": .string(symbol), "timestamp": .number(time, isInteger: false),
            "bid": .number(market.bid, isInteger: false), "ask": .number(market.ask, isInteger: false),
            "pip": .number(market.pip, isInteger: false),
            "last_tick_at": .number(market.lastTickAt, isInteger: false),
            "bars": .number(Double(market.bars.count), isInteger: true),
            "bar_source": .string(market.feedBars ? "ohlc" : "ticks"),
            "other_timeframes": .object(market.otherBars.mapValues { .number(Double($0.count), isInteger: true) }),
            "zones": .array(zones), "sweeps": .array(sweeps),
            "spread": .object([
                "current_pips": .number(spread.current, isInteger: false),
                "median_pips": .number(spread.median, isInteger: false),
                "p90_pips": .number(spread.p90, isInteger: false), "p99_pips": .number(spread.p99, isInteger: false),
                "samples": .number(Double(spread.samples), isInteger: true),
            ]),
            "volatility": .object([
                "atr_pips": atr.map { .number($0 / market.pip, isInteger: false) } ?? .null,
                "ratio": .number(market.volatilityRatio(), isInteger: false),
            ]),
        ])
    }
}
