/// Trade direction.
public enum Direction: String, Sendable, Codable, CaseIterable {
    case buy = "BUY"
    case sell = "SELL"
}

/// Optional partial-close management the EA reads from the `hybrid` block of `fire`.
public struct HybridOptions: Sendable, Equatable {
    public var enabled: Bool
    /// Percent of the position closed at the first target.
    public var partialClosePercent: Double?
    /// Pips in profit at which the stop moves to break-even.
    public var breakevenPips: Double?

    public init(enabled: Bool, partialClosePercent: Double? = nil, breakevenPips: Double? = nil) {
        self.enabled = enabled
        self.partialClosePercent = partialClosePercent
        self.breakevenPips = breakevenPips
    }
}

/// `fire`: open a market order on one EA.
public struct FireCommand: Sendable, Equatable {
    public var fireID: String
    public var targetUUID: String
    public var symbol: String
    public var direction: Direction
    public var entry: Double
    public var sl: Double
    public var tp: Double
    public var lot: Double
    public var signalID: String
    public var source: String
    public var timestamp: MetaTraderTime
    public var hybrid: HybridOptions?

    public init(fireID: String, targetUUID: String, symbol: String, direction: Direction, entry: Double, sl: Double,
                tp: Double, lot: Double, signalID: String, source: String = "bitten", timestamp: MetaTraderTime,
                hybrid: HybridOptions? = nil) {
        self.fireID = fireID
        self.targetUUID = targetUUID
        self.symbol = symbol
        self.direction = direction
        self.entry = entry
        self.sl = sl
        self.tp = tp
        self.lot = lot
        self.signalID = signalID
        self.source = source
        self.timestamp = timestamp
        self.hybrid = hybrid
    }
}

/// A command the server sends to one EA on 5555.
public enum EACommand: Sendable, Equatable {
    case fire(FireCommand)
    case closeAll(targetUUID: String, timestamp: MetaTraderTime)
    case closeTicket(targetUUID: String, ticket: Int, timestamp: MetaTraderTime)
    case ping(targetUUID: String, pingID: String, timestamp: MetaTraderTime)

    /// The UUID of the EA this command is for.
    public var targetUUID: String {
        switch self {
        case .fire(let fire): fire.targetUUID
        case .closeAll(let uuid, _), .closeTicket(let uuid, _, _), .ping(let uuid, _, _): uuid
        }
    }

    /// The wire `type`.
    public var typeName: String {
        switch self {
        case .fire: "fire"
        case .closeAll: "close_all"
        case .closeTicket: "close_ticket"
        case .ping: "ping"
        }
    }

    /// Decodes a command (the EA simulator's side of the channel).
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> EACommand {
        let r = try FieldReader(parsing: bytes, maxBytes: WireLimits.maxCommandBytes)
        let uuid = try r.uuid("target_uuid")
        let time = try r.timestamp()
        switch try r.string("type", maxLength: 32) {
        case "fire":
            var side = try r.optionalString("direction", maxLength: 4)
            if side == nil { side = try r.string("side", maxLength: 4) }
            let sideText = side ?? ""
            guard let direction = Direction(rawValue: sideText.uppercased()) else {
                throw WireError(.outOfRange, field: "direction", "'\(sideText)' is neither BUY nor SELL")
            }
            var hybrid: HybridOptions?
            if case .object(let block)? = r["hybrid"] {
                let h = FieldReader(block)
                guard case .bool(let enabled)? = block["enabled"] else {
                    throw WireError(.wrongType, field: "hybrid.enabled", "expected a boolean")
                }
                hybrid = HybridOptions(enabled: enabled, partialClosePercent: try h.optionalDouble("partial_close_percent"),
                                       breakevenPips: try h.optionalDouble("breakeven_pips"))
            }
            return .fire(FireCommand(
                fireID: try r.string("fire_id", maxLength: 64, allowEmpty: false), targetUUID: uuid,
                symbol: try Symbol.validated(r.string("symbol", maxLength: 32), field: "symbol"), direction: direction,
                entry: try r.double("entry", nonNegative: true), sl: try r.double("sl", nonNegative: true),
                tp: try r.double("tp", nonNegative: true), lot: try r.double("lot", nonNegative: true),
                signalID: try r.string("signal_id", maxLength: 128), source: try r.optionalString("source") ?? "",
                timestamp: time, hybrid: hybrid))
        case "close_all":
            return .closeAll(targetUUID: uuid, timestamp: time)
        case "close_ticket":
            return .closeTicket(targetUUID: uuid, ticket: try r.int("ticket", nonNegative: true), timestamp: time)
        case "ping":
            return .ping(targetUUID: uuid, pingID: try r.string("ping_id", maxLength: 64, allowEmpty: false), timestamp: time)
        case let other:
            throw WireError(.unknownType, field: "type", "unknown command type '\(other)'")
        }
    }
}
