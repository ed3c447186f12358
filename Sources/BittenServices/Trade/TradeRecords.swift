import BittenCore

/// A user of the signal service: one EA, one tier.
public struct UserRecord: Sendable, Codable, Equatable {
    /// The user's UUID (the EA's `target_uuid`).
    public var uuid: String
    /// The user's tier.
    public var tier: Tier
    /// The name shown for the user.
    public var displayName: String
    /// Replaces the base risk percent for this user (still capped by the tier).
    public var riskOverride: Double?
    /// When it was made (epoch seconds).
    public var createdAt: Double
    /// The user's own trading state as stored (nil: never set, active). Changed only through
    /// `FireDesk.setTrading`: saving a user keeps it.
    public var trading: TradingControl?
    /// The user's own risk limits (over the tier's defaults); nil for none.
    public var limits: RiskLimits?
    /// The user's figures for the limits as stored (read only: the trade engine keeps them).
    public var risk: RiskDay?

    /// A user.
    public init(
        uuid: String, tier: Tier, displayName: String, riskOverride: Double? = nil, createdAt: Double,
        trading: TradingControl? = nil, limits: RiskLimits? = nil
    ) {
        self.limits = limits
        self.uuid = uuid
        self.tier = tier
        self.displayName = displayName
        self.riskOverride = riskOverride
        self.createdAt = createdAt
        self.trading = trading
    }

    var redisFields: [String] {
        [
            "uuid", uuid, "tier", tier.rawValue, "display_name", displayName, "risk_override",
            riskOverride.flatMap { PlainDecimal.format($0, maxFractionDigits: 4) } ?? "", "created",
            PlainDecimal.format(createdAt, maxFractionDigits: 3) ?? "0",
        ]
    }

    init?(hash: [String: String]) {
        guard let uuid = hash["uuid"], let tierName = hash["tier"], let tier = Tier(name: tierName) else { return nil }
        self.uuid = uuid
        self.tier = tier
        displayName = hash["display_name"] ?? uuid
        riskOverride = hash["risk_override"].flatMap(Double.init)
        createdAt = hash["created"].flatMap(Double.init) ?? 0
        trading = hash["trading_state"] == nil ? nil : TradingControl(userHash: hash)
        let limits = RiskLimits(userHash: hash)
        self.limits = limits.isEmpty ? nil : limits
        risk = hash["risk_day"] == nil ? nil : RiskDay(userHash: hash)
    }
}

/// A signal as stored and shown: the validated signal plus its CITADEL score.
public struct SignalRecord: Sendable, Codable, Equatable {
    /// The signal's id.
    public var signalID: String
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// `BUY` or `SELL`.
    public var direction: String
    /// The entry price.
    public var entry: Double
    /// The stop loss price (0: none).
    public var stopLoss: Double
    /// The take profit price (0: none).
    public var takeProfit: Double
    /// The signal engine's confidence, 0–100.
    public var confidence: Double?
    /// The pattern the signal engine saw.
    public var pattern: String?
    /// Where it came from.
    public var source: String
    /// When it was made (epoch seconds).
    public var createdAt: Double
    /// After this (epoch seconds) it can no longer be fired.
    public var expiresAt: Double
    /// When Bitten received it (epoch seconds).
    public var receivedAt: Double
    /// CITADEL's protection score, 1–10.
    public var protectionScore: Double
    /// The risk level (`FORTRESS` … `DANGER`).
    public var riskLevel: String
    /// The lot multiplier of the signal's CITADEL score.
    public var citadelMultiplier: Double

    init(_ signal: Signal, score: ProtectionAssessment, receivedAt: Double) {
        signalID = signal.signalID
        symbol = signal.symbol
        direction = signal.direction.rawValue
        entry = signal.entry
        stopLoss = signal.stopLoss
        takeProfit = signal.takeProfit
        confidence = signal.confidence
        pattern = signal.pattern
        source = signal.source
        createdAt = signal.createdAt
        expiresAt = signal.expiresAt
        self.receivedAt = receivedAt
        protectionScore = score.score
        riskLevel = score.level
        citadelMultiplier = score.multiplier
    }

