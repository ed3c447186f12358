import BittenCore
import Foundation
import Redis

/// The trade path's state in Redis: users, signals, fire and close records, positions, trades and
/// statistics. Every multi-key change goes through one of `TradeScripts`.
public struct TradeStore: Sendable {
    public let redis: RedisClient

    public init(redis: RedisClient) { self.redis = redis }

    // MARK: users

    /// Creates or replaces a user.
    public func save(_ user: UserRecord) async throws {
        _ = try await redis.transaction([
            ["HSET", "user:\(user.uuid)"] + user.redisFields,
            ["SADD", "users", user.uuid],
        ])
    }

    /// One user.
    /// A node as its gateway last wrote it.
    public func node(_ uuid: String) async throws -> NodeRecord? {
        guard let hash = try await redis.command(["HGETALL", "node:\(uuid)"]).hash, !hash.isEmpty else { return nil }
        return NodeRecord(redisHash: hash)
    }

    public func user(_ uuid: String) async throws -> UserRecord? {
        try await redis.command(["HGETALL", "user:\(uuid)"]).hash.flatMap(UserRecord.init(hash:))
    }

    /// Every user, sorted by UUID.
    public func users() async throws -> [UserRecord] {
        try await hashes(["SMEMBERS", "users"], prefix: "user:").compactMap(UserRecord.init(hash:))
            .sorted { $0.uuid < $1.uuid }
    }

    /// Trades open or under way for the user (the slot count).
    public func slotsUsed(_ uuid: String) async throws -> Int {
        try await redis.command(["SCARD", "slots:\(uuid)"]).int ?? 0
    }

    // MARK: signals

    /// Stores a signal until it expires (and a day longer, for the record). Returns false when a
    /// signal with that id exists already.
    public func save(_ signal: SignalRecord, now: Double) async throws -> Bool {
        let ttl = max(60, Int(signal.expiresAt - now) + 86_400)
        let reply = try await redis.evaluate(
            TradeScripts.saveSignal, keys: ["signal:\(signal.signalID)", "signals:recent"],
            args: [String(ttl), Self.number(signal.receivedAt), signal.signalID] + signal.redisFields)
        return reply.int == 1
    }

    /// One signal.
    public func signal(_ id: String) async throws -> SignalRecord? {
        try await stampedSignal(id)?.signal
    }

    /// One signal with the `received_at` text it is stored with (the stamp `reserveFire` checks, so a
    /// signal read earlier is known to be the one still in Redis).
    public func stampedSignal(_ id: String) async throws -> (signal: SignalRecord, stamp: String)? {
        guard let hash = try await redis.command(["HGETALL", "signal:\(id)"]).hash, let signal = SignalRecord(hash: hash) else {
            return nil
        }
        return (signal, hash["received_at"] ?? "")
    }

    /// The latest signals, newest first.
    public func recentSignals(limit: Int) async throws -> [SignalRecord] {
        try await hashes(["ZREVRANGE", "signals:recent", "0", String(max(0, limit - 1))], prefix: "signal:")
            .compactMap(SignalRecord.init(hash:))
    }

    // MARK: fires

    /// What decides a refusal's order, in one round trip: the user and an earlier fire of the signal by
    /// that user (which come before refusals such as an offline EA).
    public func fireContext(signalID: String, userUUID: String) async throws -> (user: UserRecord?, earlierFireID: String?) {
        let replies = try await redis.pipeline([["HGETALL", "user:\(userUUID)"], ["GET", "fired:\(signalID):\(userUUID)"]])
        guard replies.count == 2 else { throw RedisError(.unexpectedReply, "fire context: \(replies.count) replies") }
        for reply in replies { try reply.orThrow() }
        return (replies[0].hash.flatMap(UserRecord.init(hash:)), replies[1].string)
    }

    /// One way a fire may be sized: for a user of `tier` with the stored `risk_override` text
    /// `override` ("" for none), either the size (`lot`, `riskPercent`, `riskAmount` as stored) under
    /// `slots`, or why sizing failed (`error`).
    public struct SizingVariant: Sendable, Equatable {
        public var tier: Tier
        public var override: String
        public var slots: Int
        public var fields: [String]
        public var error: String?

