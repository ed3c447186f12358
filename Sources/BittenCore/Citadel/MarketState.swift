/// A fixed-capacity ring of values, oldest first.
public struct Ring<Element: Sendable>: Sendable {
    private var storage: [Element] = []
    private var head = 0
    /// The most it holds.
    public let capacity: Int

    /// A ring of at most `capacity` elements.
    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// How many.
    public var count: Int { storage.count }
    /// Whether it holds nothing.
    public var isEmpty: Bool { storage.isEmpty }

    /// Adds an element, dropping the oldest when full.
    public mutating func append(_ element: Element) {
        if storage.count < capacity {
            storage.append(element)
        } else {
            storage[head] = element
            head = (head + 1) % capacity
        }
    }

    /// The `index`-th element, oldest first.
    public subscript(index: Int) -> Element { storage[(head + index) % storage.count] }

    /// The newest element.
    public var last: Element? { storage.isEmpty ? nil : self[storage.count - 1] }

    /// Every element, oldest first.
    public var elements: [Element] { (0..<storage.count).map { self[$0] } }
}

/// One bar of the analysis timeframe. `volume` is the feed's volume, or the tick count when the
/// feed has none.
public struct Bar: Sendable, Equatable, Codable {
    /// Epoch seconds of the bar's open.
    public var time: Double
    /// The bar's open.
    public var open: Double
    /// The bar's high.
    public var high: Double
    /// The bar's low.
    public var low: Double
    /// The bar's close.
    public var close: Double
    /// The tick volume.
    public var volume: Double

    /// A bar.
    public init(time: Double, open: Double, high: Double, low: Double, close: Double, volume: Double = 0) {
        self.time = time
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
    }
}

/// Spread statistics in pips over the recent window.
public struct SpreadStats: Sendable, Equatable, Codable {
    /// The latest spread.
    public var current: Double
    /// The median.
    public var median: Double
    /// The 90th percentile.
    public var p90: Double
    /// The 99th percentile.
    public var p99: Double
    /// Samples in the window.
    public var samples: Int
    /// current / median (1 when unknown).
    public var ratio: Double { median > 0 ? current / median : 1 }
}

/// The market of one symbol: latest quote, a bounded tick window, spread samples over the last hour,
/// analysis bars (from the EA's OHLC or built from ticks), volume and ATR-style volatility. Every
/// update is O(1) amortised; statistics are computed when asked.
public struct SymbolMarket: Sendable {
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public let symbol: String
    /// The symbol's pip size.
    public private(set) var pip: Double
    /// The bid.
    public private(set) var bid = 0.0
    /// The ask.
    public private(set) var ask = 0.0
    /// When the last tick came (epoch seconds).
    public private(set) var lastTickAt = 0.0
    /// The recent ticks, oldest first.
    public private(set) var ticks: Ring<TickSample>
    private var spreads: Ring<(time: Double, pips: Double)>
    private var lastSpreadSecond = -1.0
    /// Median spread (pips) and sample count over the window, refreshed when a sample is added (at
    /// most once a second), so the per-tick spike check does not sort.
    public private(set) var spreadMedian = 0.0
    /// Spread samples taken.
    public private(set) var spreadSampleCount = 0
    private var lastMedianAt = -Double.infinity
    let spreadWindow: Double
    /// The M5 bars, oldest first.
    public private(set) var bars: Ring<Bar>
    /// The bar being built from ticks.
    public private(set) var forming: Bar?
    /// Whether the EA sends bars of the analysis timeframe (then ticks do not build bars).
    public private(set) var feedBars = false
    let barSeconds: Double

    /// One tick as kept in the window.
    public struct TickSample: Sendable, Equatable {
        /// When (epoch seconds).
        public var time: Double
        /// The bid.
        public var bid: Double
        /// The ask.
        public var ask: Double
    }

    /// A symbol's state from its first price.
    public init(symbol: String, price: Double, settings: CitadelSettings, instruments: InstrumentTable = .standard) {
        self.symbol = symbol
        self.pip = pipSize(symbol: symbol, price: price, instruments: instruments)
        self.ticks = Ring(capacity: settings.maxTicks)
        // One spread sample per second: an hour fits.
        self.spreads = Ring(capacity: max(60, Int(settings.spreadWindow)))
        self.bars = Ring(capacity: settings.maxBars)
        self.barSeconds = settings.barSeconds
        self.spreadWindow = settings.spreadWindow
    }

