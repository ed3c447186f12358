/// What may be traded: everything (`active`), closes only (`close_only`: closes and close-all go through,
/// new fires are refused) or nothing (`halted`: no command is sent).
public enum TradingState: String, Sendable, Codable, CaseIterable {
    case active
    case closeOnly = "close_only"
    case halted

    /// How strict: halted > close_only > active.
    var strictness: Int {
        switch self {
        case .active: 0
        case .closeOnly: 1
        case .halted: 2
        }
    }

    /// The stricter of the two (the system's state and a user's both apply).
    public func stricter(_ other: TradingState) -> TradingState { other.strictness > strictness ? other : self }

    /// Whether new fires may be sent.
    public var allowsFire: Bool { self == .active }

    /// Whether closes (one ticket or close-all) may be sent.
    public var allowsClose: Bool { self != .halted }
}

/// A trading state as an operator (or a risk limit) set it: who, when, why, and until when.
public struct TradingControl: Sendable, Equatable, Codable {
    /// The state.
    public var state: TradingState
    /// Why it was set (free text, shown on the dashboard).
    public var reason: String
    /// Who set it (`alice@ops-1`, `risk:daily_loss`, …).
    public var by: String
    /// When (epoch seconds; 0: never set).
    public var at: Double
    /// When it lapses back to `active` (epoch seconds; nil: until an operator resumes).
    public var until: Double?
    /// Increases with every change of the system's state (0 for a user's).
    public var version: Int
    /// Whether the change also asked every open position to be closed (`bitten halt --close-all`).
    public var closeAll: Bool

    /// A state set by `by` at `at`.
    public init(
        state: TradingState, reason: String = "", by: String = "", at: Double = 0, until: Double? = nil,
        version: Int = 0, closeAll: Bool = false
    ) {
        self.state = state
        self.reason = reason
        self.by = by
        self.at = at
        self.until = until
        self.version = version
        self.closeAll = closeAll
    }

    /// Trading as usual, never set.
    public static let active = TradingControl(state: .active)

    /// The state in force at `time`: `active` once `until` has passed.
    public func effective(at time: Double) -> TradingState {
        if let until, time >= until { return .active }
        return state
    }

    /// Why a new fire is refused under this control at `time`, or nil when it may go; `subject` names whose
    /// state it is (`trading`, `user X`).
    public func fireRefusal(at time: Double, subject: String) -> FireRefusal? {
        switch effective(at: time) {
        case .active: return nil
        case .closeOnly: return FireRefusal(.closeOnly, "\(subject) is close-only\(explanation): new fires are refused")
        case .halted: return FireRefusal(.tradingHalted, "\(subject) is halted\(explanation): nothing is sent")
        }
    }

    /// Why a close is refused under this control at `time`, or nil when it may go.
    public func closeRefusal(at time: Double, subject: String) -> FireRefusal? {
        effective(at: time) == .halted
            ? FireRefusal(.tradingHalted, "\(subject) is halted\(explanation): no close is sent") : nil
    }

    private var explanation: String {
        var parts: [String] = []
        if !by.isEmpty { parts.append("by \(by)") }
        if !reason.isEmpty { parts.append("'\(reason)'") }
        if let until { parts.append("until \(MetaTraderTime(epochSeconds: Int(until)))") }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
    }

    // MARK: stored form

    /// The fields of a user's hash that hold it (`trading_state`, …).
    public var userFields: [String] {
        [
            "trading_state", state.rawValue, "trading_reason", reason, "trading_by", by, "trading_at",
            PlainDecimal.format(at, maxFractionDigits: 3) ?? "0", "trading_until",
            until.flatMap { PlainDecimal.format($0, maxFractionDigits: 3) } ?? "",
        ]
    }

    /// A user's control from its hash (active when the hash has none).
    public init(userHash hash: [String: String]) {
        self.init(
            state: hash["trading_state"].flatMap(TradingState.init(rawValue:)) ?? .active,
            reason: hash["trading_reason"] ?? "", by: hash["trading_by"] ?? "",
            at: hash["trading_at"].flatMap(Double.init) ?? 0,
            until: hash["trading_until"].flatMap(Double.init))
    }

    /// The fields of the system's control hash.
    public var systemFields: [String] {
        [
            "state", state.rawValue, "reason", reason, "by", by, "at",
            PlainDecimal.format(at, maxFractionDigits: 3) ?? "0",
            "close_all", closeAll ? "1" : "0",
        ]
    }

    /// The system's control from its hash; nil when the hash is not one (an empty hash is `active`).
    public init?(systemHash hash: [String: String]) {
        guard !hash.isEmpty else {
            self = .active
            return
        }
        guard let state = hash["state"].flatMap(TradingState.init(rawValue:)),
            let version = hash["version"].flatMap({ Int($0) })
        else { return nil }
        self.init(
            state: state, reason: hash["reason"] ?? "", by: hash["by"] ?? "",
            at: hash["at"].flatMap(Double.init) ?? 0, version: version, closeAll: hash["close_all"] == "1")
    }
}
