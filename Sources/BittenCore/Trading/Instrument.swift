/// How a symbol trades: price increments, their value, and the lot limits of the broker.
public struct Instrument: Sendable, Equatable, Codable {
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// Smallest price change.
    public var tickSize: Double
    /// Units of the base asset in one lot.
    public var contractSize: Double
    /// One pip in price (0.0001 for most FX, 0.01 for JPY pairs, 0.1 for gold, 1 for BTC).
    public var pipSize: Double
    /// Price digits.
    public var digits: Int
    /// The smallest lot.
    public var minLot: Double
    /// The largest lot.
    public var maxLot: Double
    /// The lot step.
    public var lotStep: Double
    /// The currency profit is made in (the quote currency).
    public var profitCurrency: String
    /// A fixed value of one tick per lot in the account currency, when configured; otherwise it is
    /// derived from the contract size and the profit currency.
    public var tickValue: Double?

    /// An instrument.
    public init(
        symbol: String, tickSize: Double, contractSize: Double, pipSize: Double, digits: Int,
        minLot: Double = 0.01, maxLot: Double = 100, lotStep: Double = 0.01, profitCurrency: String,
        tickValue: Double? = nil
    ) {
        self.symbol = symbol
        self.tickSize = tickSize
        self.contractSize = contractSize
        self.pipSize = pipSize
        self.digits = digits
        self.minLot = minLot
        self.maxLot = maxLot
        self.lotStep = lotStep
        self.profitCurrency = profitCurrency
        self.tickValue = tickValue
    }

    /// The value of one tick for one lot in `accountCurrency`, converted from the profit currency
    /// through `converter` (any chain of live quotes), with the conversion used; nil when no chain exists.
    public func tickValue(accountCurrency: String, converter: CurrencyConverter) -> (
        value: Double, conversion: CurrencyConverter.Conversion
    )? {
        if let tickValue { return (tickValue, CurrencyConverter.Conversion(rate: 1, path: [accountCurrency])) }
        let inProfitCurrency = tickSize * contractSize
        guard let conversion = converter.convert(from: profitCurrency, to: accountCurrency) else { return nil }
        return (inProfitCurrency * conversion.rate, conversion)
    }
}

/// The symbols Bitten can size trades for.
public struct InstrumentTable: Sendable, Equatable {
    /// The instruments by symbol.
    public var instruments: [String: Instrument]

    /// A table of these instruments by symbol.
    public init(_ instruments: [Instrument]) {
        self.instruments = Dictionary(instruments.map { ($0.symbol, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// The instrument for `symbol`, if known.
    public subscript(_ symbol: String) -> Instrument? { instruments[symbol] }

    static func fx(_ symbol: String) -> Instrument {
        let jpy = symbol.hasSuffix("JPY")
        return Instrument(
            symbol: symbol, tickSize: jpy ? 0.001 : 0.00001, contractSize: 100_000,
            pipSize: jpy ? 0.01 : 0.0001, digits: jpy ? 3 : 5, profitCurrency: String(symbol.suffix(3)))
    }

    /// The majors, common crosses, JPY pairs, gold and bitcoin with the usual retail-broker specs.
    public static let standard = InstrumentTable(
        [
            "EURUSD", "GBPUSD", "AUDUSD", "NZDUSD", "USDCAD", "USDCHF", "EURGBP", "EURAUD", "GBPCHF", "EURCHF",
            "USDJPY", "EURJPY", "GBPJPY", "AUDJPY", "CHFJPY",
        ].map(fx) + [
            Instrument(
                symbol: "XAUUSD", tickSize: 0.01, contractSize: 100, pipSize: 0.1, digits: 2,
                profitCurrency: "USD"),
            Instrument(
                symbol: "BTCUSD", tickSize: 0.01, contractSize: 1, pipSize: 1, digits: 2, maxLot: 10,
                profitCurrency: "USD"),
        ])
}
