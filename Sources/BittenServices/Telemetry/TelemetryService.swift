import BittenCore
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// The latest quote of a symbol.
public struct Quote: Sendable, Equatable, Codable {
    /// The canonical instrument.
    public var symbol: String
    public var bid: Double
    public var ask: Double
    public var spread: Double
    /// Server receive time, epoch seconds.
    public var receivedAt: Double
}

/// Prices for valuing a close the EA reported without a price.
public protocol ValuationQuotes: Sendable {
    /// Quotes to value a close of `uuid`'s positions at, encoded for the ledger entry: this EA's own
    /// latest quote per canonical instrument first (`own`), then the freshest of any EA for the
    /// instruments it does not quote (`any`): `SYMBOL:bid:ask:own;…`.
    func valuationQuotes(for uuid: String) -> String
}

/// Market data (PULL 5556 → PUB 5560): decodes each message once, hands handshakes, heartbeats and
/// DISCONNECTs to the node registry, re-publishes TICK and OHLC by symbol, and keeps the latest
/// quote per symbol. It never waits for Redis.
public final class TelemetryService: Service, Sendable {
    public static let name = "telemetry"

    private let input: LoopSocket
    private let relay: LoopSocket?
    private let registry: NodeRegistry
    private let board: ServiceBoard
    private let metrics: WireMetrics
    private let relayMetrics: WireMetrics?
    private let format: BittenConfig.RelayFormat
    private let logger: Logger
    private let throttle = LogThrottle()
    private let quotes = Mutex<[String: Quote]>([:])
    /// Each EA's own latest quotes, canonical symbol → quote.
    private let quotesByEA = Mutex<[String: [String: Quote]]>([:])
    /// Broker name → canonical, and the (uuid, broker name) pairs already handed to the registry.
    private let names = Mutex<(canonical: [String: String], learned: Set<String>)>(([:], []))
    private let canon: SymbolCanon
    private let unusableQuotes = Counter(label: "bitten_unusable_quotes_total")
    private let legacyText: Counter
    private let now: @Sendable () -> Double
    private let observers = Mutex<[@Sendable ([Tick], [OHLCBar]) -> Void]>([])
    private let limiter: Mutex<RateLimiter?>

    public init(input: LoopSocket, relay: LoopSocket?, registry: NodeRegistry, board: ServiceBoard, inputPort: Int,
                relayPort: Int, format: BittenConfig.RelayFormat, logger: Logger, rateLimit: (rate: Double, burst: Double)? = nil,
                canon: SymbolCanon? = nil,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.canon = canon ?? registry.canon
        self.legacyText = Counter(label: "bitten_legacy_text_messages_total", dimensions: [("port", String(inputPort))])
        self.limiter = Mutex(rateLimit.map { RateLimiter(rate: $0.rate, burst: $0.burst) })
        self.input = input
        self.relay = relay
        self.registry = registry
        self.board = board
        self.metrics = WireMetrics(port: inputPort)
        self.relayMetrics = relay == nil ? nil : WireMetrics(port: relayPort, decodes: false)
        self.format = format
        self.logger = logger
        self.now = now
        board.register(Self.name)
    }

    /// The canonical name of a broker symbol (cached: a broker's names are few).
    public func canonical(_ brokerSymbol: String) -> String { canonicalNames([brokerSymbol])[0] }

    /// Canonical names for a batch of broker symbols, under one lock.
    func canonicalNames(_ brokerSymbols: [String]) -> [String] {
        names.withLock { n in
            brokerSymbols.map { symbol in
                if let known = n.canonical[symbol] { return known }
                let name = canon.canonical(symbol)
                if n.canonical.count >= 50_000 { n.canonical.removeAll() }
                n.canonical[symbol] = name
                return name
            }
        }
    }

    /// One EA's own latest quote of a canonical instrument.
    public func quote(_ symbol: String, of uuid: String) -> Quote? { quotesByEA.withLock { $0[uuid]?[symbol] } }

    /// The latest quote per symbol.
    public var latestQuotes: [String: Quote] { quotes.withLock { $0 } }

    /// The latest quote of one symbol.
    public func quote(_ symbol: String) -> Quote? { quotes.withLock { $0[symbol] } }