    /// The mid price.
    public var mid: Double { (bid + ask) / 2 }
    /// The spread in pips.
    public var spreadPips: Double { pip > 0 ? (ask - bid) / pip : 0 }

    /// Adds a quote; returns the bar it completed, if any.
    public mutating func addTick(bid: Double, ask: Double, volume: Double, at time: Double) -> Bar? {
        self.bid = bid
        self.ask = ask
        lastTickAt = time
        ticks.append(TickSample(time: time, bid: bid, ask: ask))
        let second = time.rounded(.down)
        if second != lastSpreadSecond {
            // The median of the samples before this one (a spike is compared with what was normal),
            // refreshed every 10 s: sorting an hour of samples per second per symbol is not free.
            if time - lastMedianAt >= 10 || spreadSampleCount < 60 {
                let stats = spreadStats(at: time, window: spreadWindow)
                spreadMedian = stats.median
                spreadSampleCount = stats.samples
                lastMedianAt = time
            }
            spreads.append((time, spreadPips))
            lastSpreadSecond = second
        }
        guard !feedBars else { return nil }
        let mid = (bid + ask) / 2
        let start = (time / barSeconds).rounded(.down) * barSeconds
        let count = max(volume, 1)
        guard var bar = forming else {
            forming = Bar(time: start, open: mid, high: mid, low: mid, close: mid, volume: count)
            return nil
        }
        if start > bar.time {
            bars.append(bar)
            forming = Bar(time: start, open: mid, high: mid, low: mid, close: mid, volume: count)
            return bar
        }
        bar.high = max(bar.high, mid)
        bar.low = min(bar.low, mid)
        bar.close = mid
        bar.volume += count
        forming = bar
        return nil
    }

    /// Bars of the other timeframes the EA sends (by timeframe name), 200 each, for display.
    public private(set) var otherBars: [String: Ring<Bar>] = [:]

    /// Keeps a bar of a timeframe that is not the analysis one (repeats ignored).
    public mutating func addOtherBar(_ bar: Bar, timeframe: String) {
        if let last = otherBars[timeframe]?.last, bar.time <= last.time { return }
        otherBars[timeframe, default: Ring(capacity: 200)].append(bar)
    }

    /// Adds a completed bar from the feed; returns it when it is new (repeats and older bars are ignored).
    public mutating func addFeedBar(_ bar: Bar) -> Bar? {
        if !feedBars {
            feedBars = true
            forming = nil
        }
        if let last = bars.last, bar.time <= last.time { return nil }
        bars.append(bar)
        return bar
    }

    /// Spread statistics over the last `window` seconds ending at `time`.
    public func spreadStats(at time: Double, window: Double) -> SpreadStats {
        var values: [Double] = []
        values.reserveCapacity(spreads.count)
        for index in 0..<spreads.count where time - spreads[index].time <= window { values.append(spreads[index].pips) }
        values.sort()
        func percentile(_ p: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            return values[min(values.count - 1, Int((Double(values.count - 1) * p).rounded()))]
        }
        return SpreadStats(
            current: spreadPips, median: percentile(0.5), p90: percentile(0.9), p99: percentile(0.99),
            samples: values.count)
    }

    /// Average true range over the last `period` completed bars (nil with fewer than two bars).
    public func atr(period: Int = 14) -> Double? {
        guard bars.count >= 2 else { return nil }
        let first = max(1, bars.count - period)
        var total = 0.0
        for index in first..<bars.count {
            let bar = bars[index]
            let previousClose = bars[index - 1].close
            total += max(bar.high - bar.low, abs(bar.high - previousClose), abs(bar.low - previousClose))
        }
        return total / Double(bars.count - first)
    }

    /// ATR over the last `period` bars relative to the ATR over up to `longPeriod` bars (1 when unknown).
    public func volatilityRatio(period: Int = 14, longPeriod: Int = 100) -> Double {
        guard let short = atr(period: period), let long = atr(period: longPeriod), long > 0 else { return 1 }
        return short / long
    }

    /// Mean volume over the last `period` bars before the newest one.
    public func averageVolume(period: Int = 50) -> Double? {
        guard bars.count >= 3 else { return nil }
        let end = bars.count - 1
        let start = max(0, end - period)
        var total = 0.0
        for index in start..<end { total += bars[index].volume }
        let average = total / Double(end - start)
        return average > 0 ? average : nil
    }

    /// The newest bar's volume relative to the average (1 when unknown).
    public var volumeRatio: Double {
        guard let average = averageVolume(), let last = bars.last else { return 1 }
        return last.volume / average
    }
}
