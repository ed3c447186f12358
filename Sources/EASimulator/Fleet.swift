import BittenCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// Counters of a running fleet.
public struct FleetStats: Sendable, Equatable {
    public var connected = 0
    public var sent = 0
    public var ticksSent = 0
    public var heartbeatsSent = 0
    public var commandsReceived = 0
    public var firesReceived = 0
    public var confirmationsSent = 0
    public var pongsSent = 0
}

/// A fleet of simulated EAs speaking the real wire protocol: a DEALER (identity = UUID minus its last
/// character) to the command port and PUSH sockets to the market and confirmation ports, exactly
/// as the EA opens them. Used by the demo, the tests and the benchmarks.
public final class Fleet: Service, Sendable {
    struct EASockets: Sendable {
        let dealer: LoopSocket
        let market: LoopSocket
        let confirm: LoopSocket
    }

    struct State {
        var eas: [SimulatedEA]
        var market: MarketWalk
        var stats = FleetStats()
        var nextTicket = 500_000_000
        var bars: [String: (open: Double, high: Double, low: Double, close: Double, minute: Int)] = [:]
        var fires: [FireCommand] = []
        var fireReceivedAt: [String: Double] = [:]
        var muted: Set<String> = []
        var commandLog: [(uuid: String, text: String)] = []
    }

    public let configuration: FleetConfiguration
    private let logger: Logger
    private let state: Mutex<State>
    private let sockets = Mutex<[EASockets]>([])
    private let loops: [SocketLoop]
    private let ready = Mutex<Bool>(false)

    public init(configuration: FleetConfiguration, logger: Logger = Logger(label: "bitten.simulator")) throws {
        self.configuration = configuration
        self.logger = logger
        let socketsNeeded =
            configuration.sharedPushSockets.map { configuration.count + 2 * $0 } ?? configuration.count * 3
        let context = try Context(ioThreads: 1, maxSockets: max(1024, socketsNeeded + 64))
        Context.raiseFileDescriptorLimit(to: UInt64(max(65_536, socketsNeeded * 2 + 1024)))
        let loopCount = max(
            1,
            min(
                configuration.maxLoops,
                (socketsNeeded + configuration.socketsPerLoop - 1) / configuration.socketsPerLoop))
        loops = try (0..<loopCount).map { try SocketLoop(context: context, name: "sim-\($0)", logger: logger) }
        let eas = (0..<configuration.count).map { index in
            var ea = SimulatedEA(
                uuid: configuration.uuid(index), account: configuration.accountBase + index,
                nodeID: "NODE_\(configuration.accountBase + index)_\(Int.random(in: 100_000...999_999))",
                symbols: configuration.symbols, marketWatch: configuration.allSymbols,
                currency: configuration.currency)
            ea.balance = configuration.balance
            ea.equity = configuration.balance
            return ea
        }
        state = Mutex(State(eas: eas, market: MarketWalk(symbols: configuration.allSymbols)))
    }

    /// Every EA's UUID, in order.
    public var uuids: [String] { state.withLock { $0.eas.map(\.uuid) } }
    /// Current counters.
    public var stats: FleetStats { state.withLock { $0.stats } }
    /// Whether every EA has connected and said HELLO.
    public var isReady: Bool { ready.withLock { $0 } }
    /// One EA's state.
    public func ea(_ uuid: String) -> SimulatedEA? { state.withLock { $0.eas.first { $0.uuid == uuid } } }

    /// The `fire` commands received (the latest 10 000), optionally for one EA only.
    public func receivedFires(for uuid: String? = nil) -> [FireCommand] {
        state.withLock { s in uuid.map { id in s.fires.filter { $0.targetUUID == id } } ?? s.fires }
    }

    /// When each `fire` reached its EA (epoch seconds, by fire id; the latest 100 000).
    public var fireReceiveTimes: [String: Double] { state.withLock { $0.fireReceivedAt } }

    /// Makes EAs read commands without ever answering them (a terminal whose trading is stuck).
    public func mute(_ uuids: [String]) {
        state.withLock { $0.muted.formUnion(uuids) }
    }

