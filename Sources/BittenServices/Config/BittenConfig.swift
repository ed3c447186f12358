import BittenCore
import Redis

/// Every setting of a running Bitten, resolved and validated.
public struct BittenConfig: Sendable, Equatable {
    /// An external Redis; nil means `bitten up` starts a managed local redis-server.
    public var redisURL: RedisURL?
    /// An external Redis Cluster (`BITTEN_REDIS_URL=redis-cluster://host:port[,host:port…]`).
    public var redisCluster: RedisClusterURL?
    /// With no URL: a managed local cluster (three primaries, one replica each) instead of one
    /// redis-server (`BITTEN_REDIS_CLUSTER`, `--redis-cluster`).
    public var managedCluster = false
    /// Whether the state lives on a Redis Cluster (external or managed).
    public var onCluster: Bool { redisCluster != nil || (redisURL == nil && managedCluster) }
    /// Managed Redis data, logs, spool, pid file.
    public var dataDir: String = "./data"
    /// Where HTTP binds.
    public var httpHost: String = "127.0.0.1"
    /// Where EA-facing ZeroMQ sockets bind (`*` = all interfaces).
    public var zmqHost: String = "*"
    /// EA command channel (ROUTER).
    public var commandPort: Int = 5555
    /// EA market data (PULL).
    public var marketPort: Int = 5556
    /// Shielded signals out (PUB).
    public var signalPort: Int = 5557
    /// EA confirmations (PULL).
    public var confirmPort: Int = 5558
    /// Signals in from a signal engine (PULL).
    public var signalInPort: Int = 5559
    /// Market-data relay (PUB).
    public var relayPort: Int = 5560
    /// Alerts (PUB).
    public var alertPort: Int = 5565
    /// CITADEL queries (REP).
    public var queryPort: Int = 5566
    /// HTTP API and dashboard.
    public var httpPort: Int = 5567
    /// Seconds without a heartbeat before a node is dead.
    public var heartbeatTimeout: Double = 60
    /// Seconds between two alerts about the same node.
    public var alertCooldown: Double = 300
    /// Seconds between pings to each online EA.
    public var pingInterval: Double = 30
    /// Relay format on 5560: `topic` (two frames) or `legacy` (one frame).
    public var relayFormat: RelayFormat = .topic
    /// Silence node alerts from Friday 22:00 to Sunday 22:00 UTC, when heartbeats stop with the market.
    public var suppressAlertsWhenMarketClosed = true
    /// Bearer token for mutating HTTP calls.
    public var apiToken: String?
    /// Whether read-only HTTP calls need the token too (`BITTEN_PROTECT_READS`).
    public var protectReads = false
    /// Messages per second each EA may send on 5555 and on 5556 (bursts up to twice that); 0 = no limit.
    public var eaRateLimit: Double = 2000
    /// The per-EA token bucket of `eaRateLimit` (rate, and bursts of twice it); nil when there is no limit.
    public var eaRateLimitBucket: (rate: Double, burst: Double)? {
        eaRateLimit > 0 ? (eaRateLimit, 2 * eaRateLimit) : nil
    }
    /// Allocations of at least this many bytes get their own mapping, handed back to the system when
    /// freed (`BITTEN_MALLOC_MMAP_THRESHOLD`, glibc's M_MMAP_THRESHOLD; 0 = glibc's default). libzmq's
    /// per-connection buffers (8–18 kB) otherwise fragment the heap as EAs come and go.
    public var mallocMmapThreshold = 8192
    /// CURVE on the EA-facing sockets (`BITTEN_CURVE`): off by default, for EAs without keys.
    public var curve = false
    /// This process's gateway id (`BITTEN_GATEWAY_ID`, `--gateway-id`): recorded on each node it
    /// serves, names its command inbox, its confirmation writer and consumer.
    public var gatewayID = "gateway-1"
    /// Seconds to wait for an EA's confirmation before a command is `timed_out`.
    public var fireTimeout: Double = 30
    /// Trade shards (`BITTEN_TRADE_SHARDS`): users are spread over them by a stable hash of the UUID; each has
    /// one writer. Every process of a deployment must use the same number (it decides which ledger stream
    /// and keys a user's records are in).
    public var tradeShards = 16
    /// Ledger messages a trade shard applies ahead of its commits (`BITTEN_TRADE_APPLY_AHEAD`): past this, a
    /// burst of confirmations waits for a commit to store them, so no commit holds Redis for long. Lower: shorter
    /// waits for everyone else during a burst; higher: fewer, larger commits (more confirmations per second).
    public var tradeApplyAhead = 256
    /// Days a trade shard's confirmation ledger keeps the entries its commits have stored
    /// (`BITTEN_LEDGER_RETENTION_DAYS`, 0 = for ever): older ones are trimmed, so the ledger does not grow for
    /// ever. An entry the shard's checkpoint has not passed is never trimmed.
    public var ledgerRetentionDays: Double = 30
    /// Base risk per trade in percent (1-2).
    public var baseRiskPercent: Double = 1.0
    /// Each tier's default risk limits (`tiers:` in the config file: `daily_loss`, `drawdown`, `open_risk`,
    /// `exposure_lots`, `trades_per_day`, `loss_streak` + `cooldown_minutes`); a tier not listed has none.
    public var riskLimits: [Tier: RiskLimits] = [:]
    /// What an open trade without a stop loss counts as in the open-risk limit, in % of the balance
    /// (`BITTEN_NO_STOP_RISK`).
    public var noStopRiskPercent: Double = 10
    /// The service's concentration limits (`BITTEN_MAX_LOTS_PER_SYMBOL`, `BITTEN_MAX_LOTS_PER_SIGNAL`).
    public var concentration = ConcentrationLimits()
    /// Whether the flight recorder keeps every signal's and fire's steps (`BITTEN_FLIGHT_RECORDER`).
    public var flightRecorder = true
    /// Lifetime of a signal that arrives without `expires_at`, in seconds.
    public var signalTTL: Double = 7200
    /// Where trade events are POSTed, if anywhere.
    public var webhookURL: String?
    /// The Telegram front (`BITTEN_TELEGRAM_*`).
    public var telegram = TelegramConfig()
    /// A crash the trade engine stages on purpose, for the fault tests only (`TradeEngine.Fault`).
    public var faultInjection: TradeEngine.Fault?
    /// Slots, maximum risk and risk multiplier per tier (config file section `tiers:`).
    public var tiers = TierTable.standard
    /// Symbols that can be sized (config file section `instruments:`).
    public var instruments = InstrumentTable.standard
    /// How a confirmation's or registration's peer address must match the node's pinned one
    /// (`BITTEN_EA_PEER_CHECK`: `exact`, `/24`, `off`).
    public var eaPeerCheck = PeerMatch.exact
    /// Seconds after which the command channel (5555) gives up on a connection: one that sent nothing
    /// since it connected (libzmq refused its routing id, held by another live connection) is dropped, and
    /// a node's connection silent that long while the node is heard on its other channels is dropped as
    /// stale (`BITTEN_EA_LINK_TIMEOUT`). Longer
    /// than the EA's own 30 s heartbeat, so that a live EA is never cut off.
    public var eaLinkTimeout: Double = 45
    /// Milliseconds the EA-facing socket loops (5555 + 5558, 5556 + 5560) wait after a wake-up that received
    /// before they read a busy socket again (`BITTEN_SOCKET_COALESCE_MS`, 0 = read at once; see
    /// `SocketLoop.init`). Sends never wait; received messages at most this long.
    public var socketCoalesceMilliseconds: Double = 1
    /// Source networks allowed to connect to 5555, 5556 and 5558 (`BITTEN_EA_NETWORKS`, CIDRs); nil = any.
    public var eaNetworks: NetworkAllowList?
    /// Seconds after which a pending account switch is approved when the pinned account never came back
    /// (`BITTEN_SWITCH_APPROVE_AFTER`; 0 = only an operator approves).
    public var switchApprovalAfter: Double = 0
    /// Broker names that are another instrument (config file section `symbol_aliases:`, e.g. `GOLD: XAUUSD`),
    /// on top of the usual ones (`SymbolCanon.standardAliases`).
    public var symbolAliases = SymbolCanon.standardAliases
    /// Maps broker symbols to canonical instruments.
    public var symbolCanon: SymbolCanon { SymbolCanon(known: instruments.instruments.keys, aliases: symbolAliases) }
    /// CITADEL's settings (`BITTEN_CITADEL_MULTIPLIERS`, `BITTEN_CITADEL_SWEEP_PIPS`, `BITTEN_CITADEL_ALERT_COOLDOWN`).
    public var citadel = CitadelSettings()

    /// Relay formats of the market-data PUB.
    public enum RelayFormat: String, Sendable {
        case topic, legacy
    }

    /// The defaults.
    public init() {}

    /// `tcp://HOST:PORT` for an EA-facing or internal ZeroMQ port.
    public func endpoint(_ port: Int) -> String { "tcp://\(zmqHost):\(port)" }
}
