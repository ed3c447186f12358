/// Trade direction.
public enum Direction: String, Sendable, Codable, CaseIterable {
    case buy = "BUY"
    case sell = "SELL"
}

/// `fire`: open a market order on one EA.
public struct FireCommand: Sendable, Equatable {
    /// The fire's id (`F-YYYYMMDD-SS-NNNNNN`).
    public var fireID: String
    /// The user's UUID the EA was set up with (`target_uuid`).
    public var targetUUID: String
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// `BUY` or `SELL`.
    public var direction: Direction
    /// The entry price.
    public var entry: Double
    /// The stop loss price (0: none).
    public var sl: Double
    /// The take profit price (0: none).
    public var tp: Double
    /// The volume in lots.
    public var lot: Double
    /// The signal's id.
    public var signalID: String
    /// Where it came from.
    public var source: String
    /// When, as the sender stamped it.
    public var timestamp: MetaTraderTime

    /// A fire command.
    public init(
        fireID: String, targetUUID: String, symbol: String, direction: Direction, entry: Double, sl: Double,
        tp: Double, lot: Double, signalID: String, source: String = "bitten", timestamp: MetaTraderTime
    ) {
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
            return .fire(
                FireCommand(
                    fireID: try r.string("fire_id", maxLength: 64, allowEmpty: false), targetUUID: uuid,
                    symbol: try Symbol.validated(r.string("symbol", maxLength: 32), field: "symbol"),
                    direction: direction,
                    entry: try r.double("entry", nonNegative: true), sl: try r.double("sl", nonNegative: true),
                    tp: try r.double("tp", nonNegative: true), lot: try r.double("lot", nonNegative: true),
                    signalID: try r.string("signal_id", maxLength: 128), source: try r.optionalString("source") ?? "",
                    timestamp: time))
        case "close_all":
            return .closeAll(targetUUID: uuid, timestamp: time)
        case "close_ticket":
            return .closeTicket(targetUUID: uuid, ticket: try r.int("ticket", nonNegative: true), timestamp: time)
        case "ping":
            return .ping(
                targetUUID: uuid, pingID: try r.string("ping_id", maxLength: 64, allowEmpty: false), timestamp: time)
        case let other:
            throw WireError(.unknownType, field: "type", "unknown command type '\(other)'")
        }
    }
}