    /// Makes the chart symbol of EAs go quiet (or tick again): their timer keeps sending heartbeats and
    /// TICKs, but no command is read until the chart symbol ticks (commands queue in order).
    public func quiet(_ uuids: [String], _ quiet: Bool = true) {
        state.withLock { s in for i in s.eas.indices where uuids.contains(s.eas[i].uuid) { s.eas[i].quiet = quiet } }
    }

    /// Commands an EA received and has not read yet.
    public func unreadCommands(_ uuid: String) -> Int {
        state.withLock { $0.eas.first { $0.uuid == uuid }?.unreadCommands ?? 0 }
    }

    /// Every command an EA has read, as raw bytes (the latest 1 000 per fleet).
    public func commandsRead(by uuid: String) -> [String] {
        state.withLock { s in s.commandLog.filter { $0.uuid == uuid }.map(\.text) }
    }

    /// Closes a position at the simulated broker, at the market, the way a trader closing it by hand in
    /// the terminal does: the EA reports nothing. Returns the profit booked.
    @discardableResult
    public func closeAtBroker(_ uuid: String, ticket: Int) -> Double? {
        state.withLock { s in
            guard let i = s.eas.firstIndex(where: { $0.uuid == uuid }) else { return nil }
            let before = s.eas[i].balance
            guard settle(&s.eas[i], ticket: ticket, market: s.market) != nil else { return nil }
            return s.eas[i].balance - before
        }
    }

    /// Open tickets of one EA at the simulated broker.
    public func openTickets(_ uuid: String) -> [Int] {
        state.withLock { $0.eas.first { $0.uuid == uuid }?.openTickets ?? [] }
    }

    /// Positions the simulated broker closed at their stop loss or take profit (never reported by the EA).
    public func brokerCloses(_ uuid: String) -> [(ticket: Int, reason: String, price: Double, profit: Double)] {
        state.withLock { $0.eas.first { $0.uuid == uuid }?.brokerCloses ?? [] }
    }

    /// Moves the simulated market of `symbol` to `mid` (tests: make a stop loss or target be hit).
    public func setPrice(_ symbol: String, mid: Double) {
        state.withLock { $0.market.set(symbol, mid: mid) }
    }

    /// The current quote of a canonical symbol in the simulated market.
    public func quote(_ symbol: String) -> (bid: Double, ask: Double)? {
        state.withLock { s in s.market.quote(symbol).map { ($0.bid, $0.ask) } }
    }

    /// One message as the EA puts it on the wire: Windows-1252 text in faithful mode, UTF-8 otherwise.
    func wire(_ text: String) -> Message {
        configuration.fidelity == .v205 ? Message([Windows1252.encode(text)]) : Message(strings: [text])
    }

    /// The broker's names of the Market Watch list, the chart symbol first.
    var brokerSymbolList: [String] { configuration.allSymbols.map(configuration.brokerName) }

    /// Makes EAs go silent (no heartbeats, no ticks) while staying connected.
    public func silence(_ uuids: [String]) {
        state.withLock { s in for i in s.eas.indices where uuids.contains(s.eas[i].uuid) { s.eas[i].silenced = true } }
    }

    /// Restarts one EA as a new terminal start (new node id), optionally on another account. Like the
    /// real EA's OnDeinit/OnInit, it closes its sockets and opens new ones (new connections on every
    /// port; shared PUSH sockets of a load test stay), then says HELLO.
    public func restart(_ uuid: String, account: Int? = nil) async {
        let time = Self.now()
        let messages: (Int, String, String)? = state.withLock { s in
            guard let i = s.eas.firstIndex(where: { $0.uuid == uuid }) else { return nil }
            if let account { s.eas[i].account = account }
            s.eas[i].nodeID = "NODE_\(s.eas[i].account)_\(Int.random(in: 100_000...999_999))"
            s.eas[i].silenced = false
            s.eas[i].stopped = false
            s.eas[i].inbox = []
            return (
                i, EAMessages.hello(s.eas[i], broker: configuration.broker, company: configuration.company, time: time),
                EAMessages.handshake(
                    s.eas[i], broker: configuration.broker, company: configuration.company,
                    symbols: brokerSymbolList, time: time)
            )
        }
        guard let (index, hello, handshake) = messages,
            let old = sockets.withLock({ index < $0.count ? $0[index] : nil })
        else { return }
        let shared = configuration.sharedPushSockets != nil
        old.dealer.close()
        if !shared {
            old.market.close()
            old.confirm.close()
        }
        // The terminal takes a moment between OnDeinit and OnInit.
        try? await Task.sleep(for: .milliseconds(100))
        let ea = state.withLock { $0.eas[index] }
        guard
            let fresh = try? await openEA(
                index: index, identity: ea.identity, shared: shared ? (old.market, old.confirm) : nil)
        else { return }
        sockets.withLock { if index < $0.count { $0[index] = fresh } }
        fresh.dealer.post([wire(hello)])
        fresh.market.post([wire(handshake)])
    }