    var redisFields: [String] {
        func n(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 8) ?? "0" }
        return [
            "signal_id", signalID, "symbol", symbol, "direction", direction, "entry", n(entry), "sl", n(stopLoss),
            "tp", n(takeProfit), "confidence", confidence.map(n) ?? "", "pattern", pattern ?? "", "source", source,
            "created_at", n(createdAt), "expires_at", n(expiresAt), "received_at", n(receivedAt),
            "protection_score", n(protectionScore), "risk_level", riskLevel, "citadel_multiplier", n(citadelMultiplier),
        ]
    }

    init?(hash: [String: String]) {
        guard let id = hash["signal_id"], let symbol = hash["symbol"], let direction = hash["direction"],
            let entry = hash["entry"].flatMap(Double.init), let sl = hash["sl"].flatMap(Double.init),
            let tp = hash["tp"].flatMap(Double.init), let expires = hash["expires_at"].flatMap(Double.init)
        else { return nil }
        signalID = id
        self.symbol = symbol
        self.direction = direction
        self.entry = entry
        stopLoss = sl
        takeProfit = tp
        confidence = hash["confidence"].flatMap(Double.init)
        pattern = hash["pattern"].flatMap { $0.isEmpty ? nil : $0 }
        source = hash["source"] ?? ""
        createdAt = hash["created_at"].flatMap(Double.init) ?? 0
        expiresAt = expires
        receivedAt = hash["received_at"].flatMap(Double.init) ?? 0
        protectionScore = hash["protection_score"].flatMap(Double.init) ?? 5
        riskLevel = hash["risk_level"] ?? "CAUTION"
        citadelMultiplier = hash["citadel_multiplier"].flatMap(Double.init) ?? 1
    }
}

/// A fire (or close request) record, `fire:{fire_id}` / `close:{ticket}`.
public struct FireRecord: Sendable, Codable, Equatable {
    /// The fire's id (`F-YYYYMMDD-SS-NNNNNN`).
    public var fireID: String
    /// What kind it is.
    public var kind: String
    /// Where it stands in its lifecycle.
    public var state: FireState
    /// The signal's id.
    public var signalID: String?
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String?
    /// `BUY` or `SELL`.
    public var direction: String?
    /// The entry price.
    public var entry: Double?
    /// The stop loss price (0: none).
    public var sl: Double?
    /// The take profit price (0: none).
    public var tp: Double?
    /// The volume in lots.
    public var lot: Double?
    /// The risk per trade, percent of the balance.
    public var riskPercent: Double?
    /// The risk per trade, in the account currency.
    public var riskAmount: Double?
    /// The tier the fire was sized for (the user's tier when it was reserved).
    public var tier: String?
    /// The lot multiplier of the signal's CITADEL score.
    public var citadelMultiplier: Double?
    /// When it was made (epoch seconds).
    public var createdAt: Double
    /// When the command went to the EA (epoch seconds).
    public var sentAt: Double?
    /// When the answer is due (epoch seconds).
    public var deadline: Double?
    /// When the EA's answer arrived (epoch seconds).
    public var confirmedAt: Double?
    /// The broker's ticket of the position.
    public var ticket: Int?
    /// The price the broker filled at.
    public var fillPrice: Double?
    /// The EA's message with its answer.
    public var eaMessage: String?
    /// Why.
    public var reason: String?
    /// The answer came after the deadline.
    public var late: Bool
    /// The symbol as the user's broker names it (what the command carried).
    public var brokerSymbol: String?
    /// Value of one tick per lot in the account currency, and the currencies it was converted through
    /// (`JPY>USD>EUR`).
    public var tickValue: Double?
    /// The currencies the tick value was converted through (`JPY>USD>EUR`).
    public var conversion: String?
    /// The EA dropped the stop loss / take profit (on the wrong side of the fill price).
    public var slDropped: Bool?
    /// The EA dropped the take profit (on the wrong side of the fill).
    public var tpDropped: Bool?
    /// True when this answer repeats an earlier fire of the same signal by the same user.
    public var duplicate: Bool = false

