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
    /// The bid.
    public var bid: Double
    /// The ask.
    public var ask: Double
    /// The spread as the EA reported it.
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
    /// The name on the services board, in the CLI and in `logs/`.
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
    /// Per EA: its own latest quotes and the broker names already handed to the registry (one lookup a TICK).
    private let perEA = Mutex<[String: EAMarket]>([:])
    /// Broker name → canonical.
    private let names = Mutex<[String: String]>([:])
    private let scratch = Mutex<Scratch>(Scratch())
    private let canon: SymbolCanon
    private let unusableQuotes = Counter(label: "bitten_unusable_quotes_total")
    private let legacyText: Counter
    private let now: @Sendable () -> Double
    private let observers = Mutex<[@Sendable ([Tick], [OHLCBar]) -> Void]>([])
    private let limiter: Mutex<RateLimiter?>

    /// Market data from `input`, relayed on `relay`.
    public init(
        input: LoopSocket, relay: LoopSocket?, registry: NodeRegistry, board: ServiceBoard, inputPort: Int,
        relayPort: Int, format: BittenConfig.RelayFormat, logger: Logger,
        rateLimit: (rate: Double, burst: Double)? = nil,
        canon: SymbolCanon? = nil,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
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
        var names = brokerSymbols
        canonicalNames(&names)
        return names
    }

    /// Replaces each broker symbol by its canonical name, under one lock.
    func canonicalNames(_ symbols: inout [String]) {
        names.withLock { n in
            for index in symbols.indices where !symbols[index].isEmpty {
                let symbol = symbols[index]
                if let known = n[symbol] {
                    symbols[index] = known
                    continue
                }
                let name = canon.canonical(symbol)
                if n.count >= 50_000 { n.removeAll() }
                n[symbol] = name
                symbols[index] = name
            }
        }
    }

    /// One EA's own latest quote of a canonical instrument.
    public func quote(_ symbol: String, of uuid: String) -> Quote? { perEA.withLock { $0[uuid]?.quotes[symbol] } }

    /// The latest quote per symbol.
    public var latestQuotes: [String: Quote] { quotes.withLock { $0 } }

    /// The latest quote of one symbol.
    public func quote(_ symbol: String) -> Quote? { quotes.withLock { $0[symbol] } }

    /// Registers a consumer of decoded ticks and bars (CITADEL); called on the telemetry task.
    public func observe(_ observer: @escaping @Sendable ([Tick], [OHLCBar]) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Decodes and relays on the market socket's own loop thread (no hop to a task and back per
    /// batch), reading each batch from the loop's reused buffer; anything that arrived before the
    /// switch is read from the socket's stream first.
    public func run() async throws {
        board.set(Self.name, .running)
        await input.handleInlineRaw { [self] batch in handle(batch) }
        await withGracefulShutdownHandler {
            for await batch in input.messages.cancelOnGracefulShutdown() {
                RawBatch.with(batch) { handle($0) }
            }
        } onGracefulShutdown: {
        }
        await input.stopInlineHandling()
        board.set(Self.name, .stopped)
    }

    /// What one batch decoded, kept between batches so that its arrays are not allocated again.
    struct Scratch: ~Copyable {
        var decoded: [(message: EAMessage, index: Int)] = []
        var allowed: [Bool] = []
        var brokerNames: [String] = []
        var learned: [SymbolPair] = []
        var ticks: [Tick] = []
        var bars: [OHLCBar] = []

        mutating func reset() {
            decoded.removeAll(keepingCapacity: true)
            allowed.removeAll(keepingCapacity: true)
            brokerNames.removeAll(keepingCapacity: true)
            learned.removeAll(keepingCapacity: true)
            ticks.removeAll(keepingCapacity: true)
            bars.removeAll(keepingCapacity: true)
        }
    }

    /// A TICK with the EA's broker name and the canonical one (usable or not).
    struct SymbolPair {
        var uuid: String
        var broker: String
        var canonical: String
        var quote: Quote?
    }

    /// What telemetry keeps of one EA.
    struct EAMarket {
        /// Its latest quote per canonical instrument.
        var quotes: [String: Quote] = [:]
        /// Its broker names the registry already knows (an EA has a few dozen: a list is enough).
        var brokers: [String] = []
    }

    /// One batch: TICK and OHLC in the EA's plain form are read by `MarketScanner` in one pass (anything
    /// else by the full decoder, which names the error), rate-limited per EA, relayed with the EA's own
    /// bytes behind the canonical symbol, and noted as the latest quotes.
    func handle(_ batch: RawBatch) {
        scratch.withLock { scratch in
            scratch.reset()
            handle(batch, &scratch)
        }
    }

    private func handle(_ batch: RawBatch, _ scratch: inout Scratch) {
        let at = now()
        metrics.receivedMessages(batch.count)
        var rejected = 0
        for index in 0..<batch.count {
            guard batch.frameCount(index) == 1 else {
                rejected += 1
                reject(WireError(.malformed, "expected one JSON frame, got \(batch.frameCount(index))"))
                continue
            }
            let frame = batch.frame(0, of: index)
            if let scanned = MarketScanner.scan(frame) {
                scratch.decoded.append((scanned.message, index))
                continue
            }
            if let heartbeat = HeartbeatScanner.scan(frame, channel: .market) {
                scratch.decoded.append((heartbeat, index))
                continue
            }
            do {
                let (decoded, legacy) = try EAMessage.decodeNoting(Array(frame), channel: .market)
                if legacy { legacyText.increment() }
                scratch.decoded.append((decoded, index))
            } catch {
                rejected += 1
                reject(error)
            }
        }
        // The per-EA rate, checked under one lock for the whole batch: over it, a message is dropped and
        // counted, so one flooding EA cannot crowd the relay or the registry.
        // By index into the scratch array (a `map` copied each decoded message into its closure).
        let limited = limiter.withLock { limiter -> Bool in
            guard limiter != nil else { return false }
            for position in scratch.decoded.indices {
                scratch.allowed.append(limiter!.allow(scratch.decoded[position].message.userUUID, at: at))
            }
            return true
        }
        // Broker names → canonical for the whole batch under one lock (not one per message).
        // By index, reading in place: a `for entry in` loop copied every decoded message (a retain of each
        // of its strings) once per loop.
        for position in scratch.decoded.indices {
            switch scratch.decoded[position].message {
            case .tick(let t): scratch.brokerNames.append(t.symbol)
            case .ohlc(let b): scratch.brokerNames.append(b.symbol)
            default: scratch.brokerNames.append("")
            }
        }
        canonicalNames(&scratch.brokerNames)
        var unusable = 0
        var relayed = 0
        for position in scratch.decoded.indices {
            if limited && !scratch.allowed[position] {
                rejected += 1
                metrics.rejected(WireError(.rateLimited, "over the per-EA rate"))
                continue
            }
            let index = scratch.decoded[position].index
            switch scratch.decoded[position].message {
            case .tick(var tick):
                let broker = tick.symbol
                tick.symbol = scratch.brokerNames[position]
                // A zero or crossed quote is accepted and counted, never used as a price nor relayed.
                guard tick.usable else {
                    scratch.learned.append(
                        SymbolPair(uuid: tick.userUUID, broker: broker, canonical: tick.symbol, quote: nil))
                    unusable += 1
                    continue
                }
                let quote = Quote(
                    symbol: tick.symbol, bid: tick.bid, ask: tick.ask, spread: tick.spread, receivedAt: at)
                scratch.learned.append(
                    SymbolPair(uuid: tick.userUUID, broker: broker, canonical: tick.symbol, quote: quote))
                scratch.ticks.append(tick)
                relay(symbol: tick.symbol, payload: batch.frame(0, of: index), legacyPrefix: nil)
                relayed += 1
            case .ohlc(var bar):
                bar.symbol = scratch.brokerNames[position]
                scratch.bars.append(bar)
                relay(symbol: bar.symbol, payload: batch.frame(0, of: index), legacyPrefix: "OHLC ")
                relayed += 1
            case .disconnect(let m):
                forgetQuotes(of: m.userUUID)
                registry.handle(scratch.decoded[position].message, at: at)
            default:
                registry.handle(scratch.decoded[position].message, at: at)
            }
        }
        if unusable > 0 { unusableQuotes.increment(by: unusable) }
        if !scratch.learned.isEmpty {
            // Each EA's quotes, and its broker names the registry has not had yet (its symbol map), in
            // one lookup per TICK.
            let fresh = perEA.withLock { table in
                if table.count > 200_000 { table.removeAll() }
                var fresh: [(uuid: String, broker: String, canonical: String)] = []
                for pair in scratch.learned {
                    table[pair.uuid, default: EAMarket()].update(pair, fresh: &fresh)
                }
                return fresh
            }
            if !fresh.isEmpty { registry.learnSymbols(fresh) }
        }
        if !scratch.ticks.isEmpty {
            quotes.withLock { q in
                for tick in scratch.ticks {
                    q[tick.symbol] = Quote(
                        symbol: tick.symbol, bid: tick.bid, ask: tick.ask, spread: tick.spread, receivedAt: at)
                }
            }
        }
        if relayed > 0 { relayMetrics?.sentMessages(relayed) }
        if !scratch.ticks.isEmpty || !scratch.bars.isEmpty {
            for observer in observers.withLock({ $0 }) { observer(scratch.ticks, scratch.bars) }
        }
        board.count(Self.name, in: batch.count - rejected, out: relayed, errors: rejected)
        if let offenders = limiter.withLock({ ($0?.refusals.isEmpty ?? true) ? nil : $0!.drainRefusals() }),
            throttle.allow() != nil
        {
            let worst = offenders.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key)=\($0.value)" }.joined(
                separator: " ")
            logger.warning(
                "EAs over their message rate; messages dropped",
                metadata: ["bitten.socket.port": "market", "bitten.node.dropped_by_uuid": "\(worst)"])
        }
    }

    /// Forgets an EA's own quotes when it disconnects (its broker names stay learned).
    private func forgetQuotes(of uuid: String) { perEA.withLock { $0[uuid]?.quotes = [:] } }

    /// Publishes the EA's bytes unchanged: behind the canonical symbol (`topic`), or as one frame (`legacy`).
    /// The socket handle is used in place (`relay?.…`): binding it (`guard let`) copied the handle per
    /// message, a retain and release of each of its references, 6 % of the relay's CPU.
    private func relay(symbol: String, payload: UnsafeRawBufferPointer, legacyPrefix: String?) {
        switch format {
        case .topic:
            var topic = symbol
            topic.withUTF8 { relay?.post(UnsafeRawBufferPointer($0), payload) }
        case .legacy:
            relay?.post([Message([Array((legacyPrefix ?? "").utf8) + Array(payload)])])
        }
    }

    private func reject(_ error: WireError) {
        metrics.rejected(error)
        throttle.log(
            logger, .warning,
            "message rejected",
            metadata: [
                "bitten.socket.port": "market", "bitten.reason": "\(error)",
            ])
    }
}

