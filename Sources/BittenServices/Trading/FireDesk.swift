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
    public var tiers = TierTable.standard
    public var instruments = InstrumentTable.standard
    public var sizer = PositionSizer(baseRiskPercent: 1.0)
    /// Seconds to wait for a confirmation before a command is `timed_out`.
    public var confirmationTimeout: Double = 30
    /// How often overdue commands are looked for.
    public var sweepInterval: Duration = .milliseconds(250)
    /// Quotes older than this (seconds) do not convert currencies.
    public var maxQuoteAge: Double = 600

    public init() {}
}

/// The fire path: checks, sizing, the atomic reservation, the send to exactly one EA, and the
/// timeouts. Never re-sends: a command without an answer becomes `timed_out` and is reported.
public final class FireDesk: Service, Sendable {
    public static let name = "trade"

    private let store: TradeStore
    private let channel: (any CommandChannel)?
    private let registry: NodeRegistry?
    private let quotes: (any QuoteSource)?
    private let settings: TradeSettings
    private let board: ServiceBoard
    private let logger: Logger
    private let now: @Sendable () -> Double
    private let outcomes: [String: Counter]
    private let signals = Mutex<[String: (signal: SignalRecord, stamp: String)]>([:])
    private let errors: SwallowedErrors

    public init(store: TradeStore, channel: (any CommandChannel)?, registry: NodeRegistry?, quotes: (any QuoteSource)?,
                settings: TradeSettings, board: ServiceBoard, logger: Logger,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.store = store
        self.channel = channel
        self.registry = registry
        self.quotes = quotes
        self.settings = settings
        self.board = board
        self.logger = logger
        self.now = now
        self.errors = SwallowedErrors(logger: logger)
        var outcomes: [String: Counter] = [:]
        for outcome in ["sent", "duplicate", "refused", "send_failed", "timed_out", "close_sent"] {
            outcomes[outcome] = Counter(label: "bitten_fires_total", dimensions: [("outcome", outcome)])
        }
        self.outcomes = outcomes
        board.register(Self.name)
    }

    private func count(_ outcome: String) { outcomes[outcome]?.increment() }

    /// The settings in force.
    public var tradeSettings: TradeSettings { settings }

    private func guarded<T>(_ body: () async throws -> T) async throws(FireRefusal) -> T {
        do {
            return try await body()
        } catch let refusal as FireRefusal {
            throw refusal
        } catch {
            throw FireRefusal(.storeUnavailable, "trade store unavailable: \(error)")
        }
    }

    private func refuse(_ code: FireRefusal.Code, _ message: String) -> FireRefusal {
        count("refused")
        board.count(Self.name, errors: 1)
        logger.info("fire refused", metadata: ["code": "\(code.rawValue)", "reason": "\(message)"])
        return FireRefusal(code, message)
    }

    /// What the checks made of a fire before the reservation: the signal's node, direction and the
    /// sizes for every tier the user may have.
    private struct FirePlan {
        var direction: Direction
        var variants: [String: TradeStore.SizingVariant] = [:]
        var sizes: [String: PositionSize] = [:]
        var balance: Double
        var tickSize: Double
        var tickValue: Double
        /// The currencies the tick value was converted through (`JPY>USD>EUR`).
        var conversion: String
        /// The symbol as this EA's broker names it.
        var brokerSymbol: String
    }

    /// A signal as read, while it has not expired (signals are never changed once stored; the
    /// reservation script checks the stamp, so one removed or replaced meanwhile is noticed).
    private func signal(_ signalID: String, at: Double, fresh: Bool) async throws(FireRefusal) -> (signal: SignalRecord, stamp: String)? {
        if !fresh, let cached = signals.withLock({ $0[signalID] }) { return cached }
        guard let read = try await guarded({ try await store.stampedSignal(signalID) }) else {
            signals.withLock { _ = $0.removeValue(forKey: signalID) }
            return nil
        }
        if read.signal.expiresAt > at {
            signals.withLock { cache in
                if cache.count >= Self.signalCacheLimit { cache = cache.filter { $0.value.signal.expiresAt > at } }
                if cache.count >= Self.signalCacheLimit { cache.removeAll() }
                cache[signalID] = read
            }
        }
        return read
    }

