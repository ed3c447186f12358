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
            instruments[symbol] = MarketWalk.defaults[symbol]
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

    func quote(_ symbol: String) -> (bid: Double, ask: Double, spread: Double)? {
        guard let i = instruments[symbol] else { return nil }
        let half = i.spreadPoints * i.point / 2
        return (i.mid - half, i.mid + half, i.spreadPoints)
    }

    mutating func unit() -> Double { rng.nextUnit() }
}
