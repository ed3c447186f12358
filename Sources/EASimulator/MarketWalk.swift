import BittenCore

/// A shared random-walk market: every EA of a fleet sees the same prices.
struct MarketWalk: Sendable {
    struct Instrument: Sendable {
        var mid: Double
        var point: Double
        var spreadPoints: Double
        var digits: Int
        var contractSize: Double
    }

    private(set) var instruments: [String: Instrument]
    private var rng = SplitMix64(seed: 0x5EED_B177E4)

    init(symbols: [String]) {
        var instruments: [String: Instrument] = [:]
        for symbol in symbols {
            instruments[symbol] =
                MarketWalk.defaults[symbol]
                ?? Instrument(mid: 1.0, point: 0.00001, spreadPoints: 15, digits: 5, contractSize: 100_000)
        }
        self.instruments = instruments
    }

    static let defaults: [String: Instrument] = [
        "EURUSD": .init(mid: 1.08520, point: 0.00001, spreadPoints: 13, digits: 5, contractSize: 100_000),
        "GBPUSD": .init(mid: 1.26830, point: 0.00001, spreadPoints: 16, digits: 5, contractSize: 100_000),
        "USDJPY": .init(mid: 151.240, point: 0.001, spreadPoints: 14, digits: 3, contractSize: 100_000),
        "USDCAD": .init(mid: 1.36210, point: 0.00001, spreadPoints: 18, digits: 5, contractSize: 100_000),
        "AUDUSD": .init(mid: 0.65430, point: 0.00001, spreadPoints: 14, digits: 5, contractSize: 100_000),
        "NZDUSD": .init(mid: 0.59120, point: 0.00001, spreadPoints: 17, digits: 5, contractSize: 100_000),
        "USDCHF": .init(mid: 0.88210, point: 0.00001, spreadPoints: 16, digits: 5, contractSize: 100_000),
        "EURGBP": .init(mid: 0.85560, point: 0.00001, spreadPoints: 15, digits: 5, contractSize: 100_000),
        "EURJPY": .init(mid: 164.130, point: 0.001, spreadPoints: 18, digits: 3, contractSize: 100_000),
        "GBPJPY": .init(mid: 191.820, point: 0.001, spreadPoints: 25, digits: 3, contractSize: 100_000),
        "US30": .init(mid: 44120.0, point: 1, spreadPoints: 3, digits: 0, contractSize: 1),
        "XAUUSD": .init(mid: 2641.40, point: 0.01, spreadPoints: 25, digits: 2, contractSize: 100),
        "BTCUSD": .init(mid: 67250.00, point: 0.01, spreadPoints: 1500, digits: 2, contractSize: 1),
    ]

    /// Moves every price by a small random step.
    mutating func step() {
        for (symbol, var instrument) in instruments {
            let move = (rng.nextUnit() - 0.5) * 6 * instrument.point
            instrument.mid = max(instrument.point * 100, instrument.mid + move)
            instruments[symbol] = instrument
        }
    }

    /// Moves one symbol's mid price (tests).
    mutating func set(_ symbol: String, mid: Double) {
        instruments[symbol]?.mid = mid
    }

    func quote(_ symbol: String) -> (bid: Double, ask: Double, spread: Double)? {
        guard let i = instruments[symbol] else { return nil }
        let half = i.spreadPoints * i.point / 2
        return (i.mid - half, i.mid + half, i.spreadPoints)
    }

    mutating func unit() -> Double { rng.nextUnit() }

    /// Units of `to` for one unit of `from`, through a direct pair or via USD (the simulated broker's
    /// own conversion of profit into the account currency); nil when the walk has no such prices.
    func rate(from: String, to: String) -> Double? {
        if from == to { return 1 }
        if let direct = instruments[from + to] { return direct.mid }
        if let inverse = instruments[to + from] { return 1 / inverse.mid }
        guard from != "USD", to != "USD", let toUSD = rate(from: from, to: "USD"),
            let fromUSD = rate(from: "USD", to: to)
        else {
            return nil
        }
        return toUSD * fromUSD
    }

    /// Profit of a position closed at `close`, in `currency` (the symbol's quote currency converted).
    func profit(symbol: String, buy: Bool, lot: Double, open: Double, close: Double, currency: String) -> Double {
        guard let i = instruments[symbol] else { return 0 }
        let inQuote = (close - open) * (buy ? 1 : -1) * lot * i.contractSize
        let quote = symbol.count == 6 ? String(symbol.suffix(3)) : "USD"
        return inQuote * (rate(from: quote, to: currency) ?? 1)
    }
}
