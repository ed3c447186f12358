import BittenCore
import Foundation
import Redis

/// The trade path's state in Redis, read for the API and the dashboard: users, signals, fire and close
/// records, positions, trades and statistics, in the sharded key schema of `ShardKeys` (the trade engine
/// is their only writer; users are saved through it). A record of one user is read from that user's shard;
/// lists and statistics that span users are read from every shard and merged.
public struct TradeStore: Sendable {
    /// The trade path's Redis client.
    public let redis: RedisClient
    /// How many trade shards.
    public let shards: Int
    /// The engine of this process, when it runs one.
    public let engine: TradeEngine?
    /// Where a user of a shard another process owns is saved (nil: refused here).
    public let router: ShardRouter?

    /// The store over `redis`.
    public init(redis: RedisClient, shards: Int = 16, engine: TradeEngine? = nil, router: ShardRouter? = nil) {
        self.redis = redis
        self.shards = engine?.shardCount ?? shards
        self.engine = engine
        self.router = router
    }

    private func keys(of uuid: String) -> ShardKeys { ShardKeys(shard: ShardKeys.shard(of: uuid, count: shards)) }
    private var allKeys: [ShardKeys] { (0..<shards).map { ShardKeys(shard: $0) } }

    // MARK: users

    /// Creates or replaces a user (through the engine that owns the user's shard: this process's, or another
    /// process's through the shard's inbox unless `routing` is false).
    public func save(_ user: UserRecord, routing: Bool = true) async throws {
        guard let engine else {
            throw TradeEngineUnavailable("users are saved by the trade engine, which does not run in this process")
        }
        await engine.waitUntilTried(user.uuid)
        if routing, let router, !engine.owns(user.uuid) {
            do {
                if try await router.route(
                    .saveUser, shard: engine.shard(of: user.uuid), userUUID: user.uuid, user: user) != nil
                {
                    return
                }
            } catch {
                throw TradeEngineUnavailable(error.message)
            }
        }
        let record = ShardUser(
            uuid: user.uuid, tier: user.tier,
            riskOverride: user.riskOverride.flatMap { PlainDecimal.format($0, maxFractionDigits: 4) } ?? "",
            limits: user.limits ?? .none)
        let fields = user.redisFields
        let done = try await engine.perform(user.uuid) { $0.save(record, fields: fields) }
        if let error = done.notStored { throw error }
    }

    /// A node as its gateway last wrote it.
    public func node(_ uuid: String) async throws -> NodeRecord? {
        guard let hash = try await redis.command(["HGETALL", RedisKeys.node(uuid)]).hash, !hash.isEmpty else {
            return nil
        }
        return NodeRecord(redisHash: hash)
    }

    /// One user.
    public func user(_ uuid: String) async throws -> UserRecord? {
        try await redis.command(["HGETALL", keys(of: uuid).user(uuid)]).hash.flatMap(UserRecord.init(hash:))
    }

    /// Every user, sorted by UUID.
    public func users() async throws -> [UserRecord] { try await users(listedIn: \.users) }

    /// Users whose own trading state is not `active` (as stored; one whose close-only lapsed may still be listed
    /// until its next change), sorted by UUID.
    public func restrictedUsers() async throws -> [UserRecord] { try await users(listedIn: \.restrictedUsers) }

    /// The users each shard lists in one of its sets, sorted by UUID.
    private func users(listedIn set: KeyPath<ShardKeys, String>) async throws -> [UserRecord] {
        let members = try await redis.pipeline(allKeys.map { ["SMEMBERS", $0[keyPath: set]] })
        var reads: [[String]] = []
        for (keys, reply) in zip(allKeys, members) {
            for uuid in (try reply.orThrow().array ?? []).compactMap(\.string) {
                reads.append(["HGETALL", keys.user(uuid)])
            }
        }
        return try await hashes(reads).compactMap(UserRecord.init(hash:)).sorted { $0.uuid < $1.uuid }
    }

    /// Trades open or under way for the user (the slot count).
    public func slotsUsed(_ uuid: String) async throws -> Int {
        Int(try await redis.command(["HGET", keys(of: uuid).slots, uuid]).string ?? "0") ?? 0
    }

    // MARK: signals

