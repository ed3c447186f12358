import BittenCore
import Foundation
import Logging
import Redis

/// The service's concentration limits on the fire desk. A fire holds its lots against the symbol's and the signal's
/// totals across all users after its reservation and before its send: one Lua step for both keys (`hold_lots`: on
/// each key the running total plus the lots must stay within the limit; the hold is a field of its own,
/// `h:FIRE_ID`; held on both or on none), each step carrying every fire's hold that arrived since the trade engine's
/// last commit round, inside the next round (`LotHolds` riding the engine, `CommitRider`).
/// Once a second the owner of each shard writes its exact lots (open positions and fires in flight, from memory)
/// into its field and removes the holds that figure now counts, in one Lua step per key (`resync_lots`): the lots of
/// fires that ended come off, and a hold is never counted twice.
extension FireDesk {
    /// Submits a reserved fire's hold on its symbol's and its signal's totals (nil: no concentration limit applies
    /// to it). Costs the caller no task: the fire desk submits it while the reservation is being stored and reads
    /// the answer (`concentrationRefusal`) after.
    func startConcentrationHold(
        fireID: String, symbol: String, signalID: String, lot: Double, signalExpiresAt: Double, at: Double
    ) -> ConcentrationHold? {
        let limits = settings.concentration
        var checks: [ConcentrationHold.Check] = []
        if let limit = limits.limit(symbol: symbol) {
            checks.append(
                .init(limit: .init(key: RedisKeys.concentrationSymbol(symbol), limit: limit, ttl: 0), what: symbol))
        }
        if let limit = limits.perSignal {
            let ttl = max(60, Int(signalExpiresAt - at) + 2 * 86_400)
            checks.append(
                .init(
                    limit: .init(key: RedisKeys.concentrationSignal(signalID), limit: limit, ttl: ttl),
                    what: "signal \(signalID)"))
        }
        guard !checks.isEmpty else { return nil }
        // Every key in one step (held on all or none), gathered with the other fires' holds on the same keys.
        let ticket = lotHolds.submit(field: "h:" + fireID, lots: lot, on: checks.map(\.limit))
        return ConcentrationHold(fireID: fireID, lot: lot, checks: checks, ticket: ticket)
    }

    /// What became of a submitted hold: nil when held (and then recorded as this process's), else the refusal (a
    /// limit would be passed, or the totals could not be read). Read once per hold.
    func concentrationRefusal(_ hold: ConcentrationHold) async -> FireRefusal? {
        switch await hold.ticket.answer {
        case .success(let answer) where answer.held:
            concentration.withLock { state in
                for check in hold.checks { state.holds[check.limit.key, default: []].insert(hold.fireID) }
            }
            return nil
        case .success(let answer):
            let check = hold.checks[min(answer.refusedBy ?? 0, hold.checks.count - 1)]
            return FireRefusal(
                .concentrationLimit,
                "\(check.what) has \(n(answer.total)) lots open or in flight across all users; \(n(hold.lot)) more would pass the limit of \(n(check.limit.limit))"
            )
        case .failure(let error):
            return FireRefusal(.storeUnavailable, "the concentration totals could not be read: \(error)")
        }
    }

    /// Gives back the lots a fire held (a fire that will not be sent: its reservation was not stored).
    func releaseConcentration(_ fireID: String) async {
        let field = "h:" + fireID
        let keys = concentration.withLock { state in state.holds.filter { $0.value.contains(fireID) }.map(\.key) }
        for key in keys.sorted() {
            await errors.attempt("concentration_release", fireID) {
                _ = try await store.redis.evaluate(LuaScripts.resyncLots, keys: [key], args: ["", "0", "0", field])
            }
        }
        concentration.withLock { state in
            for key in keys {
                state.holds[key]?.remove(fireID)
                if state.holds[key]?.isEmpty == true { state.holds[key] = nil }
            }
        }
    }

    /// Each owned shard's exact lots into the totals, and the holds they now count removed (once a second). Once a
    /// minute every key ever held is looked through as well, for holds an earlier process left (a crash).
    func resyncConcentration(at: Double) async {
        guard !settings.concentration.isEmpty else { return }
        guard
            concentration.withLock({ state in
                at - state.syncedAt >= 1
                    ? {
                        state.syncedAt = at
                        return true
                    }() : false
            })
        else { return }
        // Once a minute, and as soon as a shard is owned that was not looked through yet (at start the shards load
        // after the first sweeps: a scan before that would find nothing to clear and wait a minute).
        let owned = Set(engine.ownedShardIndices)
        let scan = concentration.withLock { state in
            guard !owned.isEmpty, at - state.scannedAt >= 60 || !owned.isSubset(of: state.scannedShards) else {
                return false
            }
            state.scannedAt = at
            state.scannedShards = owned
            return true
        }
        var extra: [String] = []
        if scan, let all = try? await store.redis.command(["SMEMBERS", RedisKeys.concentrationKeys]).array {
            extra = all.compactMap(\.string)
        }
        await resync(keys: extra, shards: nil, scanning: scan)
    }