    init?(hash: [String: String]) {
        guard let stateText = hash["state"], let state = FireState(rawValue: stateText), let uuid = hash["user_uuid"]
        else {
            return nil
        }
        func d(_ key: String) -> Double? { hash[key].flatMap { $0.isEmpty ? nil : Double($0) } }
        func s(_ key: String) -> String? { hash[key].flatMap { $0.isEmpty ? nil : $0 } }
        fireID = hash["fire_id"] ?? hash["ticket"] ?? ""
        kind = hash["kind"] ?? "fire"
        self.state = state
        signalID = s("signal_id")
        userUUID = uuid
        symbol = s("symbol")
        direction = s("direction")
        entry = d("entry")
        sl = d("sl")
        tp = d("tp")
        lot = d("lot")
        riskPercent = d("risk_percent")
        riskAmount = d("risk_amount")
        tier = s("tier")
        citadelMultiplier = d("citadel_multiplier")
        createdAt = d("created_at") ?? 0
        sentAt = d("sent_at")
        deadline = d("deadline")
        confirmedAt = d("confirmed_at")
        ticket = hash["ticket"].flatMap { Int($0) }
        fillPrice = d("fill_price")
        eaMessage = s("ea_message")
        reason = s("reason")
        late = hash["late"] == "1"
        brokerSymbol = s("broker_symbol")
        tickValue = d("tick_value")
        conversion = s("conversion")
        slDropped = hash["sl_dropped"].map { $0 == "1" }
        tpDropped = hash["tp_dropped"].map { $0 == "1" }
    }
}

/// An open or closed position, `position:{ticket}`, with its P&L.
public struct PositionRecord: Sendable, Encodable, Equatable {
    /// The broker's ticket of the position.
    public var ticket: Int
    /// The fire's id (`F-YYYYMMDD-SS-NNNNNN`).
    public var fireID: String
    /// The signal's id.
    public var signalID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The MetaTrader account number.
    public var account: Int
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// `BUY` or `SELL`.
    public var direction: String
    /// The volume in lots.
    public var lot: Double
    /// The price it opened at.
    public var openPrice: Double
    /// The stop loss price (0: none).
    public var sl: Double
    /// The take profit price (0: none).
    public var tp: Double
    /// When it opened (epoch seconds).
    public var openTime: Double
    /// `open` or `closed`.
    public var status: String
    /// The price it closed at, valued (the EA v2.05 always reports 0; `closePriceSource` says where it came from).
    public var closePrice: Double?
    /// When it closed (epoch seconds).
    public var closedAt: Double?
    /// How long it was open, seconds.
    public var duration: Double?
    /// Realized P&L (closed) in the account currency.
    public var profit: Double?
    /// Unrealized P&L at the latest quote (open).
    public var unrealizedProfit: Double?
    /// The quote used for the unrealized P&L.
    public var currentPrice: Double?
    /// The symbol as the user's broker names it (what the fire carried).
    public var brokerSymbol: String?
    /// Whether the EA dropped the stop loss / take profit (on the wrong side of the fill price).
    public var slDropped: Bool
    /// The EA dropped the take profit (on the wrong side of the fill).
    public var tpDropped: Bool
    /// Where the close price came from: `ea`, `market` (the quotes when the EA's answer came),
    /// `inferred` (the stop loss or take profit the market crossed), `balance` (derived from the
    /// balance difference), `unvalued` (none: left out of the statistics).
    public var closePriceSource: String?
    /// Why it closed: `requested`, `close_all`, `stop_loss`, `take_profit`, `closed_at_broker`.
    public var closeReason: String?
    /// Where the realized P&L came from: `balance` (the account's balance difference) or `price`.
    public var profitSource: String?
    var tickSize: Double
    var tickValue: Double

