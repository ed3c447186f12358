import Foundation

/// A user as a trade shard knows it: what decides a fire's slots and size.
public struct ShardUser: Sendable, Equatable {
    /// The user's UUID (the EA's `target_uuid`).
    public var uuid: String
    /// The user's tier.
    public var tier: Tier
    /// The stored `risk_override` text ("" for none): it picks the sizing variant.
    public var riskOverride: String
    /// The user's trading state (an operator's or a risk limit's).
    public var trading: TradingControl
    /// The user's own risk limits (over the tier's defaults).
    public var limits: RiskLimits
    /// The user's figures for the limits (the trading day, the losing streak).
    public var risk: RiskDay

    /// A user as the shard holds it.
    public init(
        uuid: String, tier: Tier, riskOverride: String, trading: TradingControl = .active, limits: RiskLimits = .none,
        risk: RiskDay = RiskDay()
    ) {
        self.uuid = uuid
        self.tier = tier
        self.riskOverride = riskOverride
        self.trading = trading
        self.limits = limits
        self.risk = risk
    }

    /// How a sizing variant is found for this user: the tier name and the override text.
    public var variantKey: String { tier.rawValue + "|" + riskOverride }
}

/// One way a fire may be sized (computed before the reservation, for every tier the user may have).
public struct SizingChoice: Sendable, Equatable {
    /// `TIER|override`, as `ShardUser.variantKey`.
    public var key: String
    /// The user's slots.
    public var slots: Int
    /// The volume in lots.
    public var lot: Double
    /// The size's record fields (lot, risk_percent, risk_amount, tier).
    public var fields: [String]
    /// Why this variant could not be sized.
    public var error: String?

    /// A reservation: the marker key, the slots, the lot and the fields to store.
    public init(key: String, slots: Int, lot: Double, fields: [String], error: String? = nil) {
        self.key = key
        self.slots = slots
        self.lot = lot
        self.fields = fields
        self.error = error
    }
}

/// What a reservation came to.
public enum ShardReservation: Sendable, Equatable {
    /// Reserved as `fireID` with the variant `key`.
    case reserved(fireID: String, key: String)
    case duplicate(fireID: String)
    case noSlot(used: Int, key: String)
    case noUser
    /// None of the variants fits the user (tier, override text): size for it and ask again.
    case resize(tier: Tier, override: String)
    case sizingFailed(String)
    /// The user's trading state or a risk limit refuses the fire.
    case refused(FireRefusal)
}

/// The EA's answer to a fire (a `confirmation` on 5558).
public struct FireAnswer: Sendable, Equatable {
    /// The fire's id (`F-YYYYMMDD-SS-NNNNNN`).
    public var fireID: String
    /// True when the EA reports success.
    public var success: Bool
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The broker's ticket of the position.
    public var ticket: Int
    /// The price.
    public var price: Double
    /// The volume in lots.
    public var lot: Double
    /// What happened, for a person.
    public var message: String
    /// The MetaTrader account number.
    public var account: Int
    /// The account balance.
    public var balance: Double?
    /// When (epoch seconds).
    public var at: Double

    /// A fire's answer.
    public init(
        fireID: String, success: Bool, userUUID: String, ticket: Int, price: Double, lot: Double, message: String,
        account: Int, balance: Double?, at: Double
    ) {
        self.fireID = fireID
        self.success = success
        self.userUUID = userUUID
        self.ticket = ticket
        self.price = price
        self.lot = lot
        self.message = message
        self.account = account
        self.balance = balance
        self.at = at
    }
}

/// The EA's answer to `close_ticket` or `close_all` (a `close_confirmation`).
public struct CloseAnswer: Sendable, Equatable {
    /// The broker's ticket of the position.
    public var ticket: Int
    /// True when the EA reports success.
    public var success: Bool
    /// The price it closed at (the EA v2.05 always reports 0: see the close's valuation).
    public var closePrice: Double
    /// What happened, for a person.
    public var message: String
    /// The MetaTrader account number.
    public var account: Int
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// `close_ticket` or `close_all` (the EA v2.05 answers `close_all` once, with ticket 0).
    public var commandType: String
    /// The account balance.
    public var balance: Double?
    /// The market quotes that came with the answer (`SYMBOL:bid:ask:source;…`).
    public var quotes: String
    /// When (epoch seconds).
    public var at: Double