    /// Writes the exact lots of the owned shards (`shards`: only these) for the keys they hold, held or wrote
    /// before, and `keys`.
    func resync(keys: [String], shards only: Set<Int>?, scanning: Bool = false) async {
        // The holds in Redis are read before the shards: a fire holds its lots only once its reservation is in its
        // shard's memory, so a hold read here whose fire the shard does not know was left by a process that died
        // before the reservation was stored (its lots were never going to be sent), and goes.
        var leftovers: [String: [String]] = [:]
        if scanning, !keys.isEmpty, let replies = try? await store.redis.pipeline(keys.map { ["HKEYS", $0] }) {
            for (key, reply) in zip(keys, replies) {
                leftovers[key] = (reply.array ?? []).compactMap(\.string).filter { $0.hasPrefix("h:") }
            }
        }
        let snapshots = engine.readAll { shard in
            only.map { $0.contains(shard.index) } ?? true
                ? [(shard.index, shard.heldLots, Set(shard.book.fires.keys))] : []
        }
        guard !snapshots.isEmpty else { return }
        let (before, holds) = concentration.withLock { ($0.written, $0.holds) }
        // The holds by the shard of their fire, sorted out once (not once per shard and key).
        var holdsByShard: [Int: [String: Set<String>]] = [:]
        for (key, fires) in holds {
            for fire in fires {
                guard let index = TradeStore.shard(ofFire: fire) else { continue }
                holdsByShard[index, default: [:]][key, default: []].insert(fire)
            }
        }
        var written: [Int: [String: Double]] = [:]
        var removed: [String: Set<String>] = [:]
        var gone: [String] = []
        do {
            for (shard, held, known) in snapshots {
                let own = holdsByShard[shard] ?? [:]
                var lots: [String: Double] = [:]
                for (symbol, value) in held.bySymbol { lots[RedisKeys.concentrationSymbol(symbol)] = value }
                for (signal, value) in held.bySignal { lots[RedisKeys.concentrationSignal(signal)] = value }
                let previous = before[shard] ?? [:]
                let candidates = Set(lots.keys).union(previous.keys).union(own.keys).union(keys)
                for key in candidates.sorted() {
                    // The holds of this shard's fires that its figure now counts.
                    var clear = (own[key] ?? []).filter { known.contains($0) }
                    // Left in Redis: counted now (known), or never to be sent (unknown to its owner).
                    for name in leftovers[key] ?? [] {
                        let fire = String(name.dropFirst(2))
                        if TradeStore.shard(ofFire: fire) == shard { clear.insert(fire) }
                    }
                    let value = lots[key] ?? 0
                    guard !clear.isEmpty || abs(value - (previous[key] ?? 0)) > 1e-9 || scanning else { continue }
                    let ttl = RedisKeys.isConcentrationSignal(key) ? "172800" : "0"
                    let total = try await store.redis.evaluate(
                        LuaScripts.resyncLots, keys: [key],
                        args: [String(shard), n(value), value > 0 ? ttl : "0"] + clear.sorted().map { "h:" + $0 })
                    if value > 1e-9 { written[shard, default: [:]][key] = value }
                    removed[key, default: []].formUnion(clear)
                    if total.string == "0" { gone.append(key) }
                }
            }
            var commands: [[String]] = []
            let listed = written.values.flatMap(\.keys)
            if !listed.isEmpty { commands.append(["SADD", RedisKeys.concentrationKeys] + Set(listed).sorted()) }
            if !gone.isEmpty { commands.append(["SREM", RedisKeys.concentrationKeys] + Set(gone).sorted()) }
            if !commands.isEmpty { _ = try await store.redis.pipeline(commands) }
            concentration.withLock { state in
                for (shard, _, _) in snapshots { state.written[shard] = written[shard] ?? [:] }
                for (key, fires) in removed {
                    state.holds[key]?.subtract(fires)
                    if state.holds[key]?.isEmpty == true { state.holds[key] = nil }
                }
            }
        } catch {
            logger.warning("concentration totals not written", metadata: ["bitten.error": "\(error)"])
        }
    }
}

/// A fire's concentration hold submitted to `LotHolds`, and what its answer is read against.
struct ConcentrationHold: Sendable {
    /// One key the fire holds on, and how a refusal names it.
    struct Check: Sendable {
        var limit: LotHolds.Limit
        var what: String
    }

    var fireID: String
    var lot: Double
    var checks: [Check]
    var ticket: LotHolds.Ticket
}

/// What the fire desk knows of the concentration totals it writes.
struct ConcentrationState {
    /// When the totals were last written, and every key ever held last looked through.
    var syncedAt = 0.0, scannedAt = 0.0
    /// The shards owned at that look.
    var scannedShards: Set<Int> = []
    /// The lots each shard wrote last time, by key (a key no longer held is set to 0).
    var written: [Int: [String: Double]] = [:]
    /// Holds this process made that no resync has removed yet, by key.
    var holds: [String: Set<String>] = [:]
}