    /// Stops EAs the way the real EA stops: a DISCONNECT on the market channel.
    public func disconnect(_ uuids: [String]) {
        let time = Self.now()
        let out: [(Int, String)] = state.withLock { s in
            s.eas.indices.filter { uuids.contains(s.eas[$0].uuid) && !s.eas[$0].stopped }.map { i in
                s.eas[i].stopped = true
                return (i, EAMessages.disconnect(s.eas[i], time: time))
            }
        }
        let all = sockets.withLock { $0 }
        for (i, text) in out where i < all.count { all[i].market.post([wire(text)]) }
    }

    static func now() -> String { MetaTraderTime(epochSeconds: Int(Date().timeIntervalSince1970)).description }

    public func run() async throws {
        try await connectAll()
        // Commands are answered on the socket loop's thread as they arrive, like the EA's own timer
        // loop: the receive time is when the socket delivered the command, not when a task got to it.
        // (The handlers are installed in `connectAll`, before each EA says HELLO.)
        await clockLoop()
        disconnect(uuids)
        try? await Task.sleep(for: .milliseconds(200))
        for loop in loops { await loop.shutdown() }
    }

    /// Opens one EA's sockets (its DEALER with the command handler; its PUSH sockets unless shared ones are given).
    private func openEA(index: Int, identity: [UInt8], shared: (LoopSocket, LoopSocket)?) async throws -> EASockets {
        let c = configuration
        let loop = loops[index % loops.count]
        func push(_ port: Int) async throws -> LoopSocket {
            try await loop.open(.push) { socket in
                try socket.setSendHighWaterMark(c.sharedPushSockets == nil ? 1000 : 100_000)
                try socket.connect("tcp://\(c.host):\(port)")
            }
        }
        let dealer = try await loop.open(.dealer) { socket in
            try socket.setIdentity(identity)
            try socket.connect("tcp://\(c.host):\(c.commandPort)")
        }
        let socket: EASockets
        if let (market, confirm) = shared {
            socket = EASockets(dealer: dealer, market: market, confirm: confirm)
        } else {
            socket = EASockets(
                dealer: dealer, market: try await push(c.marketPort), confirm: try await push(c.confirmPort))
        }
        await dealer.handleInline { [self] batch in
            if configuration.fidelity == .v205 {
                // The EA reads one command per tick of its chart symbol: they wait in order.
                state.withLock { s in
                    guard index < s.eas.count else { return }
                    s.eas[index].inbox += batch.map(\.payload)
                    for message in batch { recordArrival(&s, uuid: s.eas[index].uuid, payload: message.payload) }
                }
                return
            }
            let confirm = sockets.withLock { index < $0.count ? $0[index].confirm : socket.confirm }
            for message in batch {
                let replies = answer(index: index, payload: message.payload)
                if !replies.isEmpty { confirm.post(replies.map { wire($0) }) }
            }
        }
        return socket
    }