    /// Signals kept in memory at most (expired ones are dropped first).
    static let signalCacheLimit = 4_096

    /// Fires `signalID` for `userUUID`. A repeat returns the first fire's record with `duplicate`.
    ///
    /// One Redis round trip before the send in the usual case: the signal is read once and kept;
    /// the user, the earlier-fire marker and the slots are read by the reservation script itself,
    /// which picks the size computed here for the user's tier (all tiers are sized up front; a user
    /// with a risk override is sized for it on a second try). Refusals keep their order: unknown
    /// signal, unknown user, earlier fire (the first fire's record), then the rest.
    public func fire(signalID: String, userUUID: String) async throws(FireRefusal) -> FireRecord {
        guard SignalID.isValid(signalID) else { throw refuse(.badRequest, "'\(signalID)' is not a valid signal id") }
        guard UserID.isValid(userUUID) else { throw refuse(.badRequest, "'\(userUUID)' is not a valid user UUID") }
        let at = now()
        guard var signal = try await self.signal(signalID, at: at, fresh: false) else {
            throw refuse(.signalNotFound, "no signal \(signalID)")
        }
        var only: (tier: Tier, override: String)?
        for _ in 0..<4 {
            let plan: FirePlan
            do {
                plan = try await self.plan(signal.signal, userUUID: userUUID, at: at, only: only)
            } catch {
                // The user and an earlier fire come before these refusals.
                let context = try await guarded { try await store.fireContext(signalID: signalID, userUUID: userUUID) }
                if context.user == nil { throw refuse(.userNotFound, "no user \(userUUID)") }
                if let earlier = context.earlierFireID, let record = try await duplicate(earlier) { return record }
                throw refuse(error.code, error.message)
            }
            let deadline = at + settings.confirmationTimeout
            let reservation = try await guarded {
                try await store.reserveFire(signalID: signalID, signalStamp: signal.stamp, userUUID: userUUID,
                                            variants: Array(plan.variants.values), deadline: deadline, now: at,
                                            fields: recordFields(signal.signal, userUUID: userUUID, direction: plan.direction,
                                                                 at: at, deadline: deadline, plan: plan))
            }
            switch reservation {
            case .reserved(let fireID, let key):
                guard let size = plan.sizes[key] else {
                    throw refuse(.storeUnavailable, "fire \(fireID) reserved with an unknown size '\(key)'")
                }
                return try await send(fireID: fireID, signal: signal.signal, userUUID: userUUID, direction: plan.direction,
                                      lot: size.lot, brokerSymbol: plan.brokerSymbol, at: at)
            case .duplicate(let first):
                if let record = try await duplicate(first) { return record }
                throw refuse(.storeUnavailable, "fire \(first) is recorded but could not be read")
            case .noSlot(let used, let key):
                let variant = plan.variants[key]
                throw refuse(.noFreeSlot, "\(variant?.tier.rawValue ?? key) has \(variant?.slots ?? 0) slot(s) and \(used) in use")
            case .noUser:
                throw refuse(.userNotFound, "no user \(userUUID)")
            case .sizingFailed(let message):
                throw refuse(.sizing, message)
            case .signalChanged:
                guard let again = try await self.signal(signalID, at: at, fresh: true) else {
                    throw refuse(.signalNotFound, "no signal \(signalID)")
                }
                signal = again
            case .resize(let tierName, let override):
                // As `UserRecord` reads it: an unknown tier is no user; an unreadable override is none.
                guard let tier = Tier(rawValue: tierName) else { throw refuse(.userNotFound, "no user \(userUUID)") }
                only = (tier, override)
            }
        }
        throw refuse(.storeUnavailable, "the user or signal record kept changing during the fire; try again")
    }

    private func duplicate(_ fireID: String) async throws(FireRefusal) -> FireRecord? {
        guard var record = try await guarded({ try await store.fire(fireID) }) else { return nil }
        count("duplicate")
        record.duplicate = true
        return record
    }