extension TelemetryService: ValuationQuotes {
    /// At most this many quotes go with one close answer.
    static let maxValuationQuotes = 128

    /// The quotes a close answer of this EA is valued at (its own first, then the latest of each symbol), as text.
    public func valuationQuotes(for uuid: String) -> String {
        let own = perEA.withLock { $0[uuid]?.quotes ?? [:] }
        let all = latestQuotes
        var parts: [String] = []
        func add(_ q: Quote, _ source: String) {
            guard parts.count < Self.maxValuationQuotes, let bid = PlainDecimal.format(q.bid, maxFractionDigits: 8),
                let ask = PlainDecimal.format(q.ask, maxFractionDigits: 8)
            else { return }
            parts.append("\(q.symbol):\(bid):\(ask):\(source)")
        }
        for q in own.values.sorted(by: { $0.symbol < $1.symbol }) { add(q, "own") }
        for q in all.values.sorted(by: { $0.symbol < $1.symbol }) where own[q.symbol] == nil { add(q, "any") }
        return parts.joined(separator: ";")
    }
}

extension TelemetryService.EAMarket {
    /// Notes a TICK's quote and, the first time, its broker name (appended to `fresh`).
    mutating func update(
        _ pair: TelemetryService.SymbolPair, fresh: inout [(uuid: String, broker: String, canonical: String)]
    ) {
        if let quote = pair.quote { quotes[pair.canonical] = quote }
        guard !brokers.contains(pair.broker) else { return }
        if brokers.count >= 1_000 { brokers.removeAll() }
        brokers.append(pair.broker)
        fresh.append((pair.uuid, pair.broker, pair.canonical))
    }
}