    private func connectAll() async throws {
        let c = configuration
        let eas = state.withLock { $0.eas }
        var opened: [EASockets] = []
        func push(_ loop: SocketLoop, _ port: Int) async throws -> LoopSocket {
            try await loop.open(.push) { socket in
                try socket.setSendHighWaterMark(c.sharedPushSockets == nil ? 1000 : 100_000)
                try socket.connect("tcp://\(c.host):\(port)")
            }
        }
        var shared: [(LoopSocket, LoopSocket)] = []
        if let pool = c.sharedPushSockets {
            for index in 0..<max(1, pool) {
                let loop = loops[index % loops.count]
                shared.append((try await push(loop, c.marketPort), try await push(loop, c.confirmPort)))
            }
        }
        for (index, ea) in eas.enumerated() {
            opened.append(
                try await openEA(
                    index: index, identity: ea.identity, shared: shared.isEmpty ? nil : shared[index % shared.count]))
        }
        sockets.withLock { $0 = opened }
        let time = Self.now()
        let names = brokerSymbolList
        for (index, ea) in eas.enumerated() {
            opened[index].dealer.post([wire(EAMessages.hello(ea, broker: c.broker, company: c.company, time: time))])
            opened[index].market.post([
                wire(EAMessages.handshake(ea, broker: c.broker, company: c.company, symbols: names, time: time))
            ])
        }
        state.withLock {
            $0.stats.connected = eas.count
            $0.stats.sent += eas.count * 2
        }
        ready.withLock { $0 = true }
        logger.info("simulated EAs connected", metadata: ["count": "\(eas.count)"])
    }