        public init(tier: Tier, override: String, slots: Int, fields: [String], error: String?) {
            self.tier = tier
            self.override = override
            self.slots = slots
            self.fields = fields
            self.error = error
        }

        /// How the script finds the variant of a user: the tier name and the override text.
        public var key: String { tier.rawValue + "|" + override }
    }

    /// Outcome of reserving a fire.
    public enum Reservation: Sendable, Equatable {
        /// Reserved as `fireID`, sized by the variant with `key`.
        case reserved(fireID: String, key: String)
        case duplicate(fireID: String)
        /// The user's tier allows `slots` and `used` are taken.
        case noSlot(used: Int, key: String)
        case noUser
        /// The signal is gone or is not the one read (its stamp differs).
        case signalChanged
        /// None of the variants fits the user (tier name upper-cased, override text): size for it and ask again.
        case resize(tier: String, override: String)
        /// The user's variant could not be sized.
        case sizingFailed(String)
    }

    /// Creates the `pending` fire record with a new id (`F-YYYYMMDD-NNNNNN`, unique across processes),
    /// its slot and its idempotency marker in one step, after checking (in the same step) that the
    /// signal is the one read, that the user exists and has not fired this signal, and that the
    /// user's tier has a free slot. The sizing is chosen by the user's tier and risk override as
    /// stored at that moment, so a fire never uses a stale tier.
    public func reserveFire(signalID: String, signalStamp: String, userUUID: String, variants: [SizingVariant],
                            deadline: Double, now: Double, fields: [String]) async throws -> Reservation {
        let t = MetaTraderTime(epochSeconds: Int(now))
        let date = String(format: "%04d%02d%02d", t.year, t.month, t.day)
        var args = [date, Self.number(deadline), signalStamp, String(variants.count)]
        for variant in variants {
            var sized = Array(variant.fields.prefix(TradeScripts.variantFieldCount))
            sized += Array(repeating: "", count: TradeScripts.variantFieldCount - sized.count)
            args += [variant.key, String(variant.slots), variant.error ?? ""] + sized
        }
        let reply = try await redis.evaluate(
            TradeScripts.reserveFire,
            keys: ["fired:\(signalID):\(userUUID)", "slots:\(userUUID)", "fires:deadlines", "fires:recent",
                   "user:\(userUUID)", "signal:\(signalID)"],
            args: args + fields)
        let parts = reply.array?.compactMap(\.string) ?? []
        func part(_ i: Int) -> String { parts.count > i ? parts[i] : "" }
        switch parts.first {
        case "ok": return .reserved(fireID: part(1), key: part(2))
        case "duplicate": return .duplicate(fireID: part(1))
        case "no_slot": return .noSlot(used: Int(part(1)) ?? 0, key: part(2))
        case "no_user": return .noUser
        case "signal_changed": return .signalChanged
        case "resize": return .resize(tier: part(1), override: part(2))
        case "sizing": return .sizingFailed(part(1))
        default: throw RedisError(.unexpectedReply, "reserve fire returned \(reply)")
        }
    }

    /// Moves a fire (`fire:{id}`) or close (`close:{ticket}`) record; returns the script's verdict.
    @discardableResult
    public func transition(_ key: String, to state: FireState, deadline: Double? = nil, fields: [String] = [])
        async throws -> (outcome: String, previous: String)
    {
        let parts = try await runTransition(key, to: state, deadline: deadline, fields: fields)
        return (parts.first?.string ?? "", parts.count > 1 ? parts[1].string ?? "" : "")
    }

    /// Moves a fire record like `transition` and returns the record as it is afterwards (one round
    /// trip instead of two), or nil when the move did not happen.
    public func transitionFire(_ fireID: String, to state: FireState, deadline: Double? = nil, fields: [String] = [])
        async throws -> FireRecord?
    {
        let parts = try await runTransition("fire:\(fireID)", to: state, deadline: deadline, fields: fields)
        guard parts.count == 3, parts[0].string == "ok" else { return nil }
        return parts[2].hash.flatMap(FireRecord.init(hash:))
    }

