import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// The fire path: checks, sizing, the atomic reservation, the send to exactly one EA, and the
/// timeouts. Never re-sends: a command without an answer becomes `timed_out` and is reported.
public final class FireDesk: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "trade"

    let store: TradeStore
    let engine: TradeEngine
    let channel: (any CommandChannel)?
    let registry: NodeRegistry?
    let quotes: (any QuoteSource)?
    let settings: TradeSettings
    let board: ServiceBoard
    let logger: Logger
    let now: @Sendable () -> Double
    let outcomes: [String: Counter]
    let signals = Mutex<[String: SignalRecord]>([:])
    /// Users put in close-only by a loss limit the market crossed.
    let limitCrossings = Counter(label: "bitten_risk_limit_crossings_total")
    /// When the market was last swept against the loss limits.
    let limitSweptAt = Mutex(0.0)
    /// The concentration totals this process holds and writes.
    let concentration = Mutex(ConcentrationState())
    /// The concentration holds on their way to Redis, gathered per key.
    let lotHolds: LotHolds
    let errors: SwallowedErrors
    /// Where requests for users of shards another process owns go (nil: refused here, `store_unavailable`).
    let router: ShardRouter?
    /// The system's trading state as this process enforces it (nil: always active, as in unit tests).
    let control: TradingSwitch?
    /// Where every fire's steps are recorded (nil: not recorded).
    let recorder: FlightRecorder?

    /// The fire desk over the store, the engine and the command channel.
    public init(
        store: TradeStore, engine: TradeEngine, channel: (any CommandChannel)?, registry: NodeRegistry?,
        quotes: (any QuoteSource)?,
        settings: TradeSettings, board: ServiceBoard, logger: Logger, router: ShardRouter? = nil,
        control: TradingSwitch? = nil, recorder: FlightRecorder? = nil,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.recorder = recorder
        self.router = router
        self.control = control
        self.store = store
        self.engine = engine
        self.channel = channel
        self.registry = registry
        self.quotes = quotes
        self.settings = settings
        self.board = board
        self.logger = logger
        self.now = now
        self.errors = SwallowedErrors(logger: logger)
        self.lotHolds = LotHolds(riding: engine)
        var outcomes: [String: Counter] = [:]
        for outcome in ["sent", "duplicate", "refused", "send_failed", "timed_out", "close_sent"] {
            outcomes[outcome] = Counter(label: "bitten_fires_total", dimensions: [("outcome", outcome)])
        }
        self.outcomes = outcomes
        board.register(Self.name)
    }

    func count(_ outcome: String) { outcomes[outcome]?.increment() }

    /// The settings in force.
    public var tradeSettings: TradeSettings { settings }

    func guarded<T>(_ body: () async throws -> T) async throws(FireRefusal) -> T {
        do {
            return try await body()
        } catch let refusal as FireRefusal {
            throw refusal
        } catch let unavailable as TradeEngineUnavailable {
            throw FireRefusal(.storeUnavailable, unavailable.message)
        } catch {
            throw FireRefusal(.storeUnavailable, "trade store unavailable: \(error)")
        }
    }

    func refuse(_ code: FireRefusal.Code, _ message: String) -> FireRefusal {
        count("refused")
        board.count(Self.name, errors: 1)
        logger.info("fire refused", metadata: ["bitten.code": "\(code.rawValue)", "bitten.reason": "\(message)"])
        return FireRefusal(code, message)
    }

    /// What the checks made of a fire before the reservation: the signal's node, direction and the
    /// sizes for every tier the user may have.
    struct FirePlan {
        var direction: Direction
        var variants: [String: SizingChoice] = [:]
        var balance: Double
        var tickSize: Double
        var tickValue: Double
        /// The currencies the tick value was converted through (`JPY>USD>EUR`).
        var conversion: String
        /// The symbol as this EA's broker names it.
        var brokerSymbol: String
    }

    /// A signal as read, while it has not expired (signals are never changed once stored; `fire` checks
    /// that it was not removed meanwhile).
    func signal(_ signalID: String, at: Double) async throws(FireRefusal) -> SignalRecord? {
        if let cached = signals.withLock({ $0[signalID] }) { return cached }
        guard let read = try await guarded({ try await store.signal(signalID) }) else { return nil }
        if read.expiresAt > at {
            signals.withLock { cache in
                if cache.count >= Self.signalCacheLimit { cache = cache.filter { $0.value.expiresAt > at } }
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
    /// The user's shard decides in memory (its owner is the only writer): the fire is sized for the user's
    /// tier and risk override as the shard holds them, and the reservation checks them again (a change in
    /// between is sized again), with the earlier-fire marker and the slots. The command goes out only once
    /// the reservation is stored. Refusals keep their order: unknown signal, unknown user, earlier fire
    /// (the first fire's record), then the rest.
    /// A user whose shard another process owns is fired there (`ShardRouter`), unless `routing` is false
    /// (a request that was routed here).
    public func fire(signalID: String, userUUID: String, routing: Bool = true) async throws(FireRefusal) -> FireRecord {
        guard SignalID.isValid(signalID) else { throw refuse(.badRequest, "'\(signalID)' is not a valid signal id") }
        guard UserID.isValid(userUUID) else { throw refuse(.badRequest, "'\(userUUID)' is not a valid user UUID") }
        await engine.waitUntilTried(userUUID)
        if routing, let router, !engine.owns(userUUID),
            let records = try await router.route(
                .fire, shard: engine.shard(of: userUUID), userUUID: userUUID, signalID: signalID)
        {
            guard let record = records.first else {
                throw FireRefusal(.storeUnavailable, "the shard's owner answered no fire")
            }
            return record
        }
        do {
            return try await fireHere(signalID: signalID, userUUID: userUUID)
        } catch {
            recorder?.signal(
                signalID, "refused", at: now(),
                ["user_uuid": userUUID, "code": error.code.rawValue, "message": error.message])
            throw error
        }
    }

    /// A fire for a user of a shard this process owns (the checks, the reservation and the send).
    func fireHere(signalID: String, userUUID: String) async throws(FireRefusal) -> FireRecord {
        let at = now()
        if let refusal = control?.refusal(fire: true, at: at) {
            // A repeat of a fire made before still gets that fire's record.
            if let earlier = try? engine.read(userUUID, { $0.book.firedBy(signalID: signalID, user: userUUID) }),
                let record = try await duplicate(earlier)
            {
                return record
            }
            throw refuse(refusal.code, refusal.message)
        }
        guard let signal = try await self.signal(signalID, at: at) else {
            throw refuse(.signalNotFound, "no signal \(signalID)")
        }
        // A removed signal is never fired: one cheap EXISTS, while the checks run.
        async let stillStored = signalStored(signalID)
        // Sized for the tier and override the user's shard holds now (the reservation checks them again).
        var only: (tier: Tier, override: String)? = (try? engine.read(userUUID) { $0.users[userUUID] })
            .flatMap { $0.map { ($0.tier, $0.riskOverride) } }
        for attempt in 0..<3 {
            let plan: FirePlan
            do {
                plan = try await self.plan(signal, userUUID: userUUID, at: at, only: only)
            } catch {
                // The user and an earlier fire come before these refusals.
                let (known, earlier) = try await guarded {
                    try engine.read(userUUID) {
                        ($0.users[userUUID] != nil, $0.book.firedBy(signalID: signalID, user: userUUID))
                    }
                }
                if !known { throw refuse(.userNotFound, "no user \(userUUID)") }
                if let earlier, let record = try await duplicate(earlier) { return record }
                throw refuse(error.code, error.message)
            }
            if attempt == 0 {
                switch await stillStored {
                case false?:
                    signals.withLock { _ = $0.removeValue(forKey: signalID) }
                    throw refuse(.signalNotFound, "no signal \(signalID)")
                case nil: throw refuse(.storeUnavailable, "the signal store (Redis) could not be read")
                default: break
                }
            }
            let deadline = at + settings.confirmationTimeout
            var fire = FireInFlight(
                id: "", userUUID: userUUID, signalID: signalID, symbol: signal.symbol, isBuy: plan.direction == .buy,
                stopLoss: signal.stopLoss, takeProfit: signal.takeProfit, lot: 0, tickSize: plan.tickSize,
                tickValue: plan.tickValue, deadline: deadline)
            fire.brokerSymbol = plan.brokerSymbol
            fire.entry = signal.entry
            let risk = riskContext(userUUID: userUUID, balance: plan.balance, at: at)
            let fields = recordFields(
                signal, userUUID: userUUID, direction: plan.direction, at: at, deadline: deadline, plan: plan)
            let variants = Array(plan.variants.values)
            let date = RiskDay.day(of: at)
            // The concentration totals are held while the reservation is being stored (not after it): the hold rides
            // the commit round that stores it (`LotHolds`, `CommitRider`).
            let holding = Mutex<ConcentrationHold?>(nil)
            let concentrated = !settings.concentration.isEmpty
            let done = try await guarded {
                try await engine.perform(
                    userUUID,
                    {
                        $0.reserve(
                            fire, variants: variants, signalExpiresAt: signal.expiresAt, date: date, fields: fields,
                            at: at, risk: risk)
                    },
                    decided: { value in
                        guard concentrated, case .reserved(let fireID, let key) = value,
                            let lot = plan.variants[key]?.lot
                        else { return }
                        let hold = self.startConcentrationHold(
                            fireID: fireID, symbol: signal.symbol, signalID: signalID, lot: lot,
                            signalExpiresAt: signal.expiresAt, at: at)
                        holding.withLock { $0 = hold }
                    })
            }
            let held = holding.withLock { $0 }
            switch done.value {
            case .reserved(let fireID, let key):
                guard let variant = plan.variants[key] else {
                    throw refuse(.storeUnavailable, "fire \(fireID) reserved with an unknown size '\(key)'")
                }
                if let notStored = done.notStored {
                    // Never sent: rejected (with the next commit that succeeds), so the user may fire again; its
                    // lots held alongside the commit go back.
                    if let held, await concentrationRefusal(held) == nil { await releaseConcentration(fireID) }
                    try? engine.apply(userUUID) {
                        $0.sendFailed(fireID, reason: "not sent: \(notStored.message)", at: at)
                    }
                    throw refuse(
                        .storeUnavailable, "fire \(fireID) was not stored, so it was not sent: \(notStored.message)")
                }
                var record = ["fire_id": fireID, "state": "pending", "holds_slot": "1"]
                for i in stride(from: 0, to: fields.count - 1, by: 2) { record[fields[i]] = fields[i + 1] }
                for i in stride(from: 0, to: variant.fields.count - 1, by: 2) {
                    record[variant.fields[i]] = variant.fields[i + 1]
                }
                if let recorder { traceChecks(recorder, fireID: fireID, record: record, userUUID: userUUID, at: at) }
                if let held, let refusal = await concentrationRefusal(held) {
                    await errors.attempt("reject_unsent_fire", fireID) {
                        try engine.apply(userUUID) {
                            $0.sendFailed(fireID, reason: "not sent: \(refusal.description)", at: self.now())
                        }
                    }
                    recorder?.fire(
                        fireID, "refused", at: now(), ["code": refusal.code.rawValue, "message": refusal.message])
                    throw refuse(refusal.code, refusal.message)
                }
                return try await send(
                    fireID: fireID, signal: signal, userUUID: userUUID, direction: plan.direction,
                    lot: variant.lot, brokerSymbol: plan.brokerSymbol, at: at, record: record)
            case .duplicate(let first):
                if let record = try await duplicate(first) { return record }
                throw refuse(.storeUnavailable, "fire \(first) is recorded but could not be read")
            case .noSlot(let used, let key):
                let variant = plan.variants[key]
                let tier = key.split(separator: "|").first.map(String.init) ?? key
                throw refuse(.noFreeSlot, "\(tier) has \(variant?.slots ?? 0) slot(s) and \(used) in use")
            case .noUser:
                throw refuse(.userNotFound, "no user \(userUUID)")
            case .sizingFailed(let message):
                throw refuse(.sizing, message)
            case .refused(let refusal):
                throw refuse(refusal.code, refusal.message)
            case .resize(let tier, let override):
                only = (tier, override)
            }
        }
        throw refuse(.storeUnavailable, "the user record kept changing during the fire; try again")
    }

    /// Whether the signal is still stored; nil when Redis could not say.
    func signalStored(_ signalID: String) async -> Bool? { try? await store.signalExists(signalID) }

    func duplicate(_ fireID: String) async throws(FireRefusal) -> FireRecord? {
        guard var record = try await guarded({ try await store.fire(fireID) }) else { return nil }
        count("duplicate")
        record.duplicate = true
        return record
    }

    /// Sends a reserved (and stored) fire to its EA and moves it to `sent`; a send that fails rejects it and
    /// frees the slot and the marker, so the user may fire again. `record` is the fire as stored.
    func send(
        fireID: String, signal: SignalRecord, userUUID: String, direction: Direction, lot: Double,
        brokerSymbol: String, at: Double, record: [String: String]
    ) async throws(FireRefusal) -> FireRecord {
        guard let channel else { throw refuse(.eaOffline, "no gateway in this process can reach EAs") }
        // The system's state, once more at the door: a halt taken since the checks sends nothing.
        if let refusal = control?.enter(fire: true) {
            await errors.attempt("reject_unsent_fire", fireID) {
                try engine.apply(userUUID) {
                    $0.sendFailed(fireID, reason: "not sent: \(refusal.description)", at: self.now())
                }
            }
            throw refuse(refusal.code, refusal.message)
        }
        defer { control?.leave() }
        let command = FireCommand(
            fireID: fireID, targetUUID: userUUID, symbol: brokerSymbol, direction: direction, entry: signal.entry,
            sl: signal.stopLoss, tp: signal.takeProfit, lot: lot, signalID: signal.signalID, source: "bitten",
            timestamp: MetaTraderTime(epochSeconds: Int(at)))
        do {
            try await channel.send(.fire(command))
        } catch {
            recorder?.fire(fireID, "send_failed", at: now(), ["error": "\(error)"])
            count("send_failed")
            await errors.attempt("reject_unsent_fire", fireID) {
                try engine.apply(userUUID) { $0.sendFailed(fireID, reason: "send failed: \(error)", at: self.now()) }
            }
            logger.warning("fire not delivered", metadata: ["bitten.fire.id": "\(fireID)", "bitten.error": "\(error)"])
            throw FireRefusal(error.code == .notConnected ? .eaOffline : .sendFailed, error.message)
        }
        let sentAt = now()
        let deadline = sentAt + settings.confirmationTimeout
        if let recorder { traceSent(recorder, fireID, .fire(command), at: sentAt, to: userUUID) }
        // Stored with the next commit; an answer that came first (a fill) has moved it on already.
        let moved =
            (try? engine.apply(userUUID) {
                $0.sent(fireID, at: sentAt, deadline: deadline, fields: ["sent_at", n(sentAt)])
            }) ?? .unknownFire
        count("sent")
        board.count(Self.name, in: 1, out: 1)
        logger.info(
            "fire sent",
            metadata: [
                "bitten.fire.id": "\(fireID)", "bitten.node.uuid": "\(userUUID)", "bitten.symbol": "\(signal.symbol)",
                "bitten.fire.lot": "\(lot)",
            ])
        if case .moved = moved {
            var sent = record
            sent["state"] = "sent"
            sent["sent_at"] = n(sentAt)
            sent["deadline"] = n(deadline)
            if let built = FireRecord(hash: sent) { return built }
        }
        // Not moved (an answer came first): what the shard holds now.
        if let state = try? engine.read(userUUID, { $0.book.fires[fireID]?.state }) {
            var now = record
            now["state"] = state.rawValue
            if let built = FireRecord(hash: now) { return built }
        }
        guard let stored = try await guarded({ try await store.fire(fireID) }) else {
            throw FireRefusal(.storeUnavailable, "fire \(fireID) was sent but its record could not be read")
        }
        return stored
    }

    /// Marks overdue commands `timed_out` until shutdown.
    public func run() async throws {
        board.set(Self.name, .running)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await sweep()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.settings.sweepInterval) }
            }
        } onGracefulShutdown: {
        }
        board.set(Self.name, .stopped)
    }

    /// One pass over overdue commands: they become `timed_out` (stored with the next commit); then the market
    /// against the users' loss limits.
    public func sweep() async {
        let at = now()
        await sweepLimits(at: at)
        await resyncConcentration(at: at)
        let expired = engine.expire(at: at, reason: "no confirmation within \(Int(settings.confirmationTimeout)) s")
        for id in expired.fires {
            count("timed_out")
            logger.warning("command timed out", metadata: ["bitten.record": "fire:\(id)"])
        }
        for ticket in expired.closes {
            count("timed_out")
            logger.warning("command timed out", metadata: ["bitten.record": "close:\(ticket)"])
        }
    }
}
