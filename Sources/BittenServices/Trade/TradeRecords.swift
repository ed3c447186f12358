import BittenCore

/// A user of the signal service: one EA, one tier.
public struct UserRecord: Sendable, Codable, Equatable {
    public var uuid: String
    public var tier: Tier
    public var displayName: String
    /// Replaces the base risk percent for this user (still capped by the tier).
    public var riskOverride: Double?
    public var createdAt: Double

    public init(uuid: String, tier: Tier, displayName: String, riskOverride: Double? = nil, createdAt: Double) {
        self.uuid = uuid
        self.tier = tier
        self.displayName = displayName
        self.riskOverride = riskOverride
        self.createdAt = createdAt
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
    }
}

/// A signal as stored and shown: the validated signal plus its CITADEL score.
public struct SignalRecord: Sendable, Codable, Equatable {
    public var signalID: String
    public var symbol: String
    public var direction: String
    public var entry: Double
    public var stopLoss: Double
    public var takeProfit: Double
    public var confidence: Double?
    public var pattern: String?
    public var source: String
    public var createdAt: Double
    public var expiresAt: Double
    public var receivedAt: Double
    public var protectionScore: Double
    public var riskLevel: String
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
    public var fireID: String
    public var kind: String
    public var state: FireState
    public var signalID: String?
    public var userUUID: String
    public var symbol: String?
    public var direction: String?
    public var entry: Double?
    public var sl: Double?
    public var tp: Double?
    public var lot: Double?
    public var riskPercent: Double?
    public var riskAmount: Double?
    /// The tier the fire was sized for (the user's tier when it was reserved).
    public var tier: String?
    public var citadelMultiplier: Double?
    public var createdAt: Double
    public var sentAt: Double?
    public var deadline: Double?
    public var confirmedAt: Double?
    public var ticket: Int?
    public var fillPrice: Double?
    public var eaMessage: String?
    public var reason: String?
    public var late: Bool
    /// The symbol as the user's broker names it (what the command carried).
    public var brokerSymbol: String?
    /// Value of one tick per lot in the account currency, and the currencies it was converted through
    /// (`JPY>USD>EUR`).
    public var tickValue: Double?
    public var conversion: String?
    /// The EA dropped the stop loss / take profit (on the wrong side of the fill price).
    public var slDropped: Bool?
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
    public var ticket: Int
    public var fireID: String
    public var signalID: String
    public var userUUID: String
    public var account: Int
    public var symbol: String
    public var direction: String
    public var lot: Double
    public var openPrice: Double
    public var sl: Double
    public var tp: Double
    public var openTime: Double
    public var status: String
    public var closePrice: Double?
    public var closedAt: Double?
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
    public var total: Int
    public var wins: Int
    public var losses: Int
    public var breakeven: Int
    public var winRate: Double
    public var grossProfit: Double
    public var grossLoss: Double
    public var net: Double
    /// Gross profit ÷ gross loss; nil while there is profit but no loss yet.
    public var profitFactor: Double?
    public var averageWin: Double
    public var averageLoss: Double
    public var largestWin: Double
    public var largestLoss: Double
    /// Positive: wins in a row now; negative: losses in a row.
    public var currentStreak: Int
    public var bestStreak: Int
    public var worstStreak: Int

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