    /// The transition script's reply: outcome, previous state and (when moved) the record.
    private func runTransition(_ key: String, to state: FireState, deadline: Double?, fields: [String]) async throws
        -> [RedisReply]
    {
        try await redis.evaluate(
            TradeScripts.transition, keys: [key, "fires:deadlines"],
            args: [state.rawValue, deadline.map(Self.number) ?? ""] + fields).array ?? []
    }

    /// Takes a record off the deadline list (it no longer waits for an answer).
    public func removeDeadline(_ key: String) async throws {
        try await redis.command(["ZREM", "fires:deadlines", key])
    }

    /// Frees the idempotency marker of a fire that never reached the EA, so the user may fire again.
    public func forgetFire(signalID: String, userUUID: String) async throws {
        try await redis.command(["DEL", "fired:\(signalID):\(userUUID)"])
    }

    /// A fire record.
    public func fire(_ fireID: String) async throws -> FireRecord? {
        try await redis.command(["HGETALL", "fire:\(fireID)"]).hash.flatMap(FireRecord.init(hash:))
    }

    /// The latest fires, newest first.
    public func recentFires(limit: Int) async throws -> [FireRecord] {
        try await hashes(["LRANGE", "fires:recent", "0", String(max(0, limit - 1))], prefix: "fire:")
            .compactMap(FireRecord.init(hash:))
    }

    /// Records (fire or close keys) whose deadline has passed.
    public func overdue(at now: Double, limit: Int = 500) async throws -> [String] {
        (try await redis.command(["ZRANGEBYSCORE", "fires:deadlines", "-inf", Self.number(now), "LIMIT", "0", String(limit)])
            .array ?? []).compactMap(\.string)
    }

    /// Opens a close request for an open position.
    public func reserveClose(ticket: Int, deadline: Double, fields: [String]) async throws -> (outcome: String, detail: String) {
        let reply = try await redis.evaluate(
            TradeScripts.reserveClose, keys: ["close:\(ticket)", "position:\(ticket)", "fires:deadlines"],
            args: [Self.number(deadline)] + fields)
        let parts = reply.array?.compactMap(\.string) ?? []
        return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
    }

    /// A close request record.
    public func closeRequest(_ ticket: Int) async throws -> FireRecord? {
        try await redis.command(["HGETALL", "close:\(ticket)"]).hash.flatMap(FireRecord.init(hash:))
    }

    // MARK: positions and statistics

    /// One position (open or closed).
    public func position(_ ticket: Int) async throws -> PositionRecord? {
        try await redis.command(["HGETALL", "position:\(ticket)"]).hash.flatMap(PositionRecord.init(hash:))
    }

    /// Open positions, all or one user's.
    public func openPositions(user: String? = nil) async throws -> [PositionRecord] {
        let set = user.map { "user_positions:\($0)" } ?? "all_open_positions"
        return try await hashes(["SMEMBERS", set], prefix: "position:").compactMap(PositionRecord.init(hash:))
            .sorted { $0.ticket < $1.ticket }
    }

    /// A statistics hash (`global_trade_stats`, `symbol_stats:EURUSD`, …).
    public func stats(_ key: String) async throws -> TradeStats {
        TradeStats(hash: try await redis.command(["HGETALL", key]).hash ?? [:])
    }

    /// Recent closed trades, newest first, from one of the bounded lists.
    public func trades(list: String, limit: Int) async throws -> [[String: String]] {
        try await hashes(["LRANGE", list, "0", String(max(0, limit - 1))], prefix: "trade:")
    }

    /// Runs `idsCommand` (a list of ids), then HGETALL `prefix + id` for each in one pipeline; empty
    /// hashes (expired records) are left out.
    private func hashes(_ idsCommand: [String], prefix: String) async throws -> [[String: String]] {
        try await redis.withConnection { connection in
            let ids = (try connection.command(idsCommand).orThrow().array ?? []).compactMap(\.string)
            guard !ids.isEmpty else { return [] }
            return try connection.pipeline(ids.map { ["HGETALL", prefix + $0] }).compactMap { reply in
                guard let hash = reply.hash, !hash.isEmpty else { return nil }
                return hash
            }
        }
    }

    static func number(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 6) ?? "0" }
}
