/// The life of a trade command (`fire`, and the close requests): created `pending` together with
/// its slot, `sent` once the gateway handed it to the EA's identity, then `filled`, `rejected` (the
/// EA said no, or the send failed) or `timed_out` (no answer in time; never re-sent). A confirmation
/// that arrives after the timeout still reconciles the record: `timed_out → filled | rejected`.
public enum FireState: String, Sendable, CaseIterable, Codable {
    case pending
    case sent
    case filled
    case rejected
    case timedOut = "timed_out"

    /// The states this one may move to.
    public var next: Set<FireState> {
        switch self {
        case .pending: [.sent, .rejected, .timedOut, .filled]
        case .sent: [.filled, .rejected, .timedOut]
        case .timedOut: [.filled, .rejected]
        case .filled, .rejected: []
        }
    }

    /// Whether the command still holds its slot in this state.
    public var holdsSlot: Bool { self == .pending || self == .sent || self == .filled }

    /// Whether no further change is expected (a late confirmation may still turn `timed_out` around).
    public var isFinal: Bool { next.isEmpty }

    /// Whether `self → target` is allowed.
    public func canMove(to target: FireState) -> Bool { next.contains(target) }
}

/// Why a fire (or close) was refused, with a stable code (the HTTP API gives each its status).
public struct FireRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Why a fire or close was refused.
    public enum Code: String, Sendable {
        case badRequest = "bad_request"
        case signalNotFound = "signal_not_found"
        case signalExpired = "signal_expired"
        case userNotFound = "user_not_found"
        case eaOffline = "ea_offline"
        case noFreeSlot = "no_free_slot"
        case stopLossWrongSide = "stop_loss_wrong_side"
        case unknownInstrument = "unknown_instrument"
        /// The user's broker does not list the instrument (its EA cannot select it).
        case symbolNotAtBroker = "symbol_not_at_broker"
        /// The node's EA registered with another account or server than its pin: no fires until approved.
        case pendingSwitch = "pending_switch"
        case sizing = "sizing_failed"
        case positionNotFound = "position_not_found"
        case sendFailed = "send_failed"
        case storeUnavailable = "store_unavailable"
        /// The system or the user is halted: nothing is sent.
        case tradingHalted = "trading_halted"
        /// The system or the user is close-only: closes go, new fires do not.
        case closeOnly = "close_only"
        /// A fire would break one of the user's risk limits (`RiskLimits`).
        case dailyLossLimit = "daily_loss_limit"
        /// A fire would break the drawdown limit.
        case drawdownLimit = "drawdown_limit"
        /// A fire would break the open-risk limit.
        case openRiskLimit = "open_risk_limit"
        /// A fire would break the per-currency exposure limit.
        case exposureLimit = "exposure_limit"
        /// The user has made as many trades today as allowed.
        case tradesPerDayLimit = "trades_per_day_limit"
        /// The user lost N trades in a row and cools down.
        case lossStreakCooldown = "loss_streak_cooldown"
        /// The service's total lots on the symbol or the signal would pass its limit.
        case concentrationLimit = "concentration_limit"
    }

    /// Why, as a stable code.
    public let code: Code
    /// What happened, for a person.
    public let message: String

    /// A refusal with its code and message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A one-line description.
    public var description: String { "\(code.rawValue): \(message)" }
}
