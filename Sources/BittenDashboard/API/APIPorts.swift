import BittenCore
import BittenServices

/// The registered EA nodes, as the HTTP API reads and changes them (`NodeRegistry` in a running system).
protocol NodeDirectory: Sendable {
    /// Every node.
    var all: [NodeRecord] { get }
    /// One node.
    func node(_ uuid: String) -> NodeRecord?
    /// Online and total counts (and those heard from recently).
    func counts(at time: Double?) -> (online: Int, total: Int, fresh: Int)
    /// Online and total counts per broker.
    var countsByBroker: [String: (online: Int, total: Int)] { get }
    /// Takes a pending account switch; false when none is pending.
    func approveSwitch(_ uuid: String) -> Bool
    /// Dismisses a pending account switch; false when none is pending.
    func dismissSwitch(_ uuid: String) -> Bool
    /// Clears the node's pin; false when it has none.
    func unpin(_ uuid: String) -> Bool
}

extension NodeRegistry: NodeDirectory {}

/// The trade path as the HTTP API uses it: users, signals, fires, closes, positions, trades and statistics.
protocol TradeDesk: Sendable {
    /// The tiers' slots and risk.
    var tiers: TierTable { get }
    /// The tiers' default risk limits.
    var riskLimits: [Tier: RiskLimits] { get }
    /// One user.
    func user(_ uuid: String) async throws -> UserRecord?
    /// Every user.
    func users() async throws -> [UserRecord]
    /// Users whose own trading state is not active.
    func restrictedUsers() async throws -> [UserRecord]
    /// Creates or changes a user.
    func save(_ user: UserRecord) async throws
    /// The user's slots in use.
    func slotsUsed(_ uuid: String) async throws -> Int
    /// Validates, scores and stores a signal (the bytes of its JSON object).
    func submitSignal(_ bytes: [UInt8]) async throws -> SignalRecord
    /// The latest signals, newest first.
    func recentSignals(limit: Int) async throws -> [SignalRecord]
    /// One signal.
    func signal(_ id: String) async throws -> SignalRecord?
    /// Fires a signal for a user (idempotent per pair).
    func fire(signalID: String, userUUID: String) async throws(FireRefusal) -> FireRecord
    /// Sends a close of one position.
    func close(ticket: Int) async throws(FireRefusal) -> FireRecord
    /// Sends close_all to a user's EA.
    func closeAll(userUUID: String) async throws(FireRefusal) -> [FireRecord]
    /// Sets a user's trading state (its `closeAll`: every open position closed as well).
    func setTrading(userUUID: String, control: TradingControl) async throws(FireRefusal) -> [FireRecord]
    /// The latest fires and closes, newest first.
    func recentFires(limit: Int) async throws -> [FireRecord]
    /// One fire or close record.
    func fireRecord(_ id: String) async throws -> FireRecord?
    /// One position, open or closed.
    func position(_ ticket: Int) async throws -> PositionRecord?
    /// Open positions with live P&L, all or one user's.
    func openPositions(user: String?) async throws -> PositionTracker.Snapshot
    /// Closed trades from one of the bounded lists (`trades:recent`, `trades:EURUSD`, …), newest first.
    func trades(list: String, limit: Int) async throws -> [[String: String]]
    /// A statistics record (`global_trade_stats`, `symbol_stats:EURUSD`, …).
    func stats(_ key: String) async throws -> TradeStats
}

/// CITADEL as the HTTP API reads it (`CitadelService` in a running system).
protocol MarketScores: Sendable {
    /// Symbols tracked and what was seen.
    var summary: (symbols: [String], ticks: Int, bars: Int, watched: Int) { get }
    /// The latest CITADEL alerts, newest first.
    func recentAlerts(limit: Int) -> [CitadelAlert]
    /// The protection score of an entry.
    func report(_ query: ProtectionQuery) -> ProtectionReport
    /// A symbol's market state (zones, sweeps, spread, volatility), when data has arrived.
    func snapshot(symbol: String) -> JSONValue?
}

extension CitadelService: MarketScores {}

/// One alert of either source, for `/alerts` and the dashboard.
struct AlertRecord: Sendable, Equatable, Encodable {
    var source: String
    var kind: String
    var symbol: String?
    var uuid: String?
    var message: String
    var timestamp: Double
}

/// The process itself: health, services, metrics and stored alerts.
protocol SystemStatus: Sendable {
    /// The body of `/health`.
    func health() async -> HealthReport
    /// Every service on the board.
    var services: [ServiceReport] { get }
    /// Prometheus text of every metric.
    func metricsText() -> String
    /// Stored alerts (`system`, `citadel` or both), newest first.
    func alerts(source: String?, limit: Int) async -> [AlertRecord]
}

/// The system's trading state as the HTTP API reads and changes it (`TradingControlStore` in a running system).
protocol SystemControl: Sendable {
    /// The state in force.
    func read() async throws -> TradingControl
    /// Sets it; returns it with its new version.
    func set(_ control: TradingControl) async throws -> TradingControl
    /// The running trade processes' acknowledgements.
    func acknowledgements() async throws -> [TradingControlStore.Acknowledgement]
    /// Waits until every running trade process enforces `version`, or the time passes.
    func awaitAcknowledgements(of version: Int, timeout: Double) async -> (acknowledged: [String], waiting: [String])
}

extension TradingControlStore: SystemControl {}

/// The flight recorder's traces as the HTTP API reads them (`TraceReader` in a running system).
protocol TraceSource: Sendable {
    /// A fire's steps, oldest first.
    func fire(_ fireID: String) async throws -> [TraceReader.Entry]
    /// A signal's own steps and a page of its fires.
    func signal(_ signalID: String, limit: Int, offset: Int) async throws -> (
        steps: [TraceReader.Entry], fires: [String], totalFires: Int
    )
}

extension TraceReader: TraceSource {}

/// The Telegram front's link codes.
protocol ChatLinks: Sendable {
    /// A new one-time code that links a chat to `uuid`.
    func makeLinkCode(for uuid: String) async throws -> String
}

extension TelegramStore: ChatLinks {}

/// Everything the HTTP API's handlers use: a port per service, nil where this process does not run it.
struct APIPorts: Sendable {
    var system: any SystemStatus
    var nodes: (any NodeDirectory)?
    var trade: (any TradeDesk)?
    var citadel: (any MarketScores)?
    /// The system's trading state (nil without Redis).
    var control: (any SystemControl)?
    /// The flight recorder's traces (nil without Redis).
    var traces: (any TraceSource)?
    /// The Telegram front's link codes (nil without Redis).
    var links: (any ChatLinks)?
    /// Services this process does not run, and why (in the 503 of their routes).
    var notRunning: [String: String]

    /// The ports.
    init(
        system: any SystemStatus, nodes: (any NodeDirectory)?, trade: (any TradeDesk)?,
        citadel: (any MarketScores)?, control: (any SystemControl)? = nil, traces: (any TraceSource)? = nil,
        links: (any ChatLinks)? = nil, notRunning: [String: String] = [:]
    ) {
        self.links = links
        self.control = control
        self.traces = traces
        self.system = system
        self.nodes = nodes
        self.trade = trade
        self.citadel = citadel
        self.notRunning = notRunning
    }
}
