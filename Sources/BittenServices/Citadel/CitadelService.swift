import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// CITADEL: keeps the market state and liquidity map of every symbol from the telemetry relay, scores
/// signals and protection queries, watches live signals for decay, and raises alerts.
///
/// - Market data arrives through `TelemetryService.observe` on the market loop thread; updating the
///   engine is a short critical section.
/// - The REP on 5566 is handled inline on its loop thread: every request gets exactly one JSON reply,
///   an `{"error":…}` object when it is malformed.
/// - Alerts go out on 5565 as one frame `CITADEL_ALERT {json}` and into Redis `citadel:alerts`
///   (bounded), after the engine's per-symbol, per-kind cooldown.
public final class CitadelService: Service, ProtectionScorer, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "citadel"
    /// The CITADEL alerts kept in Redis (`citadel:alerts`).
    public static let maxStoredAlerts = 1000

    private let engine: Mutex<CitadelEngine>
    private let query: LoopSocket?
    private let alertSocket: LoopSocket?
    private let redis: RedisClient?
    private let board: ServiceBoard
    private let logger: Logger
    private let now: @Sendable () -> Double
    private let pending = Mutex<[CitadelAlert]>([])
    private let recent = Mutex<[CitadelAlert]>([])
    private let wake = WakeSignal()
    private let reviewInterval: Duration
    private let queryMetrics: WireMetrics?
    private let alertCounters = CounterFamily("bitten_citadel_alerts_total", dimension: "kind")
    /// The MetaTrader name of the analysis timeframe (OHLC bars of other timeframes are only kept).
    private let timeframe: String

    /// CITADEL on its query socket, publishing alerts, storing them in Redis.
    public init(
        settings: CitadelSettings = CitadelSettings(), instruments: InstrumentTable = .standard,
        query: LoopSocket?, queryPort: Int, alerts: LoopSocket?, redis: RedisClient?, board: ServiceBoard,
        reviewInterval: Duration = .seconds(5), logger: Logger,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.engine = Mutex(CitadelEngine(settings: settings, instruments: instruments))
        self.timeframe = Self.timeframe(seconds: settings.barSeconds)
        self.query = query
        self.alertSocket = alerts
        self.redis = redis
        self.board = board
        self.reviewInterval = reviewInterval
        self.logger = logger
        self.now = now
        self.queryMetrics = query == nil ? nil : WireMetrics(port: queryPort)
        board.register(Self.name)
    }

    /// Connects to the market data of `telemetry`.
    public func attach(to telemetry: TelemetryService) {
        telemetry.observe { [self] ticks, bars in ingest(ticks: ticks, bars: bars) }
    }

    /// Feeds decoded market data (on the caller's thread).
    public func ingest(ticks: [Tick], bars: [OHLCBar]) {
        let at = now()
        let timeframe = self.timeframe
        let alerts: [CitadelAlert] = engine.withLock { e in
            var alerts: [CitadelAlert] = []
            for tick in ticks {
                alerts += e.addTick(symbol: tick.symbol, bid: tick.bid, ask: tick.ask, volume: tick.volume, at: at)
            }
            for bar in bars {
                let value = Bar(time: Double(bar.time), open: bar.open, high: bar.high, low: bar.low, close: bar.close)
                if bar.timeframe == timeframe {
                    alerts += e.addBar(symbol: bar.symbol, value, at: at)
                } else {
                    e.addOtherBar(symbol: bar.symbol, timeframe: bar.timeframe, value)
                }
            }
            return alerts
        }
        board.count(Self.name, in: ticks.count + bars.count)
        if !alerts.isEmpty { emit(alerts) }
    }

    static func timeframe(seconds: Double) -> String {
        switch Int(seconds) {
        case 60: "M1"
        case 300: "M5"
        case 900: "M15"
        case 1800: "M30"
        case 3600: "H1"
        case 14400: "H4"
        default: "D1"
        }
    }

    // MARK: ProtectionScorer

    /// Scores a signal at intake and watches it for decay until it expires.
    public func assess(_ signal: Signal, at time: Double) -> ProtectionAssessment {
        let query = ProtectionQuery(
            symbol: signal.symbol, direction: signal.direction, entry: signal.entry,
            stopLoss: signal.stopLoss, createdAt: signal.createdAt)
        return engine.withLock { e in
            e.watch(signalID: signal.signalID, query: query, expiresAt: signal.expiresAt)
            return e.assess(query, at: time).assessment
        }
    }

    /// A full report for a query.
    public func report(_ query: ProtectionQuery) -> ProtectionReport {
        let at = now()
        return engine.withLock { $0.assess(query, at: at) }
    }

    /// The state of one symbol (nil without data).
    public func snapshot(symbol: String) -> JSONValue? {
        let at = now()
        return engine.withLock { $0.snapshot(symbol: symbol, at: at) }
    }

    /// Symbols tracked, ticks and bars seen, signals watched.
    public var summary: (symbols: [String], ticks: Int, bars: Int, watched: Int) {
        engine.withLock { ($0.symbols, $0.ticksSeen, $0.barsSeen, $0.watchedSignals) }
    }

    /// The latest alerts, newest first.
    public func recentAlerts(limit: Int = 100) -> [CitadelAlert] {
        recent.withLock { Array($0.suffix(limit).reversed()) }
    }

    // MARK: queries

    /// The reply to one request on 5566 (always exactly one JSON object).
    public func reply(to payload: [UInt8]) -> String {
        do {
            switch try CitadelRequest.decode(payload) {
            case .protection(let query):
                return report(query).json.serialized
            case .zones(let symbol):
                return
                    (snapshot(symbol: symbol)
                    ?? .object([
                        "symbol": .string(symbol), "zones": .array([]), "sweeps": .array([]),
                        "note": .string("no market data for \(symbol) yet"),
                    ])).serialized
            }
        } catch {
            queryMetrics?.rejected(error)
            logger.debug("protection query rejected", metadata: ["bitten.reason": "\(error)"])
            return CitadelRequest.errorReply(error).serialized
        }
    }

    private func answer(_ batch: [Message]) {
        guard let query else { return }
        queryMetrics?.receivedMessages(batch.count)
        var replies: [Message] = []
        for message in batch {
            // A multi-frame request is malformed, but REP still owes it one reply.
            let text =
                message.frames.count == 1
                ? reply(to: message.frames[0])
                : CitadelRequest.errorReply(
                    WireError(.malformed, "expected one JSON frame, got \(message.frames.count)")
                ).serialized
            replies.append(Message(strings: [text]))
        }
        query.post(replies)
        board.count(Self.name, in: batch.count, out: replies.count)
    }

    // MARK: alerts

    private func emit(_ alerts: [CitadelAlert]) {
        pending.withLock { $0 += alerts }
        recent.withLock { r in
            r += alerts
            if r.count > 200 { r.removeFirst(r.count - 200) }
        }
        alertSocket?.post(alerts.map { Message(strings: ["CITADEL_ALERT " + $0.json.serialized]) })
        for alert in alerts {
            counter(alert.kind).increment()
            logger.notice(
                "citadel alert",
                metadata: [
                    "bitten.kind": "\(alert.kind)", "bitten.symbol": "\(alert.symbol)",
                    "bitten.message": "\(alert.message)",
                ])
        }
        wake.signal()
    }

    private func counter(_ kind: String) -> Counter { alertCounters.counter(kind) }

    private func store() async {
        guard let redis else { return pending.withLock { $0 = [] } }
        let batch = pending.withLock { p in
            defer { p = [] }
            return p
        }
        guard !batch.isEmpty else { return }
        var commands = batch.map { ["LPUSH", RedisKeys.citadelAlerts, $0.json.serialized] }
        commands.append(["LTRIM", RedisKeys.citadelAlerts, "0", String(Self.maxStoredAlerts - 1)])
        do {
            _ = try await redis.pipeline(commands)
        } catch {
            // Keep them for the next round (bounded: the oldest go first).
            pending.withLock { p in
                p = batch + p
                if p.count > Self.maxStoredAlerts { p.removeFirst(p.count - Self.maxStoredAlerts) }
            }
        }
    }

    /// Answers protection queries and watches live signals until shutdown.
    public func run() async throws {
        board.set(Self.name, .running)
        if let query { await query.handleInline { [self] batch in answer(batch) } }
        await withDiscardingTaskGroup { group in
            if let query {
                // A request that arrived before the inline switch still gets its reply.
                group.addTask {
                    for await batch in query.messages.cancelOnGracefulShutdown() { self.answer(batch) }
                }
            }
            group.addTask {
                await withGracefulShutdownHandler {
                    var lastReview = ContinuousClock.now
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        await self.wake.wait(timeout: .milliseconds(500))
                        if ContinuousClock.now - lastReview >= self.reviewInterval {
                            lastReview = ContinuousClock.now
                            let at = self.now()
                            let stale = self.engine.withLock { $0.reviewSignals(at: at) }
                            if !stale.isEmpty { self.emit(stale) }
                        }
                        await self.store()
                    }
                } onGracefulShutdown: {
                    self.wake.signal()
                }
                await self.store()
            }
        }
        await query?.stopInlineHandling()
        board.set(Self.name, .stopped)
    }
}