    /// Stores a signal until it expires (and a day longer, for the record). Returns false when a
    /// signal with that id exists already.
    public func save(_ signal: SignalRecord, now: Double) async throws -> Bool {
        let ttl = max(60, Int(signal.expiresAt - now) + 86_400)
        let reply = try await redis.evaluate(
            LuaScripts.saveSignal, keys: [RedisKeys.signal(signal.signalID)], args: [String(ttl)] + signal.redisFields)
        guard reply.int == 1 else { return false }
        // The recent list is another key (another slot on a cluster): listed right after it is stored.
        for reply in try await redis.pipeline([
            ["ZADD", RedisKeys.signalsRecent, Self.number(signal.receivedAt), signal.signalID],
            ["ZREMRANGEBYRANK", RedisKeys.signalsRecent, "0", "-1001"],
        ]) { try reply.orThrow() }
        return true
    }

    /// Whether a signal is stored (not removed, not expired).
    public func signalExists(_ id: String) async throws -> Bool {
        try await redis.command(["EXISTS", RedisKeys.signal(id)]).int == 1
    }

    /// One signal.
    public func signal(_ id: String) async throws -> SignalRecord? {
        try await stampedSignal(id)?.signal
    }

    /// One signal with the `received_at` text it is stored with (the stamp `reserveFire` checks, so a
    /// signal read earlier is known to be the one still in Redis).
    public func stampedSignal(_ id: String) async throws -> (signal: SignalRecord, stamp: String)? {
        guard let hash = try await redis.command(["HGETALL", RedisKeys.signal(id)]).hash,
            let signal = SignalRecord(hash: hash)
        else {
            return nil
        }
        return (signal, hash["received_at"] ?? "")
    }

    /// The latest signals, newest first.
    public func recentSignals(limit: Int) async throws -> [SignalRecord] {
        guard limit > 0 else { return [] }
        let ids = (try await redis.command(["ZREVRANGE", RedisKeys.signalsRecent, "0", String(limit - 1)]).array ?? [])
            .compactMap(\.string)
        return try await hashes(ids.map { ["HGETALL", RedisKeys.signal($0)] }).compactMap(SignalRecord.init(hash:))
    }

    // MARK: fires

    /// The shard in a fire id (`F-20261205-03-000042` → 3).
    static func shard(ofFire id: String) -> Int? {
        let parts = id.split(separator: "-")
        guard parts.count == 4, parts[0] == "F" else { return nil }
        return Int(parts[2])
    }

    /// A fire record.
    public func fire(_ fireID: String) async throws -> FireRecord? {
        guard let shard = Self.shard(ofFire: fireID), shard < shards else { return nil }
        return try await redis.command(["HGETALL", ShardKeys(shard: shard).fire(fireID)]).hash.flatMap(
            FireRecord.init(hash:))
    }

    /// The latest fires, newest first.
    public func recentFires(limit: Int) async throws -> [FireRecord] {
        let count = max(0, limit)
        guard count > 0 else { return [] }
        let lists = try await redis.pipeline(allKeys.map { ["ZREVRANGE", $0.firesRecent, "0", String(count - 1)] })
        var reads: [[String]] = []
        for (keys, reply) in zip(allKeys, lists) {
            for id in (try reply.orThrow().array ?? []).compactMap(\.string) {
                reads.append(["HGETALL", keys.fire(id)])
            }
        }
        return Array(
            try await hashes(reads).compactMap(FireRecord.init(hash:))
                .sorted { ($0.createdAt, $0.fireID) > ($1.createdAt, $1.fireID) }.prefix(count))
    }

    /// A close request record (in the user's shard when the user is known, else looked for in every shard).
    public func closeRequest(_ ticket: Int, user: String? = nil) async throws -> FireRecord? {
        let candidates = user.map { [keys(of: $0)] } ?? allKeys
        return try await hashes(candidates.map { ["HGETALL", $0.close(ticket)] }).first.flatMap(FireRecord.init(hash:))
    }

    // MARK: positions and statistics

    /// One position (open or closed).
    public func position(_ ticket: Int) async throws -> PositionRecord? {
        try await hashes(allKeys.map { ["HGETALL", $0.position(ticket)] }).first.flatMap(PositionRecord.init(hash:))
    }

    /// Open positions, all or one user's, or those of the shards in `only`.
    public func openPositions(user: String? = nil, shards only: Set<Int>? = nil) async throws -> [PositionRecord] {
        try await openPositions(user: user, shards: only, skipping: []).read
    }

