import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// An inferred close in the ledger: the position watcher saw the market cross a stop loss or take
/// profit, which the EA v2.05 never reports.
public enum InferredClose {
    /// The ledger entry's `type`.
    public static let type = "inferred_close"
}

/// Watches the market for every open position: when the bid (a BUY) or the ask (a SELL) crosses the
/// stop loss or take profit, the broker has closed the position, and the EA v2.05 says nothing. The
/// watcher appends an inferred close to the user's ledger (`stream:confirmations:{tN}`, type `inferred_close`,
/// valued at the level), so the shard's owner closes the position in order with everything else, once,
/// and frees its slot. The quote is the user's own EA's when it has one, else any EA's.
///
/// Afterwards it compares the EA's next heartbeat balance with the balance before plus the inferred
/// profit: a difference is logged and counted (`bitten_inferred_close_balance_mismatch_total`); the
/// inference stands.
///
/// Every `refreshEvery` seconds it learns which positions are open in the shards whose ledger moved, and reads the
/// records of those it does not watch yet (a record does not change while its position is open); every
/// `fullRefreshEvery` seconds it reads every record again.
public final class PositionWatcher: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "position_watcher"

    struct Watched: Sendable {
        var position: PositionRecord
        var requested = false
    }

    struct BalanceCheck: Sendable {
        var uuid: String
        var ticket: Int
        var balanceBefore: Double
        var heartbeatBefore: Double
        var profit: Double
        var at: Double
    }

    private let store: TradeStore
    private let redis: RedisClient
    private let quotes: any QuoteSource
    private let registry: NodeRegistry?
    private let board: ServiceBoard
    private let logger: Logger
    private let interval: Duration
    private let refreshEvery: Double
    private let fullRefreshEvery: Double
    private let maxQuoteAge: Double
    private let now: @Sendable () -> Double
    private let onAppended: @Sendable () -> Void
    /// The watched positions by ticket, when they were last refreshed (and every record read again), the balance
    /// checks waiting, and each shard's checkpoint when its positions were last read ("" for none).
    private let state = Mutex<
        (
            positions: [Int: Watched], refreshedAt: Double, fullyReadAt: Double, checks: [BalanceCheck],
            read: [Int: String]
        )
    >(([:], 0, 0, [], [:]))
    private let inferred = Counter(label: "bitten_inferred_closes_total")
    private let mismatches = Counter(label: "bitten_inferred_close_balance_mismatch_total")

    /// A watcher over the store's open positions and the latest quotes.
    public init(
        store: TradeStore, redis: RedisClient, quotes: any QuoteSource, registry: NodeRegistry?, board: ServiceBoard,
        logger: Logger, interval: Duration = .milliseconds(250), refreshEvery: Double = 2,
        fullRefreshEvery: Double = 30,
        maxQuoteAge: Double = 30,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        onAppended: @escaping @Sendable () -> Void = {}
    ) {
        self.store = store
        self.redis = redis
        self.quotes = quotes
        self.registry = registry
        self.board = board
        self.logger = logger
        self.interval = interval
        self.refreshEvery = refreshEvery
        self.fullRefreshEvery = fullRefreshEvery
        self.maxQuoteAge = maxQuoteAge
        self.now = now
        self.onAppended = onAppended
        board.register(Self.name)
    }

    /// Runs until the group shuts down.
    public func run() async throws {
        board.set(Self.name, .running)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await check()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            }
        } onGracefulShutdown: {
        }
        board.set(Self.name, .stopped)
    }

    /// Which level the market crossed, if any: (reason, level).
    static func crossed(_ p: PositionRecord, bid: Double, ask: Double) -> (String, Double)? {
        let buy = p.direction == "BUY"
        let price = buy ? bid : ask
        if p.sl > 0, buy ? price <= p.sl : price >= p.sl { return ("stop_loss", p.sl) }
        if p.tp > 0, buy ? price >= p.tp : price <= p.tp { return ("take_profit", p.tp) }
        return nil
    }

    /// The tickets watched now.
    var watchedTickets: Set<Int> { state.withLock { Set($0.positions.keys) } }

    /// One pass: refresh the open positions now and then, look for crossed levels, append inferred
    /// closes, and settle the balance checks whose heartbeat has come.
    public func check() async {
        let at = now()
        // Without a single live quote nothing can have crossed: no need to read the positions.
        guard quotes.latestQuotes.values.contains(where: { at - $0.receivedAt <= maxQuoteAge }) else { return }
        if state.withLock({ at - $0.refreshedAt >= refreshEvery }) {
            do {
                // Only the shards whose checkpoint moved since their positions were read (a shard's positions change
                // only with the ledger entries it applies): with nothing happening, one HGET per shard, not one
                // HGETALL per open position.
                // Of those, only the positions not watched yet are read whole (a position's record does not change
                // while it is open); the others only need to be still in their shard's open set. Every
                // `fullRefreshEvery` seconds every record is read again all the same.
                let checkpoints = try await store.checkpoints()
                let (read, full, watched) = state.withLock { s in
                    (s.read, at - s.fullyReadAt >= fullRefreshEvery, Set(s.positions.keys))
                }
                let known = full ? [] : watched
                let stale = Set(checkpoints.indices.filter { full || read[$0] != (checkpoints[$0] ?? "") })
                let (open, new) =
                    stale.isEmpty
                    ? ([], []) : try await store.openPositions(shards: stale, skipping: known)
                state.withLock { s in
                    var next = s.positions.filter {
                        !stale.contains(ShardKeys.shard(of: $0.value.position.userUUID, count: store.shards))
                            || (known.contains($0.key) && open.contains($0.key))
                    }
                    for position in new {
                        next[position.ticket] = Watched(
                            position: position, requested: s.positions[position.ticket]?.requested ?? false)
                    }
                    s.positions = next
                    for shard in stale { s.read[shard] = checkpoints[shard] ?? "" }
                    s.refreshedAt = at
                    if full { s.fullyReadAt = at }
                }
            } catch {
                board.count(Self.name, errors: 1)
                logger.debug("open positions not readable", metadata: ["bitten.error": "\(error)"])
            }
        }
        let due: [(PositionRecord, String, Double, Double)] = state.withLock { s in
            var due: [(PositionRecord, String, Double, Double)] = []
            for (ticket, watched) in s.positions where !watched.requested {
                let p = watched.position
                guard p.sl > 0 || p.tp > 0 else { continue }
                let quote =
                    quotes.quote(p.symbol, of: p.userUUID).flatMap { at - $0.receivedAt <= maxQuoteAge ? $0 : nil }
                    ?? quotes.quote(p.symbol).flatMap { at - $0.receivedAt <= maxQuoteAge ? $0 : nil }
                guard let quote, let (reason, level) = Self.crossed(p, bid: quote.bid, ask: quote.ask) else { continue }
                s.positions[ticket]?.requested = true
                due.append((p, reason, level, quote.receivedAt))
            }
            return due
        }
        for (position, reason, level, crossedAt) in due {
            await append(position, reason: reason, level: level, crossedAt: crossedAt, at: at)
        }
        settleChecks(at: at)
    }

    private func append(_ p: PositionRecord, reason: String, level: Double, crossedAt: Double, at: Double) async {
        let price = PlainDecimal.format(level, maxFractionDigits: 8) ?? "0"
        do {
            _ = try await redis.command([
                "XADD", TradeEngine.ledger(of: p.userUUID, shards: store.shards), "*", "type", InferredClose.type,
                "user_uuid", p.userUUID,
                "ticket", String(p.ticket), "reason", reason, "price", price,
                "received_at", PlainDecimal.format(at, maxFractionDigits: 6) ?? "0", "entry_id", "watcher:\(p.ticket)",
            ]).orThrow()
        } catch {
            // Not in the ledger: looked at again after the next refresh.
            state.withLock { $0.positions[p.ticket]?.requested = false }
            board.count(Self.name, errors: 1)
            logger.warning(
                "inferred close not appended",
                metadata: ["bitten.position.ticket": "\(p.ticket)", "bitten.error": "\(error)"])
            return
        }
        inferred.increment()
        board.count(Self.name, out: 1)
        onAppended()
        logger.notice(
            "position closed at the broker (inferred: the market crossed its level)",
            metadata: [
                "bitten.position.ticket": "\(p.ticket)", "bitten.node.uuid": "\(p.userUUID)",
                "bitten.reason": "\(reason)",
                "bitten.price": "\(price)",
            ])
        // The balance before the close: the EA's last heartbeat's, when that came before the crossing quote (the
        // broker closed the position then); a heartbeat after it may already carry the close: no comparison.
        let profit = p.profit(bid: level, ask: level)
        guard let before = registry?.node(p.userUUID), before.lastHeartbeat > 0, before.lastHeartbeat < crossedAt
        else { return }
        state.withLock { s in
            s.checks.append(
                BalanceCheck(
                    uuid: p.userUUID, ticket: p.ticket, balanceBefore: before.balance,
                    heartbeatBefore: before.lastHeartbeat, profit: profit, at: at))
        }
    }

    /// A heartbeat after an inferred close carries the balance after it: compare (only when it is the
    /// only inferred close of that user waiting, so the difference is about this one).
    private func settleChecks(at: Double) {
        guard let registry else { return }
        let ready: [(BalanceCheck, Double)] = state.withLock { s in
            var ready: [(BalanceCheck, Double)] = []
            let all = s.checks
            s.checks.removeAll { check in
                if at - check.at > 600 { return true }
                guard let node = registry.node(check.uuid), node.lastHeartbeat > check.heartbeatBefore,
                    node.lastHeartbeat > check.at
                else { return false }
                if all.filter({ $0.uuid == check.uuid }).count == 1 { ready.append((check, node.balance)) }
                return true
            }
            return ready
        }
        for (check, balance) in ready {
            let seen = balance - check.balanceBefore
            guard abs(seen - check.profit) > max(0.05, abs(check.profit) * 0.02) else { continue }
            mismatches.increment()
            logger.warning(
                "inferred close and the EA's balance disagree (the inference stands)",
                metadata: [
                    "bitten.position.ticket": "\(check.ticket)", "bitten.node.uuid": "\(check.uuid)",
                    "bitten.position.inferred_profit": "\(check.profit)",
                    "bitten.position.balance_change": "\((seen * 100).rounded() / 100)",
                ])
        }
    }
}