    /// Sends heartbeats, ticks and bars on schedule until shutdown.
    private func clockLoop() async {
        let clock = ContinuousClock()
        let phases = max(1, configuration.heartbeatPhases)
        let beat = configuration.heartbeatInterval / phases
        var phase = 0
        var nextHeartbeat = clock.now + beat
        var nextTick = clock.now + (configuration.tickInterval ?? .seconds(3600))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let wake = min(nextHeartbeat, nextTick)
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(until: wake, clock: clock) } } catch {
                return
            }
            let now = clock.now
            if now >= nextHeartbeat {
                sendHeartbeats(phase: phase, of: phases)
                phase = (phase + 1) % phases
                nextHeartbeat = nextHeartbeat + beat
                if nextHeartbeat < now { nextHeartbeat = now + beat }
            }
            if let interval = configuration.tickInterval, now >= nextTick {
                sendTicks()
                nextTick = nextTick + interval
                if nextTick < now { nextTick = now + interval }
            }
        }
    }

    /// Heartbeats of one phase: the EAs on every `phases`-th socket loop (EA i is on loop i modulo
    /// the loop count), so a wave wakes few loop threads, each once.
    private func sendHeartbeats(phase: Int, of phases: Int) {
        let time = Self.now()
        let all = sockets.withLock { $0 }
        let loopCount = loops.count
        let out: [(Int, String, String)] = state.withLock { s in
            s.eas.indices.compactMap { i in
                guard (i % loopCount) % phases == phase, !s.eas[i].silenced && !s.eas[i].stopped else { return nil }
                return (i, EAMessages.dealerHeartbeat(s.eas[i], time: time), EAMessages.heartbeat(s.eas[i], time: time))
            }
        }
        for (i, dealer, market) in out where i < all.count {
            all[i].dealer.post([wire(dealer)])
            all[i].market.post([wire(market)])
        }
        state.withLock {
            $0.stats.heartbeatsSent += out.count * 2
            $0.stats.sent += out.count * 2
        }
    }

    private func sendTicks() {
        let time = Self.now()
        let epoch = Int(Date().timeIntervalSince1970)
        let all = sockets.withLock { $0 }
        let sendBars = configuration.sendOHLC
        let faithful = configuration.fidelity == .v205
        let watch = configuration.allSymbols
        let out: [(Int, [Message], [String])] = state.withLock { s in
            s.market.step()
            var barMessages: [String: (Int, Double, Double, Double, Double)] = [:]
            for symbol in watch {
                guard let q = s.market.quote(symbol) else { continue }
                let minute = epoch / 60
                if var bar = s.bars[symbol], bar.minute == minute {
                    bar.high = max(bar.high, q.bid)
                    bar.low = min(bar.low, q.bid)
                    bar.close = q.bid
                    s.bars[symbol] = bar
                } else {
                    if let bar = s.bars[symbol], sendBars {
                        barMessages[symbol] = (bar.minute * 60, bar.open, bar.high, bar.low, bar.close)
                    }
                    s.bars[symbol] = (q.bid, q.bid, q.bid, q.bid, minute)
                }
            }
            var result: [(Int, [Message], [String])] = []
            for i in s.eas.indices where !s.eas[i].silenced && !s.eas[i].stopped {
                var messages: [Message] = []
                for symbol in s.eas[i].marketWatch {
                    guard let q = s.market.quote(symbol), let digits = s.market.instruments[symbol]?.digits else {
                        continue
                    }
                    let name = configuration.brokerName(symbol)
                    messages.append(
                        wire(
                            EAMessages.tick(
                                s.eas[i], symbol: name, bid: q.bid, ask: q.ask, spread: q.spread, digits: digits,
                                time: time)))
                    if let bar = barMessages[symbol] {
                        messages.append(
                            wire(
                                EAMessages.ohlc(
                                    s.eas[i], symbol: name, barTime: bar.0, open: bar.1, high: bar.2, low: bar.3,
                                    close: bar.4, digits: digits, time: time)))
                    }
                }
                s.eas[i].ticks += messages.count
                var replies: [String] = []
                if faithful {
                    // The simulated broker closes positions whose stop or target the market reached; the
                    // EA reports none of it.
                    brokerStops(&s.eas[i], market: s.market)
                    // The chart symbol ticked: the EA reads one command.
                    if !s.eas[i].quiet, !s.eas[i].inbox.isEmpty {
                        let payload = s.eas[i].inbox.removeFirst()
                        replies = read(&s, index: i, payload: payload)
                    }
                }
                result.append((i, messages, replies))
            }
            let count = result.reduce(0) { $0 + $1.1.count }
            s.stats.ticksSent += count
            s.stats.sent += count
            return result
        }
        for (i, messages, replies) in out where i < all.count {
            all[i].market.post(messages)
            if !replies.isEmpty { all[i].confirm.post(replies.map { wire($0) }) }
        }
    }

    /// A command reached a faithful EA's socket (it is read later, one per chart tick): a `fire` is
    /// recorded as the EA's substring reader sees it, with the symbol as sent.
    private func recordArrival(_ s: inout State, uuid: String, payload: [UInt8]) {
        guard EAReader.value(payload, "type") == "fire" else { return }
        var direction = EAReader.value(payload, "direction")
        if direction.isEmpty { direction = EAReader.value(payload, "side") }
        s.fires.append(
            FireCommand(
                fireID: EAReader.value(payload, "fire_id"), targetUUID: EAReader.value(payload, "target_uuid"),
                symbol: EAReader.value(payload, "symbol"),
                direction: direction == "BUY" || direction == "buy" ? .buy : .sell,
                entry: EAReader.double(EAReader.value(payload, "entry")),
                sl: EAReader.double(EAReader.value(payload, "sl")),
                tp: EAReader.double(EAReader.value(payload, "tp")),
                lot: EAReader.double(EAReader.value(payload, "lot")),
                signalID: EAReader.value(payload, "signal_id"), source: EAReader.value(payload, "source"),
                timestamp: MetaTraderTime(EAReader.value(payload, "timestamp")) ?? MetaTraderTime(epochSeconds: 0)))
        if s.fires.count > 10_000 { s.fires.removeFirst(s.fires.count - 10_000) }
    }

    /// The exact bytes that make the EA v2.05 open a hybrid (three-leg) position.
    static let hybridMarker = Array(#""hybrid":{"enabled":true"#.utf8)

    /// The broker side of a faithful EA: a position whose stop loss or take profit the market reached
    /// is closed at that level (balance updated), and nobody is told.
    private func brokerStops(_ ea: inout SimulatedEA, market: MarketWalk) {
        for (ticket, position) in ea.positions {
            guard let q = market.quote(position.symbol) else { continue }
            let price = position.buy ? q.bid : q.ask
            var hit: (String, Double)?
            if position.sl > 0, position.buy ? price <= position.sl : price >= position.sl {
                hit = ("stop_loss", position.sl)
            }
            if position.tp > 0, position.buy ? price >= position.tp : price <= position.tp {
                hit = ("take_profit", position.tp)
            }
            guard let (reason, target) = hit else { continue }
            let slip = reason == "stop_loss" ? configuration.stopSlippage : 0
            let level = position.buy ? target - slip : target + slip
            let profit = market.profit(
                symbol: position.symbol, buy: position.buy, lot: position.lot, open: position.openPrice,
                close: level, currency: ea.currency)
            ea.positions[ticket] = nil
            ea.balance += profit
            ea.equity = ea.balance
            ea.margin = max(0, ea.margin - position.lot * 1000 / 5)
            ea.brokerCloses.append((ticket, reason, level, profit))
        }
    }

    /// The faithful EA reads one command with its substring reader and answers as v2.05 does.
    private func read(_ s: inout State, index: Int, payload: [UInt8]) -> [String] {
        let time = Self.now()
        let receivedAt = Date().timeIntervalSince1970
        var ea = s.eas[index]
        defer { s.eas[index] = ea }
        s.stats.commandsReceived += 1
        s.commandLog.append((ea.uuid, String(decoding: payload, as: UTF8.self)))
        if s.commandLog.count > 1000 { s.commandLog.removeFirst(s.commandLog.count - 1000) }
        let target = EAReader.value(payload, "target_uuid")
        // The EA ignores a command for another UUID.
        guard target.isEmpty || target == ea.uuid else { return [] }
        let type = EAReader.value(payload, "type")
        if s.muted.contains(ea.uuid), type != "ping" {
            if type == "fire" { s.stats.firesReceived += 1 }
            return []
        }
        switch type {
        case "fire":
            s.stats.firesReceived += 1
            let fireID = EAReader.value(payload, "fire_id")
            let brokerSymbol = EAReader.value(payload, "symbol")
            var direction = EAReader.value(payload, "direction")
            if direction.isEmpty { direction = EAReader.value(payload, "side") }
            let entry = EAReader.double(EAReader.value(payload, "entry"))
            let sl = EAReader.double(EAReader.value(payload, "sl"))
            let tp = EAReader.double(EAReader.value(payload, "tp"))
            let lot = EAReader.double(EAReader.value(payload, "lot"))
            let buy = direction == "BUY" || direction == "buy"
            if s.fireReceivedAt.count >= 100_000 { s.fireReceivedAt = [:] }
            s.fireReceivedAt[fireID] = receivedAt
            s.stats.confirmationsSent += 1
            // SymbolSelect fails for a name this broker does not have.
            guard
                let canonical = configuration.allSymbols.first(where: { configuration.brokerName($0) == brokerSymbol })
            else {
                return [
                    EAMessages.confirmation(
                        ea, fireID: fireID, success: false, ticket: 0, price: 0, lot: lot,
                        message: "Symbol not available: \(brokerSymbol)", time: time)
                ]
            }
            guard let q = s.market.quote(canonical) else {
                return [
                    EAMessages.confirmation(
                        ea, fireID: fireID, success: false, ticket: 0, price: 0, lot: lot,
                        message: "No quotes available for \(brokerSymbol)", time: time)
                ]
            }
            if s.market.unit() < configuration.failureRate {
                return [
                    EAMessages.confirmation(
                        ea, fireID: fireID, success: false, ticket: 0, price: 0, lot: lot,
                        message: "Trade execution failed - Error: 4756 Result: 10019", time: time)
                ]
            }
            let price = buy ? q.ask : q.bid
            // A stop or target on the wrong side of the price is zeroed; the confirmation does not say so.
            let keptSL = sl > 0 && (buy ? sl < price : sl > price) ? sl : 0
            let keptTP = tp > 0 && (buy ? tp > price : tp < price) ? tp : 0
            if payload.count >= Self.hybridMarker.count,
                payload.indices.contains(where: { i in
                    i + Self.hybridMarker.count <= payload.count
                        && payload[i..<(i + Self.hybridMarker.count)].elementsEqual(Self.hybridMarker)
                })
            {
                // Hybrid: three legs (25 / 25 / 50 %), ONE confirmation with the first ticket and the total lot.
                let first = s.nextTicket + 1
                for share in [0.25, 0.25, 0.5] {
                    s.nextTicket += 1
                    ea.positions[s.nextTicket] = .init(
                        symbol: canonical, buy: buy, lot: ((lot * share) * 100).rounded() / 100,
                        openPrice: price, sl: keptSL, tp: 0)
                }
                return [
                    EAMessages.confirmation(
                        ea, fireID: fireID, success: true, ticket: first, price: price, lot: lot,
                        message: "HYBRID: 3/3 positions opened", time: time)
                ]
            }
            let volume = lot <= 0 ? 0.01 : lot
            s.nextTicket += 1
            ea.positions[s.nextTicket] = .init(
                symbol: canonical, buy: buy, lot: volume, openPrice: price, sl: keptSL, tp: keptTP)
            ea.margin += volume * 1000 / 5
            // The lot echoed is the one requested (0 stays 0 even though 0.01 traded).
            return [
                EAMessages.confirmation(
                    ea, fireID: fireID, success: true, ticket: s.nextTicket, price: price, lot: lot,
                    message: "Trade executed successfully via DEALER", time: time)
            ]
        case "close_ticket":
            s.stats.confirmationsSent += 1
            let ticket = Int(EAReader.value(payload, "ticket")) ?? 0
            guard ticket > 0 else {
                return [
                    EAMessages.closeConfirmation(
                        ea, commandType: "close_ticket", ticket: ticket, closePrice: 0, lot: 0,
                        success: false, message: "Invalid ticket number", time: time)
                ]
            }
            guard let position = ea.positions[ticket] else {
                return [
                    EAMessages.closeConfirmation(
                        ea, commandType: "close_ticket", ticket: ticket, closePrice: 0, lot: 0,
                        success: false, message: "Position not found", time: time)
                ]
            }
            settle(&ea, ticket: ticket, market: s.market)
            return [
                EAMessages.closeConfirmation(
                    ea, commandType: "close_ticket", ticket: ticket, closePrice: 0, lot: position.lot,
                    success: true, message: "Position closed successfully", time: time)
            ]
        case "close_all":
            s.stats.confirmationsSent += 1
            var volume = 0.0
            let tickets = ea.positions.keys.sorted()
            for ticket in tickets {
                volume += ea.positions[ticket]?.lot ?? 0
                settle(&ea, ticket: ticket, market: s.market)
            }
            let message = "Closed \(tickets.count) positions, 0 failed, Total volume: \(EAMessages.money(volume))"
            return [
                EAMessages.closeConfirmation(
                    ea, commandType: "close_all", ticket: 0, closePrice: 0, lot: volume,
                    success: true, message: message, time: time)
            ]
        case "ping":
            s.stats.pongsSent += 1
            return [EAMessages.pong(ea, pingID: EAReader.value(payload, "ping_id"), time: time)]
        default:
            logger.debug("simulated EA: unknown command type", metadata: ["type": "\(type)"])
            return []
        }
    }

    /// Closes a position at the market (bid for a BUY, ask for a SELL) and books its profit.
    @discardableResult
    private func settle(_ ea: inout SimulatedEA, ticket: Int, market: MarketWalk) -> Double? {
        guard let position = ea.positions[ticket], let q = market.quote(position.symbol) else { return nil }
        let closePrice = position.buy ? q.bid : q.ask
        ea.positions[ticket] = nil
        ea.balance += market.profit(
            symbol: position.symbol, buy: position.buy, lot: position.lot, open: position.openPrice,
            close: closePrice, currency: ea.currency)
        ea.equity = ea.balance
        ea.margin = max(0, ea.margin - position.lot * 1000 / 5)
        return closePrice
    }

    /// The idealised EA (load benchmarks only): answers the commands that arrive on its DEALER at
    /// once, with Bitten's own parser, real close prices and one answer per closed ticket.
    func answer(index: Int, payload: [UInt8]) -> [String] {
        let receivedAt = Date().timeIntervalSince1970
        let command: EACommand
        do {
            command = try EACommand.decode(payload)
        } catch {
            logger.warning("simulated EA could not read a command", metadata: ["error": "\(error)"])
            return []
        }
        let time = Self.now()
        return state.withLock { s -> [String] in
            guard index < s.eas.count else { return [] }
            s.stats.commandsReceived += 1
            if case .fire(let fire) = command {
                if s.fireReceivedAt.count >= 100_000 { s.fireReceivedAt = [:] }
                s.fireReceivedAt[fire.fireID] = receivedAt
                s.fires.append(fire)
                if s.fires.count > 10_000 { s.fires.removeFirst(s.fires.count - 10_000) }
            }
            // The real EA ignores commands addressed to another UUID.
            guard command.targetUUID == s.eas[index].uuid, !s.eas[index].stopped else { return [] }
            if s.muted.contains(s.eas[index].uuid), !isPing(command) { return [] }
            var ea = s.eas[index]
            defer { s.eas[index] = ea }
            let reply: [String]
            switch command {
            case .fire(let fire):
                s.stats.firesReceived += 1
                let lot = fire.lot <= 0 ? 0.01 : fire.lot
                let canonical =
                    configuration.allSymbols.first { configuration.brokerName($0) == fire.symbol } ?? fire.symbol
                let failed = s.market.unit() < configuration.failureRate
                if failed || s.market.quote(canonical) == nil {
                    reply = [
                        EAMessages.confirmation(
                            ea, fireID: fire.fireID, success: false, ticket: 0, price: 0, lot: lot,
                            message: "Trade execution failed - Error: 4756 Result: 10019", time: time)
                    ]
                } else {
                    let q = s.market.quote(canonical)!
                    let price = fire.direction == .buy ? q.ask : q.bid
                    s.nextTicket += 1
                    ea.positions[s.nextTicket] = .init(
                        symbol: canonical, buy: fire.direction == .buy, lot: lot, openPrice: price,
                        sl: 0, tp: 0)
                    ea.margin += lot * 1000 / 5
                    reply = [
                        EAMessages.confirmation(
                            ea, fireID: fire.fireID, success: true, ticket: s.nextTicket,
                            price: price, lot: lot, message: "Trade executed successfully via DEALER", time: time)
                    ]
                }
                s.stats.confirmationsSent += 1
            case .closeTicket(_, let ticket, _):
                reply = [idealClose(&ea, ticket: ticket, market: s.market, commandType: "close_ticket", time: time)]
                s.stats.confirmationsSent += 1
            case .closeAll:
                let tickets = ea.positions.keys.sorted()
                reply =
                    tickets.isEmpty
                    ? [
                        EAMessages.closeConfirmation(
                            ea, commandType: "close_all", ticket: 0, closePrice: 0, lot: 0, success: true,
                            message: "No positions", time: time)
                    ]
                    : tickets.map {
                        idealClose(&ea, ticket: $0, market: s.market, commandType: "close_all", time: time)
                    }
                s.stats.confirmationsSent += reply.count
            case .ping(_, let pingID, _):
                reply = [EAMessages.pong(ea, pingID: pingID, time: time)]
                s.stats.pongsSent += 1
            }
            s.stats.sent += reply.count
            return reply
        }
    }

    private func isPing(_ command: EACommand) -> Bool {
        if case .ping = command { return true }
        return false
    }

    private func idealClose(_ ea: inout SimulatedEA, ticket: Int, market: MarketWalk, commandType: String, time: String)
        -> String
    {
        guard let position = ea.positions[ticket], let closePrice = settle(&ea, ticket: ticket, market: market) else {
            return EAMessages.closeConfirmation(
                ea, commandType: commandType, ticket: ticket, closePrice: 0, lot: 0,
                success: false, message: "Position not found", time: time)
        }
        return EAMessages.closeConfirmation(
            ea, commandType: commandType, ticket: ticket, closePrice: closePrice,
            lot: position.lot, success: true, message: "Position closed", time: time)
    }
}