    /// The checks that need no stored state, and the sizes: for every tier without a risk override,
    /// or for `only`.
    private func plan(_ signal: SignalRecord, userUUID: String, at: Double,
                      only: (tier: Tier, override: String)?) async throws(FireRefusal) -> FirePlan {
        guard signal.expiresAt > at else {
            throw FireRefusal(.signalExpired, "signal \(signal.signalID) expired at \(Int(signal.expiresAt)) (now \(Int(at)))")
        }
        guard let channel else { throw FireRefusal(.eaOffline, "no gateway in this process can reach EAs") }
        // This process's registry when it has one; in a split deployment, the node hash its gateway writes.
        let known: NodeRecord?
        if let registry { known = registry.node(userUUID) } else { known = try await guarded { try await store.node(userUUID) } }
        guard let node = known, node.online, await channel.reachable(userUUID) else {
            throw FireRefusal(.eaOffline, "the EA of \(userUUID) is not online")
        }
        if let switching = node.pendingSwitch {
            throw FireRefusal(.pendingSwitch,
                              "\(userUUID) is pinned to account \(node.pin?.account ?? node.account); account \(switching.account) on \(switching.server) registered from \(switching.peer) and waits for `bitten node approve \(userUUID)`")
        }
        guard let direction = Direction(rawValue: signal.direction) else {
            throw FireRefusal(.badRequest, "signal \(signal.signalID) has direction \(signal.direction)")
        }
        let stopOK = direction == .buy ? signal.stopLoss < signal.entry : signal.stopLoss > signal.entry
        guard stopOK else {
            throw FireRefusal(.stopLossWrongSide,
                              "stop loss \(signal.stopLoss) is on the wrong side of entry \(signal.entry) for \(direction.rawValue)")
        }
        guard let instrument = settings.instruments[signal.symbol] else {
            throw FireRefusal(.unknownInstrument, "no instrument definition for \(signal.symbol)")
        }
        // The fire names the symbol as this EA's broker does; a broker that does not list it cannot trade it.
        let brokerSymbol: String
        if node.brokerSymbols.isEmpty {
            brokerSymbol = signal.symbol
        } else if let name = node.brokerSymbols[signal.symbol] {
            brokerSymbol = name
        } else {
            let listed = node.brokerSymbols.names.keys.sorted().prefix(12).joined(separator: ", ")
            throw FireRefusal(.symbolNotAtBroker,
                              "\(signal.symbol) is not listed by the broker of \(userUUID) (\(node.company.isEmpty ? node.server : node.company), lists \(listed))")
        }
        let converter = self.converter(at: at, symbol: signal.symbol, entry: signal.entry)
        guard let (tickValue, conversion) = instrument.tickValue(accountCurrency: node.currency, converter: converter) else {
            let hint = converter.missingPairHint(from: instrument.profitCurrency, to: node.currency)
            throw FireRefusal(.sizing, "cannot value \(signal.symbol) in \(node.currency): no live quotes convert \(instrument.profitCurrency) to \(node.currency) (a quote of \(hint) would)")
        }
        var plan = FirePlan(direction: direction, balance: node.balance, tickSize: instrument.tickSize, tickValue: tickValue,
                            conversion: conversion.path.joined(separator: ">"), brokerSymbol: brokerSymbol)
        let cases: [(Tier, String)] = only.map { [$0] } ?? Tier.allCases.map { ($0, "") }
        for (tier, override) in cases {
            let rule = settings.tiers.rule(tier)
            var variant = TradeStore.SizingVariant(tier: tier, override: override, slots: rule.slots, fields: [], error: nil)
            do {
                let size = try settings.sizer.size(balance: node.balance, entry: signal.entry, stopLoss: signal.stopLoss,
                                                   instrument: instrument, tickValue: tickValue, rule: rule,
                                                   userOverride: Double(override), citadelMultiplier: signal.citadelMultiplier)
                variant.fields = ["lot", n(size.lot), "risk_percent", n(size.riskPercent), "risk_amount", n(size.riskAmount),
                                  "tier", tier.rawValue]
                plan.sizes[variant.key] = size
            } catch {
                variant.error = error.message
            }
            plan.variants[variant.key] = variant
        }
        return plan
    }