    init?(hash: [String: String]) {
        func d(_ key: String) -> Double? { hash[key].flatMap { $0.isEmpty ? nil : Double($0) } }
        guard let ticket = hash["ticket"].flatMap({ Int($0) }), let uuid = hash["user_uuid"],
            let symbol = hash["symbol"],
            let direction = hash["direction"], let lot = d("lot"), let open = d("open_price")
        else { return nil }
        self.ticket = ticket
        fireID = hash["fire_id"] ?? ""
        signalID = hash["signal_id"] ?? ""
        userUUID = uuid
        account = hash["account"].flatMap { Int($0) } ?? 0
        self.symbol = symbol
        self.direction = direction
        self.lot = lot
        openPrice = open
        sl = d("sl") ?? 0
        tp = d("tp") ?? 0
        openTime = d("open_time") ?? 0
        status = hash["status"] ?? "open"
        closePrice = d("close_price")
        closedAt = d("closed_at")
        duration = d("duration")
        profit = d("profit")
        brokerSymbol = hash["broker_symbol"].flatMap { $0.isEmpty ? nil : $0 }
        slDropped = hash["sl_dropped"] == "1"
        tpDropped = hash["tp_dropped"] == "1"
        closePriceSource = hash["close_price_source"].flatMap { $0.isEmpty ? nil : $0 }
        closeReason = hash["close_reason"].flatMap { $0.isEmpty ? nil : $0 }
        profitSource = hash["profit_source"].flatMap { $0.isEmpty ? nil : $0 }
        tickSize = d("tick_size") ?? 0.00001
        tickValue = d("tick_value") ?? 1
    }

    enum CodingKeys: String, CodingKey {
        case ticket, fireID, signalID, userUUID, account, symbol, direction, lot, openPrice, sl, tp, openTime, status
        case closePrice, closedAt, duration, profit, unrealizedProfit, currentPrice
        case brokerSymbol, slDropped, tpDropped, closePriceSource, closeReason, profitSource
    }

    /// P&L if closed at `quote` (a BUY closes at the bid, a SELL at the ask).
    public func profit(bid: Double, ask: Double) -> Double {
        let terms = CloseValuation.Position(
            isBuy: direction == "BUY", openPrice: openPrice, lot: lot, tickSize: tickSize, tickValue: tickValue)
        return Double(terms.unrealizedCents(bid: bid, ask: ask)) / 100
    }
}

/// Win-rate statistics, as kept in `global_trade_stats`, `symbol_stats:*`, `account_stats_trades:*`
/// and `user_stats:*`.
public struct TradeStats: Sendable, Codable, Equatable {
    /// Closed trades counted.
    public var total: Int
    /// Trades closed with a profit.
    public var wins: Int
    /// Trades closed with a loss.
    public var losses: Int
    /// Trades closed at zero.
    public var breakeven: Int
    /// Wins as a share of wins and losses, in percent.
    public var winRate: Double
    /// The sum of the wins.
    public var grossProfit: Double
    /// The sum of the losses (positive).
    public var grossLoss: Double
    /// Gross profit minus gross loss.
    public var net: Double
    /// Gross profit ÷ gross loss; nil while there is profit but no loss yet.
    public var profitFactor: Double?
    /// The average win.
    public var averageWin: Double
    /// The average loss (positive).
    public var averageLoss: Double
    /// The largest win.
    public var largestWin: Double
    /// The largest loss (positive).
    public var largestLoss: Double
    /// Positive: wins in a row now; negative: losses in a row.
    public var currentStreak: Int
    /// The longest run of wins.
    public var bestStreak: Int
    /// The longest run of losses.
    public var worstStreak: Int

    /// Statistics from their stored hash.
    public init(hash: [String: String]) {
        func i(_ key: String) -> Int { hash[key].flatMap { Int($0) } ?? 0 }
        func d(_ key: String) -> Double { hash[key].flatMap { Double($0) } ?? 0 }
        total = i("total")
        wins = i("wins")
        losses = i("losses")
        breakeven = i("breakeven")
        winRate = d("win_rate")
        grossProfit = d("gross_profit")
        grossLoss = d("gross_loss")
        net = d("net")
        profitFactor = hash["profit_factor"].flatMap { Double($0) }
        if total == 0 { profitFactor = 0 }
        averageWin = d("average_win")
        averageLoss = d("average_loss")
        largestWin = d("largest_win")
        largestLoss = d("largest_loss")
        currentStreak = i("current_streak")
        bestStreak = i("best_streak")
        worstStreak = i("worst_streak")
    }
}
