import BittenCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// Counters of a running fleet.
public struct FleetStats: Sendable, Equatable {
    /// EAs connected.
    public var connected = 0
    /// Messages sent, all sockets.
    public var sent = 0
    /// TICK messages sent on 5556.
    public var ticksSent = 0
    /// HEARTBEAT messages sent on 5555.
    public var heartbeatsSent = 0
    /// Commands read from 5555.
    public var commandsReceived = 0
    /// `fire` commands read.
    public var firesReceived = 0
    /// Trade confirmations sent on 5558.
    public var confirmationsSent = 0
    /// Answers to the server's pings.
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
        /// The bars completed at this tick interval's first phase, sent by the EAs of every phase of it.
        var completedBars: [String: (time: Int, open: Double, high: Double, low: Double, close: Double)] = [:]
        var fires: [FireCommand] = []
        var fireReceivedAt: [String: Double] = [:]
        var muted: Set<String> = []
        var commandLog: [(uuid: String, text: String)] = []
    }

    /// How many EAs, where they connect, how they behave.
    public let configuration: FleetConfiguration
    let logger: Logger
    let state: Mutex<State>
    let sockets = Mutex<[EASockets]>([])
    let loops: [SocketLoop]
    let ready = Mutex<Bool>(false)

    /// A fleet; it connects when it runs.
    public init(configuration: FleetConfiguration, logger: Logger) throws {
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

    /// Connects every EA, then sends on schedule and answers commands until shutdown.
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
    func openEA(index: Int, identity: [UInt8], shared: (LoopSocket, LoopSocket)?) async throws -> EASockets {
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

    func connectAll() async throws {
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
        logger.info("simulated EAs connected", metadata: ["bitten.count": "\(eas.count)"])
    }

}