    /// An answer to a close.
    public init(
        ticket: Int, success: Bool, closePrice: Double, message: String, account: Int, userUUID: String,
        commandType: String, balance: Double?, quotes: String, at: Double
    ) {
        self.ticket = ticket
        self.success = success
        self.closePrice = closePrice
        self.message = message
        self.account = account
        self.userUUID = userUUID
        self.commandType = commandType
        self.balance = balance
        self.quotes = quotes
        self.at = at
    }
}

/// A request to close a position, from its reservation to its answer (or timeout).
public struct CloseRequest: Sendable, Equatable {
    /// The broker's ticket of the position.
    public var ticket: Int
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// `close_ticket` or `close_all`.
    public var command: String
    /// Where it stands in its lifecycle.
    public var state: FireState
    /// When the answer is due (epoch seconds).
    public var deadline: Double?

    /// A close request sent for `ticket`.
    public init(ticket: Int, userUUID: String, command: String, state: FireState, deadline: Double?) {
        self.ticket = ticket
        self.userUUID = userUUID
        self.command = command
        self.state = state
        self.deadline = deadline
    }
}

/// What a shard's owner must store, in the order it happened. Each change says what is now true; the
/// store decides how it is written (`TradeChange`s of one commit go to Redis in one atomic step).
public enum TradeChange: Sendable, Equatable {
    case user(ShardUser, fields: [String])
    /// A user's figures for the risk limits changed (a fire counted, a close in the streak, a new day): only they
    /// are written, not the whole user.
    case userRisk(uuid: String, RiskDay)
    /// A new fire (`pending`, holding a slot) and its idempotency marker; `fields` are the record's others.
    case fireCreated(FireInFlight, signalExpiresAt: Double, fields: [String])
    /// A fire moved to `state`, with these record fields set.
    case fireMoved(id: String, state: FireState, fields: [String])
    /// A settled or long timed-out fire left memory (its record stays).
    case fireForgotten(id: String)
    /// The marker of (signal, user) is gone: that user may fire the signal again.
    case markerForgotten(signalID: String, user: String)
    /// A fill opened a position. `requested` holds the stop and target asked for when the EA dropped one.
    case positionOpened(OpenPosition, signalID: String, brokerSymbol: String, dropped: DroppedStops?)
    case positionClosed(ClosedTrade)
    /// A statistics record as it now is.
    case statistics(key: String, TradeStatistics)
    case balance(account: Int, balance: Double, closesSince: Int)
    case closeRequest(CloseRequest, fields: [String])
    /// A user's slots in use (for readers; the shard counts them itself).
    case slots(user: String, used: Int)
    /// An answer that matches nothing known (kept for the operator, once per stream entry).
    case orphan(streamID: String, fields: [String: String])
    /// A line for an operator's list (`confirmations:untrusted`, …), newest first, bounded.
    case note(list: String, value: String)
    /// A fire or close event for subscribers (`fire.filled`, `position.closed`, `close.rejected`, …).
    case event(String, [String: String])
    /// An `event` already written as its JSON object, its name set as `event` (`TradeShard.writeEvents()`: the
    /// trade engine writes them where it applies confirmations, so its commits do not spend their time on them).
    case eventText(String)
}

/// A stop or target the EA zeroed at the fill (it was on the wrong side of the fill price).
public struct DroppedStops: Sendable, Equatable {
    /// The EA dropped the stop loss.
    public var stopLoss: Bool
    /// The EA dropped the take profit.
    public var takeProfit: Bool
    /// The stop loss the fire asked for.
    public var requestedStopLoss: Double
    /// The take profit the fire asked for.
    public var requestedTakeProfit: Double
}