    /// Every ticket open in `shards` (or of `user`), and the records of those not in `known`: a position's record is
    /// written once when it opens and changes only when it closes (which takes its ticket out of the open set), so a
    /// caller holding a ticket's record needs only to learn whether it is still open.
    public func openPositions(user: String? = nil, shards only: Set<Int>?, skipping known: Set<Int>) async throws -> (
        open: Set<Int>, read: [PositionRecord]
    ) {
        let sets: [(ShardKeys, String)] =
            user.map { uuid in [(keys(of: uuid), keys(of: uuid).userPositions(uuid))] }
            ?? allKeys.filter { only?.contains($0.shard) ?? true }.map { ($0, $0.openPositions) }
        let members = try await redis.pipeline(sets.map { ["SMEMBERS", $0.1] })
        var open: Set<Int> = []
        var reads: [[String]] = []
        for ((keys, _), reply) in zip(sets, members) {
            for ticket in (try reply.orThrow().array ?? []).compactMap(\.string) {
                guard let number = Int(ticket) else { continue }
                open.insert(number)
                if !known.contains(number) { reads.append(["HGETALL", keys.position(number)]) }
            }
        }
        let read = try await hashes(reads).compactMap(PositionRecord.init(hash:)).filter { $0.status == "open" }
        return (open, read.sorted { $0.ticket < $1.ticket })
    }

    /// Each shard's ledger checkpoint as its last commit stored it (nil: none yet), by shard. A shard's open
    /// positions change only with the ledger entries it applies, which move the checkpoint in the same commit: an
    /// unchanged checkpoint means unchanged positions.
    public func checkpoints() async throws -> [String?] {
        try await redis.pipeline(allKeys.map { ["HGET", $0.state, "checkpoint"] }).map { try $0.orThrow().string }
    }

    /// A statistics record (`global_trade_stats`, `symbol_stats:EURUSD`, `account_stats_trades:N`,
    /// `user_stats:U`): a user's from that user's shard, the others summed over the shards
    /// (`TradeStatistics.merged`).
    public func stats(_ key: String) async throws -> TradeStats {
        TradeStats(hash: Dictionary(try await statistics(key).redisFields, uniquingKeysWith: { a, _ in a }))
    }

    /// The statistics behind `stats`.
    public func statistics(_ key: String) async throws -> TradeStatistics {
        let candidates = key.hasPrefix("user_stats:") ? [keys(of: String(key.dropFirst("user_stats:".count)))] : allKeys
        let replies = try await redis.pipeline(candidates.map { ["HGETALL", $0.statistics(key)] })
        return TradeStatistics.merged(
            try replies.compactMap { try $0.orThrow().hash.flatMap(TradeStatistics.init(redisHash:)) })
    }

    /// Recent closed trades, newest first, from one of the bounded lists (`trades:recent`, `trades:EURUSD`,
    /// `trades:account:N`, `trades:day:YYYY-MM-DD`), merged over the shards.
    public func trades(list: String, limit: Int) async throws -> [[String: String]] {
        let count = max(0, limit)
        guard count > 0 else { return [] }
        let lists = allKeys.map { ($0, Self.tradeList(list, $0)) }
        let members = try await redis.pipeline(lists.map { ["LRANGE", $0.1, "0", String(count - 1)] })
        var reads: [[String]] = []
        for ((keys, _), reply) in zip(lists, members) {
            for ticket in (try reply.orThrow().array ?? []).compactMap(\.string) {
                if let number = Int(ticket) { reads.append(["HGETALL", keys.trade(number)]) }
            }
        }
        func closed(_ trade: [String: String]) -> Double { trade["close_time"].flatMap(Double.init) ?? 0 }
        return Array(
            try await hashes(reads).sorted { (closed($0), $0["ticket"] ?? "") > (closed($1), $1["ticket"] ?? "") }
                .prefix(count))
    }

    /// A trade list's key in one shard.
    static func tradeList(_ list: String, _ keys: ShardKeys) -> String {
        if list == "trades:recent" { return keys.tradesRecent }
        if list.hasPrefix("trades:account:") {
            return keys.trades(account: Int(list.dropFirst("trades:account:".count)) ?? 0)
        }
        if list.hasPrefix("trades:day:") { return keys.trades(day: String(list.dropFirst("trades:day:".count))) }
        return keys.trades(symbol: String(list.dropFirst("trades:".count)))
    }

    /// HGETALL of each key in pipelines; empty hashes (missing or expired records) are left out.
    private func hashes(_ reads: [[String]]) async throws -> [[String: String]] {
        var result: [[String: String]] = []
        for start in stride(from: 0, to: reads.count, by: 500) {
            for reply in try await redis.pipeline(Array(reads[start..<min(reads.count, start + 500)])) {
                if let hash = try reply.orThrow().hash, !hash.isEmpty { result.append(hash) }
            }
        }
        return result
    }

    static func number(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 6) ?? "0" }
}
