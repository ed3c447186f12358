/// The account metrics an EA reports with HELLO and heartbeats.
public struct AccountSnapshot: Sendable, Equatable, Codable {
    /// The account currency.
    public var currency: String
    /// The account balance.
    public var balance: Double
    /// The account equity.
    public var equity: Double
    /// The account leverage.
    public var leverage: Int
    /// The margin in use.
    public var margin: Double?
    /// The free margin.
    public var freeMargin: Double?
    /// The margin level, in percent.
    public var marginLevel: Double?

    /// A snapshot.
    public init(
        currency: String, balance: Double, equity: Double, leverage: Int, margin: Double? = nil,
        freeMargin: Double? = nil, marginLevel: Double? = nil
    ) {
        self.currency = currency
        self.balance = balance
        self.equity = equity
        self.leverage = leverage
        self.margin = margin
        self.freeMargin = freeMargin
        self.marginLevel = marginLevel
    }

    init(reading r: FieldReader, requireMargin: Bool, requireFreeMargin: Bool) throws(WireError) {
        currency = try r.string("currency", maxLength: 8)
        balance = try r.double("balance")
        equity = try r.double("equity")
        leverage = try r.int("leverage", nonNegative: true)
        margin =
            requireMargin
            ? try r.double("margin", nonNegative: true) : try r.optionalDouble("margin", nonNegative: true)
        freeMargin = requireFreeMargin ? try r.double("free_margin") : try r.optionalDouble("free_margin")
        marginLevel =
            requireFreeMargin
            ? try r.double("margin_level")
            : try r.optionalDouble("margin_level")
    }
}
