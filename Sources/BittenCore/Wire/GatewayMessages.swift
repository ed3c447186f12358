/// `HELLO` on 5555: the EA announces itself on the command channel.
public struct Hello: Sendable, Equatable {
    public var targetUUID: String
    public var nodeID: String
    public var accountLogin: Int
    public var broker: String
    public var company: String
    public var terminal: String
    public var account: AccountSnapshot
    public var symbols: Int
    public var version: String
    public var timestamp: MetaTraderTime

    init(reading r: FieldReader) throws(WireError) {
        targetUUID = try r.uuid("target_uuid")
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        accountLogin = try r.intOrString("account_login")
        broker = try r.string("broker")
        company = try r.string("company")
        terminal = try r.string("terminal")
        account = try AccountSnapshot(reading: r, requireMargin: true, requireFreeMargin: true)
        symbols = try r.int("symbols", nonNegative: true)
        version = try r.string("version", maxLength: 32)
        timestamp = try r.timestamp()
    }
}

/// `HEARTBEAT` on 5555: every 30 s with account metrics.
public struct DealerHeartbeat: Sendable, Equatable {
    public var targetUUID: String
    public var nodeID: String
    public var account: AccountSnapshot
    public var ticksProcessed: Int
    public var timestamp: MetaTraderTime

    public init(
        targetUUID: String, nodeID: String, account: AccountSnapshot, ticksProcessed: Int, timestamp: MetaTraderTime
    ) {
        self.targetUUID = targetUUID
        self.nodeID = nodeID
        self.account = account
        self.ticksProcessed = ticksProcessed
        self.timestamp = timestamp
    }

    init(reading r: FieldReader) throws(WireError) {
        targetUUID = try r.uuid("target_uuid")
        nodeID = try r.string("node_id", maxLength: 64, allowEmpty: false)
        account = try AccountSnapshot(reading: r, requireMargin: false, requireFreeMargin: true)
        ticksProcessed = try r.int("ticks_processed", nonNegative: true)
        timestamp = try r.timestamp()
    }
}
