/// How a simulated fleet of EAs behaves.
public struct FleetConfiguration: Sendable {
    /// How closely the simulated EAs follow the production EA v2.05.
    public enum Fidelity: Sendable, Equatable {
        /// As the EA v2.05 does (the default, and what every end-to-end test uses): commands read by the
        /// EA's substring reader, one per tick of the chart symbol; text in Windows-1252; symbols named
        /// as the broker names them; `close_price` always 0; one `close_all` answer with ticket 0; stop
        /// loss and take profit hit at the broker without a report; a stop on the wrong side dropped.
        case v205
        /// The EA we would like: every command answered at once with Bitten's own parser, real close
        /// prices, one answer per closed ticket. For load benchmarks only.
        case idealised
    }

    /// The EA behaviour simulated.
    public var fidelity: Fidelity = .v205
    /// Number of EAs.
    public var count: Int
    /// Server host the EAs connect to.
    public var host: String
    /// The server's command port (5555).
    public var commandPort: Int
    /// The server's market-data port (5556).
    public var marketPort: Int
    /// The server's confirmation port (5558).
    public var confirmPort: Int
    /// Every EA's UUID is `uuidPrefix` + a 7-digit number + `x`.
    public var uuidPrefix: String = "user_sim_"
    /// First account number (EA i gets accountBase + i).
    public var accountBase: Int = 70_000_000
    /// The trade server's name (HELLO `broker`, handshake `server`).
    public var broker: String = "Bitten-Sim"
    /// The broker firm (HELLO `company`, handshake `broker`), written in Windows-1252 like the EA's
    /// terminal does (`é` is the byte 0xE9 on the wire).
    public var company: String = "Bitten Courtage Simulé"
    /// The accounts' currency.
    public var currency: String = "USD"
    /// Every account's starting balance.
    public var balance: Double = 10_000
    /// Appended to every canonical symbol to make the broker's name (`.r`, `m`, `-ECN`), unless
    /// `brokerSymbols` names it.
    public var symbolSuffix: String = ""
    /// The broker's name of a canonical symbol (`XAUUSD` → `GOLD`, `US30` → `[DJI30]`).
    public var brokerSymbols: [String: String] = [:]
    /// How far past a stop loss the simulated broker fills it (slippage, in price units, against the
    /// trader); 0 fills at the level.
    public var stopSlippage: Double = 0
    /// Market Watch symbols that are ticked but not traded, besides `symbols` (the EA ticks its whole
    /// Market Watch list).
    public var marketWatch: [String] = []
    /// Seconds between heartbeats on each channel (the real EA: 30 s).
    public var heartbeatInterval: Duration = .seconds(30)
    /// Heartbeat phases: 1 sends every EA's heartbeat at once; n sends a 1/n share of the EAs every
    /// interval/n, as independent terminals do (each EA still beats once per interval); 0 gives each loop
    /// thread's EAs a phase of their own (the finest spread: a wave wakes one loop).
    public var heartbeatPhases: Int = 1
    /// How often each EA sends a TICK for each of its symbols.
    public var tickInterval: Duration? = .seconds(1)
    /// Tick phases, as `heartbeatPhases`: 1 sends every EA's ticks at once (the market moves once per
    /// interval, at the first phase); n sends a 1/n share every interval/n, as terminals whose one-second
    /// timers run on clocks of their own do; 0 gives each loop thread's EAs a phase of their own.
    public var tickPhases: Int = 1
    /// Symbols each EA monitors.
    public var symbols: [String] = ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"]
    /// Share of fires answered with a failed confirmation.
    public var failureRate: Double = 0
    /// Send an M1 OHLC bar per symbol every minute.
    public var sendOHLC: Bool = true
    /// When set, the EAs share this many PUSH sockets per channel instead of one each (the real EA has
    /// its own; sharing keeps a 5 000-EA load test within one process's descriptor limit). Each EA
    /// keeps its own DEALER and identity.
    public var sharedPushSockets: Int?
    /// Sockets per loop thread (at most `maxLoops` threads). Every wake-up of a loop costs time in
    /// proportion to its sockets (`zmq_poll` registers each one again), so fewer per loop means a
    /// command reaches its simulated EA sooner.
    public var socketsPerLoop: Int = 3000
    /// Loop threads at most.
    public var maxLoops: Int = 4

    /// A fleet of `count` EAs against `host`.
    public init(
        count: Int, host: String = "127.0.0.1", commandPort: Int = 5555, marketPort: Int = 5556,
        confirmPort: Int = 5558, heartbeatInterval: Duration = .seconds(30), tickInterval: Duration? = .seconds(1)
    ) {
        self.count = count
        self.host = host
        self.commandPort = commandPort
        self.marketPort = marketPort
        self.confirmPort = confirmPort
        self.heartbeatInterval = heartbeatInterval
        self.tickInterval = tickInterval
    }

    /// The broker's name of a canonical symbol.
    public func brokerName(_ canonical: String) -> String { brokerSymbols[canonical] ?? canonical + symbolSuffix }

    /// Every Market Watch symbol (canonical names): the traded ones first.
    public var allSymbols: [String] { symbols + marketWatch.filter { !symbols.contains($0) } }

    /// The UUID of EA number `index`. It ends in `x` so that the identity frame (the UUID minus its
    /// last character, as the real EA sends it) is unique per EA.
    public func uuid(_ index: Int) -> String {
        let digits = String(index)
        return uuidPrefix + String(repeating: "0", count: max(0, 7 - digits.count)) + digits + "x"
    }
}
