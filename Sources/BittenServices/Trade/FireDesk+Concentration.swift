import BittenCore
import Foundation
import Logging
import Redis

/// The service's concentration limits on the fire desk. A fire holds its lots against the symbol's and the
/// signal's totals across all users after its reservation and before its send (one Lua step per key: the sum of
/// every field plus the lots must stay within the limit; the hold is a field of its own, `h:FIRE_ID`). Once a
/// second the owner of each shard writes its exact lots (open positions and fires in flight, from memory) into its
/// field and deletes the holds that this figure now counts: the lots of fires that ended come off, and a hold is
/// never counted twice for long (at worst, a hold checked between the two writes sees it twice: a refusal, never an
/// excess).
extension FireDesk {
    /// Holds a reserved fire's lots; the refusal when a limit would be passed (or the totals cannot be read).
    func holdConcentration(
        fireID: String, symbol: String, signalID: String, lot: Double, signalExpiresAt: Double, at: Double
    ) async -> FireRefusal? {
        let limits = settings.concentration
        guard !limits.isEmpty else { return nil }
        let field = "h:" + fireID
        var held: [String] = []
        var checks: [(key: String, limit: Double, ttl: Int, what: String)] = []
        if let limit = limits.limit(symbol: symbol) {
            checks.append((RedisKeys.concentrationSymbol(symbol), limit, 0, symbol))
        }
        if let limit = limits.perSignal {
            let ttl = max(60, Int(signalExpiresAt - at) + 2 * 86_400)
            checks.append((RedisKeys.concentrationSignal(signalID), limit, ttl, "signal \(signalID)"))
        }
        for check in checks {
            do {
                let reply = try await store.redis.evaluate(
                    LuaScripts.holdLots, keys: [check.key], args: [field, n(lot), n(check.limit), String(check.ttl)])
                let parts = reply.array ?? []
                guard parts.count == 2, let total = parts[1].string.flatMap(Double.init) else {
                    await release(held, field: field)
                    return FireRefusal(.storeUnavailable, "the concentration totals answered \(reply)")
                }
                if parts[0].int != 1 {
                    await release(held, field: field)
                    return FireRefusal(
                        .concentrationLimit,
                        "\(check.what) has \(n(total)) lots open or in flight across all users; \(n(lot)) more would pass the limit of \(n(check.limit))"
                    )
                }
                held.append(check.key)
                concentration.withLock { $0.holds[check.key, default: []].insert(fireID) }
            } catch {
                await release(held, field: field)
                return FireRefusal(.storeUnavailable, "the concentration totals could not be read: \(error)")
            }
        }
        return nil
    }

    private func release(_ keys: [String], field: String) async {
        guard !keys.isEmpty else { return }
        await errors.attempt("concentration_release", keys.joined(separator: ",")) {
            _ = try await store.redis.pipeline(keys.map { ["HDEL", $0, field] })
        }
    }

    /// Each owned shard's exact lots, written into its field, and the holds of the fires that figure counts
    /// deleted (once a second).
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
        let snapshots = engine.readAll { shard in [(shard.index, shard.heldLots, Set(shard.book.fires.keys))] }
        guard !snapshots.isEmpty else { return }
        var (before, holds, every) = concentration.withLock { ($0.written, $0.holds, at - $0.scannedAt >= 60) }
        if every {
            // Once a minute every key ever held, so that holds left by an earlier process (a crash) are cleared too.
            if let all = try? await store.redis.command(["SMEMBERS", RedisKeys.concentrationKeys]).array {
                for key in all.compactMap(\.string) where holds[key] == nil { holds[key] = [] }
            }
            concentration.withLock { $0.scannedAt = at }
        }
        var plans: [(shard: Int, key: String, lots: Double?, known: Set<String>)] = []
        var written: [Int: Set<String>] = [:]
        for (shard, held, known) in snapshots {
            var keys: [String: Double] = [:]
            for (symbol, lots) in held.bySymbol { keys[RedisKeys.concentrationSymbol(symbol)] = lots }
            for (signal, lots) in held.bySignal { keys[RedisKeys.concentrationSignal(signal)] = lots }
            for key in Set(keys.keys).union(before[shard] ?? []).union(holds.keys).sorted() {
                plans.append((shard, key, keys[key].flatMap { $0 > 1e-9 ? $0 : nil }, known))
            }
            written[shard] = Set(keys.keys)
        }
        guard !plans.isEmpty else { return }
        let cleared = Set(plans.map(\.key))
        do {
            let fields = try await store.redis.pipeline(plans.map { ["HKEYS", $0.key] })
            var commands: [[String]] = []
            var gone = cleared
            for (plan, reply) in zip(plans, fields) {
                if plan.lots != nil || !(reply.array ?? []).isEmpty { gone.remove(plan.key) }
                let field = String(plan.shard)
                if let lots = plan.lots {
                    commands.append(["HSET", plan.key, field, n(lots)])
                    if plan.key.hasPrefix("concentration:signal:") { commands.append(["EXPIRE", plan.key, "172800"]) }
                } else {
                    commands.append(["HDEL", plan.key, field])
                }
                // The holds this shard's figure now counts (their fires are in its memory).
                for name in (try reply.orThrow().array ?? []).compactMap(\.string) where name.hasPrefix("h:") {
                    let fire = String(name.dropFirst(2))
                    if TradeStore.shard(ofFire: fire) == plan.shard, plan.known.contains(fire) {
                        commands.append(["HDEL", plan.key, name])
                    }
                }
            }
            commands.append(["SADD", RedisKeys.concentrationKeys] + cleared.sorted())
            // Keys with nothing left in them (expired signals) leave the list.
            if !gone.isEmpty { commands.append(["SREM", RedisKeys.concentrationKeys] + gone.sorted()) }
            for reply in try await store.redis.pipeline(commands) { try reply.orThrow() }
            let known = snapshots.reduce(into: Set<String>()) { $0.formUnion($1.2) }
            concentration.withLock { state in
                state.written = written
                for key in cleared {
                    state.holds[key]?.subtract(known)
                    if state.holds[key]?.isEmpty == true { state.holds[key] = nil }
                }
            }
        } catch {
            logger.warning("concentration totals not written", metadata: ["bitten.error": "\(error)"])
        }
    }
}

/// What the fire desk knows of the concentration totals it writes.
struct ConcentrationState {
    /// When the totals were last written.
    var syncedAt = 0.0
    /// The keys each shard wrote last time (a key no longer held is cleared).
    var written: [Int: Set<String>] = [:]
    /// Holds this process made that no resync has cleared yet, by key.
    var holds: [String: Set<String>] = [:]
    /// When every key ever held was last looked through.
    var scannedAt = 0.0
}
