/// `confirmation` on 5558: the EA's answer to `fire`.
public struct Confirmation: Sendable, Equatable {
    /// The command's type as the EA sent it back.
    public var commandType: String
    /// The fire's id (`F-YYYYMMDD-SS-NNNNNN`).
    public var fireID: String
    /// The EA's node id.
    public var nodeID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// True when it succeeded.
    public var succeeded: Bool
    /// The broker's ticket of the position.
    public var ticket: Int
    /// The price.
    public var price: Double
    /// The volume in lots.
    public var lot: Double
    /// What happened, for a person.
    public var message: String
    /// The MetaTrader account number.
    public var accountNumber: Int
    /// The account's balance, equity, margin and currency, as the EA reports them.
    public var account: AccountSnapshot
    /// When, as the sender stamped it.
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
    /// The command's type as the EA sent it back.
    public var commandType: String
    /// The EA's node id.
    public var nodeID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// True when it succeeded.
    public var succeeded: Bool
    /// The broker's ticket of the position.
    public var ticket: Int
    /// The price it closed at (the EA v2.05 always reports 0: see the close's valuation).
    public var closePrice: Double
    /// The volume in lots.
    public var lot: Double
    /// What happened, for a person.
    public var message: String
    /// The MetaTrader account number.
    public var accountNumber: Int
    /// The account's balance, equity, margin and currency, as the EA reports them.
    public var account: AccountSnapshot
    /// When, as the sender stamped it.
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
    /// The ping this answers.
    public var pingID: String
    /// The EA's node id.
    public var nodeID: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// When, as the sender stamped it.
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