    /// Registers a consumer of decoded ticks and bars (CITADEL); called on the telemetry task.
    public func observe(_ observer: @escaping @Sendable ([Tick], [OHLCBar]) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Decodes and relays on the market socket's own loop thread (no hop to a task and back per
    /// batch); anything that arrived before the switch is read from the socket's stream first.
    public func run() async throws {
        board.set(Self.name, .running)
        await input.handleInline { [self] batch in handle(batch) }
        await withGracefulShutdownHandler {
            for await batch in input.messages.cancelOnGracefulShutdown() {
                handle(batch)
            }
        } onGracefulShutdown: {}
        await input.stopInlineHandling()
        board.set(Self.name, .stopped)
    }

    func handle(_ batch: [Message]) {
        let at = now()
        metrics.receivedMessages(batch.count)
        var out: [Message] = []
        out.reserveCapacity(batch.count)
        var ticks: [Tick] = []
        var bars: [OHLCBar] = []
        var rejected = 0
        var decodedBatch: [(message: EAMessage, payload: [UInt8])] = []
        decodedBatch.reserveCapacity(batch.count)
        for message in batch {
            guard message.frames.count == 1 else {
                rejected += 1
                reject(WireError(.malformed, "expected one JSON frame, got \(message.frames.count)"))
                continue
            }
            do {
                let (decoded, legacy) = try EAMessage.decodeNoting(message.frames[0], channel: .market)
                if legacy { legacyText.increment() }
                decodedBatch.append((decoded, message.frames[0]))
            } catch {
                rejected += 1
                reject(error)
            }
        }
        // The per-EA rate, checked under one lock for the whole batch: over it, a message is dropped and
        // counted, so one flooding EA cannot crowd the relay or the registry.
        let allowed: [Bool] = limiter.withLock { limiter in
            guard limiter != nil else { return [] }
            return decodedBatch.map { limiter!.allow($0.message.userUUID, at: at) }
        }
        // Broker names → canonical for the whole batch under one lock (not one per message).
        let brokerNames = decodedBatch.map { entry -> String in
            switch entry.message {
            case .tick(let t): t.symbol
            case .ohlc(let b): b.symbol
            default: ""
            }
        }
        let canonicalNames = canonicalNames(brokerNames)
        var learned: [(uuid: String, broker: String, canonical: String)] = []
        var unusable = 0
        for (index, entry) in decodedBatch.enumerated() {
            if !allowed.isEmpty && !allowed[index] {
                rejected += 1
                metrics.rejected(WireError(.rateLimited, "over the per-EA rate"))
                continue
            }
            switch entry.message {
            case .tick(var tick):
                let broker = tick.symbol
                tick.symbol = canonicalNames[index]
                learned.append((tick.userUUID, broker, tick.symbol))
                // A zero or crossed quote is accepted and counted, never used as a price nor relayed.
                guard tick.usable else {
                    unusable += 1
                    continue
                }
                ticks.append(tick)
                out.append(relayMessage(symbol: tick.symbol, payload: entry.payload, legacyPrefix: nil))
            case .ohlc(var bar):
                bar.symbol = canonicalNames[index]
                bars.append(bar)
                out.append(relayMessage(symbol: bar.symbol, payload: entry.payload, legacyPrefix: "OHLC "))
            case .disconnect(let m):
                forgetQuotes(of: m.userUUID)
                registry.handle(entry.message, at: at)
            default:
                registry.handle(entry.message, at: at)
            }
        }
        if unusable > 0 { unusableQuotes.increment(by: unusable) }
        if !learned.isEmpty {
            // Only pairs not seen before reach the registry (the node's broker symbol map).
            let fresh = names.withLock { n in
                if n.learned.count > 500_000 { n.learned.removeAll() }
                return learned.filter { n.learned.insert($0.uuid + "\u{1}" + $0.broker).inserted }
            }
            if !fresh.isEmpty { registry.learnSymbols(fresh) }
        }
        if !ticks.isEmpty {
            quotes.withLock { q in
                for tick in ticks {
                    q[tick.symbol] = Quote(symbol: tick.symbol, bid: tick.bid, ask: tick.ask, spread: tick.spread, receivedAt: at)
                }
            }
            quotesByEA.withLock { q in
                for tick in ticks {
                    q[tick.userUUID, default: [:]][tick.symbol] = Quote(symbol: tick.symbol, bid: tick.bid, ask: tick.ask,
                                                                        spread: tick.spread, receivedAt: at)
                }
            }
        }
        if let relay, !out.isEmpty {
            relay.post(out)
            relayMetrics?.sentMessages(out.count)
        }
        if !ticks.isEmpty || !bars.isEmpty {
            for observer in observers.withLock({ $0 }) { observer(ticks, bars) }
        }
        board.count(Self.name, in: batch.count - rejected, out: out.count, errors: rejected)
        if let offenders = limiter.withLock({ ($0?.refusals.isEmpty ?? true) ? nil : $0!.drainRefusals() }),
           throttle.allow() != nil {
            let worst = offenders.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            logger.warning("EAs over their message rate; messages dropped", metadata: ["port": "market", "dropped_by_uuid": "\(worst)"])
        }
    }

    /// Forgets an EA's own quotes when it disconnects (its broker names stay learned).
    private func forgetQuotes(of uuid: String) { quotesByEA.withLock { _ = $0.removeValue(forKey: uuid) } }

    private func relayMessage(symbol: String, payload: [UInt8], legacyPrefix: String?) -> Message {
        switch format {
        case .topic: return Message([Array(symbol.utf8), payload])
        case .legacy: return Message([Array((legacyPrefix ?? "").utf8) + payload])
        }
    }

    private func reject(_ error: WireError) {
        metrics.rejected(error)
        if let suppressed = throttle.allow() {
            logger.warning("message rejected", metadata: ["port": "market", "reason": "\(error)", "suppressed_since_last": "\(suppressed)"])
        }
    }
}

extension TelemetryService: ValuationQuotes {
    /// At most this many quotes go with one close answer.
    static let maxValuationQuotes = 128

    public func valuationQuotes(for uuid: String) -> String {
        let own = quotesByEA.withLock { $0[uuid] ?? [:] }
        let all = latestQuotes
        var parts: [String] = []
        func add(_ q: Quote, _ source: String) {
            guard parts.count < Self.maxValuationQuotes, let bid = PlainDecimal.format(q.bid, maxFractionDigits: 8),
                  let ask = PlainDecimal.format(q.ask, maxFractionDigits: 8) else { return }
            parts.append("\(q.symbol):\(bid):\(ask):\(source)")
        }
        for q in own.values.sorted(by: { $0.symbol < $1.symbol }) { add(q, "own") }
        for q in all.values.sorted(by: { $0.symbol < $1.symbol }) where own[q.symbol] == nil { add(q, "any") }
        return parts.joined(separator: ";")
    }
}
