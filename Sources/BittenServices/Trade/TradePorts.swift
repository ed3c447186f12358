import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// Sends commands to one EA (the gateway, or a route to the gateway that holds the EA).
public protocol CommandChannel: Sendable {
    /// Hands `command` to the EA of its target UUID, or throws why not.
    func send(_ command: EACommand) async throws(GatewayError)
    /// Whether `uuid`'s EA can be reached: a route in this process, or an online node on a live gateway.
    func reachable(_ uuid: String) async -> Bool
}

extension GatewayService: CommandChannel {
    /// Whether the EA can take a command now.
    public func reachable(_ uuid: String) async -> Bool { isConnected(uuid) }
}

/// Latest market prices, by canonical instrument.
public protocol QuoteSource: Sendable {
    /// The freshest quote of any EA.
    func quote(_ symbol: String) -> Quote?
    /// The freshest quote of every instrument.
    var latestQuotes: [String: Quote] { get }
    /// One EA's own latest quote.
    func quote(_ symbol: String, of uuid: String) -> Quote?
}

extension TelemetryService: QuoteSource {}

/// Trade settings.
public struct TradeSettings: Sendable, Equatable {
    /// The tiers' slots and risk.
    public var tiers = TierTable.standard
    /// The instruments by symbol.
    public var instruments = InstrumentTable.standard
    /// The position sizer.
    public var sizer = PositionSizer(baseRiskPercent: 1.0)
    /// Each tier's default risk limits.
    public var riskLimits: [Tier: RiskLimits] = [:]
    /// What an open trade without a stop counts as in the open-risk limit, in % of the balance.
    public var noStopRiskPercent: Double = 10
    /// The service's concentration limits (lots per symbol and per signal across all users).
    public var concentration = ConcentrationLimits()
    /// Seconds to wait for a confirmation before a command is `timed_out`.
    public var confirmationTimeout: Double = 30
    /// How often overdue commands are looked for.
    public var sweepInterval: Duration = .milliseconds(250)
    /// Quotes older than this (seconds) do not convert currencies.
    public var maxQuoteAge: Double = 600

    /// The defaults.
    public init() {}
}