    private func n(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 8) ?? "0" }

    /// Currency conversion through the live quotes (any EA's freshest), plus the signal's own pair at
    /// its entry when nobody quotes it (USDJPY converts its own JPY profit).
    private func converter(at: Double, symbol: String, entry: Double) -> CurrencyConverter {
        var mids: [(String, Double)] = []
        var quoted = false
        for quote in quotes?.latestQuotes.values ?? [:].values where at - quote.receivedAt <= settings.maxQuoteAge {
            mids.append((quote.symbol, (quote.bid + quote.ask) / 2))
            if quote.symbol == symbol { quoted = true }
        }
        if !quoted { mids.append((symbol, entry)) }
        return CurrencyConverter(mids: mids)
    }

    /// The fire record's fields that do not depend on the user's tier.
    private func recordFields(_ signal: SignalRecord, userUUID: String, direction: Direction, at: Double, deadline: Double,
                              plan: FirePlan) -> [String] {
        [
            "kind", "fire", "signal_id", signal.signalID, "user_uuid", userUUID, "symbol", signal.symbol,
            "direction", direction.rawValue, "entry", n(signal.entry), "sl", n(signal.stopLoss), "tp", n(signal.takeProfit),
            "citadel_multiplier", n(signal.citadelMultiplier), "balance", n(plan.balance),
            "tick_size", n(plan.tickSize), "tick_value", n(plan.tickValue), "created_at", n(at), "deadline", n(deadline),
            "broker_symbol", plan.brokerSymbol, "conversion", plan.conversion,
        ]
    }

    /// Sends a reserved fire to its EA and moves it to `sent`; a send that fails rejects it and frees
    /// the slot and the marker, so the user may fire again.
    private func send(fireID: String, signal: SignalRecord, userUUID: String, direction: Direction, lot: Double,
                      brokerSymbol: String, at: Double) async throws(FireRefusal) -> FireRecord {
        guard let channel else { throw refuse(.eaOffline, "no gateway in this process can reach EAs") }
        let command = FireCommand(
            fireID: fireID, targetUUID: userUUID, symbol: brokerSymbol, direction: direction, entry: signal.entry,
            sl: signal.stopLoss, tp: signal.takeProfit, lot: lot, signalID: signal.signalID, source: "bitten",
            timestamp: MetaTraderTime(epochSeconds: Int(at)))
        do {
            try await channel.send(.fire(command))
        } catch {
            count("send_failed")
            await errors.attempt("reject_unsent_fire", fireID) {
                try await store.transition("fire:\(fireID)", to: .rejected, fields: ["reason", "send failed: \(error)"])
            }
            await errors.attempt("forget_unsent_fire", fireID) { try await store.forgetFire(signalID: signal.signalID, userUUID: userUUID) }
            logger.warning("fire not delivered", metadata: ["fire_id": "\(fireID)", "error": "\(error)"])
            throw FireRefusal(error.code == .notConnected ? .eaOffline : .sendFailed, error.message)
        }
        let sentAt = now()
        // The move to `sent` returns the record, so the answer needs no second read.
        let moved = await errors.attempt("mark_fire_sent", fireID) {
            try await store.transitionFire(fireID, to: .sent, deadline: sentAt + settings.confirmationTimeout,
                                           fields: ["sent_at", n(sentAt), "deadline", n(sentAt + settings.confirmationTimeout)])
        } ?? nil
        count("sent")
        board.count(Self.name, in: 1, out: 1)
        logger.info("fire sent", metadata: [
            "fire_id": "\(fireID)", "bitten.node.uuid": "\(userUUID)", "symbol": "\(signal.symbol)", "lot": "\(lot)",
        ])
        if let moved { return moved }
        // Not moved (a confirmation came first, or Redis hiccuped): read what is there.
        guard let record = try await guarded({ try await store.fire(fireID) }) else {
            throw FireRefusal(.storeUnavailable, "fire \(fireID) was sent but its record could not be read")
        }
        return record
    }

    /// Asks the EA holding `ticket` to close it.
    public func close(ticket: Int) async throws(FireRefusal) -> FireRecord {
        guard let position = try await guarded({ try await store.position(ticket) }), position.status == "open" else {
            throw refuse(.positionNotFound, "no open position \(ticket)")
        }
        let records = try await requestClose([position], command: .closeTicket(
            targetUUID: position.userUUID, ticket: ticket, timestamp: MetaTraderTime(epochSeconds: Int(now()))))
        guard let record = records.first else { throw refuse(.positionNotFound, "position \(ticket) closed meanwhile") }
        return record
    }

    /// Asks a user's EA to close every position.
    public func closeAll(userUUID: String) async throws(FireRefusal) -> [FireRecord] {
        guard UserID.isValid(userUUID) else { throw refuse(.badRequest, "'\(userUUID)' is not a valid user UUID") }
        guard try await guarded({ try await store.user(userUUID) }) != nil else { throw refuse(.userNotFound, "no user \(userUUID)") }
        let positions = try await guarded { try await store.openPositions(user: userUUID) }
        guard !positions.isEmpty else { return [] }
        return try await requestClose(positions, command: .closeAll(
            targetUUID: userUUID, timestamp: MetaTraderTime(epochSeconds: Int(now()))))
    }

    private func requestClose(_ positions: [PositionRecord], command: EACommand) async throws(FireRefusal) -> [FireRecord] {
        let uuid = command.targetUUID
        guard let channel, registry?.node(uuid)?.online ?? true, await channel.reachable(uuid) else {
            throw refuse(.eaOffline, "the EA of \(uuid) is not online")
        }
        let at = now()
        let deadline = at + settings.confirmationTimeout
        var reserved: [Int] = []
        for position in positions {
            let (outcome, _) = try await guarded {
                try await store.reserveClose(ticket: position.ticket, deadline: deadline, fields: [
                    "ticket", String(position.ticket), "user_uuid", uuid, "symbol", position.symbol,
                    "command", command.typeName, "created_at", TradeStore.number(at), "deadline", TradeStore.number(deadline),
                ])
            }
            if outcome == "ok" { reserved.append(position.ticket) }
        }
        if !reserved.isEmpty {
            do {
                try await channel.send(command)
                count("close_sent")
                for ticket in reserved {
                    await errors.attempt("mark_close_sent", String(ticket)) {
                        try await store.transition("close:\(ticket)", to: .sent, deadline: deadline,
                                                   fields: ["sent_at", TradeStore.number(now())])
                    }
                }
            } catch {
                for ticket in reserved {
                    await errors.attempt("reject_unsent_close", String(ticket)) {
                        try await store.transition("close:\(ticket)", to: .rejected, fields: ["reason", "send failed: \(error)"])
                    }
                }
                throw FireRefusal(error.code == .notConnected ? .eaOffline : .sendFailed, error.message)
            }
        }
        var records: [FireRecord] = []
        for position in positions {
            if let record = try await guarded({ try await store.closeRequest(position.ticket) }) { records.append(record) }
        }
        return records
    }

    /// Marks overdue commands `timed_out` until shutdown.
    public func run() async throws {
        board.set(Self.name, .running)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await sweep()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.settings.sweepInterval) }
            }
        } onGracefulShutdown: {}
        board.set(Self.name, .stopped)
    }

    /// One pass over overdue commands.
    public func sweep() async {
        let at = now()
        guard let keys = await errors.attempt("read_overdue", "", { try await store.overdue(at: at) }) else { return }
        for key in keys {
            guard let (outcome, previous) = await errors.attempt("time_out", key, {
                try await store.transition(
                    key, to: .timedOut, fields: ["timed_out_at", TradeStore.number(at), "reason", "no confirmation within \(Int(settings.confirmationTimeout)) s"])
            })
            else { continue }
            if outcome == "ok" {
                count("timed_out")
                logger.warning("command timed out", metadata: ["record": "\(key)", "was": "\(previous)"])
            } else {
                // Filled, rejected or timed out meanwhile, or gone: nothing waits for it any more.
                await errors.attempt("remove_deadline", key) { try await store.removeDeadline(key) }
            }
        }
    }
}
