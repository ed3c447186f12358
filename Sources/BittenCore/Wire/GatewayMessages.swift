/// `HELLO` on 5555: the EA announces itself on the command channel.
public struct Hello: Sendable, Equatable {
    /// The user's UUID the EA was set up with (`target_uuid`).
    public var targetUUID: String
    /// The EA's node id.
    public var nodeID: String
    /// The MetaTrader account number (the login).
    public var accountLogin: Int
    /// The broker's company name.
    public var broker: String
    /// The broker's company name.
    public var company: String
    /// The terminal's name.
    public var terminal: String
    /// The account's balance, equity, margin and currency, as the EA reports them.
    public var account: AccountSnapshot
    /// How many symbols the EA lists.
    public var symbols: Int
    /// The EA's version.
    public var version: String
    /// When, as the sender stamped it.
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
    /// The user's UUID the EA was set up with (`target_uuid`).
    public var targetUUID: String
    /// The EA's node id.
    public var nodeID: String
    /// The account's balance, equity, margin and currency, as the EA reports them.
    public var account: AccountSnapshot
    /// Ticks the EA has processed, as it reports.
    public var ticksProcessed: Int
    /// When, as the sender stamped it.
    public var timestamp: MetaTraderTime

    /// A registration.
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
