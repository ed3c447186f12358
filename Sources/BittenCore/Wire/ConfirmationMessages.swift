/// `confirmation` on 5558: the EA's answer to `fire`.
public struct Confirmation: Sendable, Equatable {
    public var commandType: String
    public var fireID: String
    public var nodeID: String
    public var userUUID: String
    public var succeeded: Bool
    public var ticket: Int
    public var price: Double
    public var lot: Double
    public var message: String
    public var accountNumber: Int
    public var account: AccountSnapshot
    public var timestamp: MetaTraderTime

    init(reading r: FieldReader) throws(WireError) {
        commandType = try r.string("command_type", maxLength: 32)
        fireID = try r.string("fire_id", maxLength: 64)
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        userUUID = try r.uuid("user_uuid")
        succeeded = try ConfirmationStatus.parse(r)
        ticket = try r.int("ticket", nonNegative: true)
        price = try r.double("price", nonNegative: true)
        lot = try r.double("lot", nonNegative: true)
        message = try r.string("message", maxLength: 512)
        accountNumber = try r.intOrString("account")
        account = try AccountSnapshot(
            currency: r.string("currency", maxLength: 8), balance: r.double("balance"), equity: r.double("equity"),
            leverage: r.optionalInt("leverage", nonNegative: true) ?? 0, freeMargin: r.double("free_margin"),
            marginLevel: r.double("margin_level"))
        timestamp = try r.timestamp()
        if succeeded && ticket == 0 {
            throw WireError(.outOfRange, field: "ticket", "a successful fire needs a ticket")
        }
    }
}

/// `close_confirmation` on 5558: the EA's answer to `close_all` / `close_ticket`.
public struct CloseConfirmation: Sendable, Equatable {
    public var commandType: String
    public var nodeID: String
    public var userUUID: String
    public var succeeded: Bool
    public var ticket: Int
    public var closePrice: Double
    public var lot: Double
    public var message: String
    public var accountNumber: Int
    public var account: AccountSnapshot
    public var timestamp: MetaTraderTime

    init(reading r: FieldReader) throws(WireError) {
        commandType = try r.string("command_type", maxLength: 32)
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        userUUID = try r.uuid("user_uuid")
        succeeded = try ConfirmationStatus.parse(r)
        ticket = try r.int("ticket", nonNegative: true)
        closePrice = try r.double("close_price", nonNegative: true)
        lot = try r.double("lot", nonNegative: true)
        message = try r.string("message", maxLength: 512)
        accountNumber = try r.intOrString("account")
        account = try AccountSnapshot(
            currency: r.string("currency", maxLength: 8), balance: r.double("balance"), equity: r.double("equity"),
            leverage: r.optionalInt("leverage", nonNegative: true) ?? 0, freeMargin: r.double("free_margin"),
            marginLevel: r.double("margin_level"))
        timestamp = try r.timestamp()
    }
}

/// `pong` on 5558: the answer to `ping`.
public struct Pong: Sendable, Equatable {
    public var pingID: String
    public var nodeID: String
    public var userUUID: String
    public var timestamp: MetaTraderTime

    init(reading r: FieldReader) throws(WireError) {
        pingID = try r.string("ping_id", maxLength: 64, allowEmpty: false)
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        userUUID = try r.uuid("user_uuid")
        timestamp = try r.timestamp()
    }
}

enum ConfirmationStatus {
    static func parse(_ r: FieldReader) throws(WireError) -> Bool {
        switch try r.string("status", maxLength: 16) {
        case "success": return true
        case "failed": return false
        case let other: throw WireError(.outOfRange, field: "status", "'\(other)' is neither success nor failed")
        }
    }
}
