import Foundation

/// Where one trade shard's state lives in Redis. Every key carries the shard's hash tag (`{t3}`), so a
/// shard's commit touches one Redis Cluster slot, and keeps the seed's prefix (`position:`, `trade:`,
/// `user:`, `global_trade_stats` …), so `SCAN position:*` still finds every position.
public struct ShardKeys: Sendable, Equatable {
    /// The shard's number.
    public let shard: Int
    /// The hash tag that puts every key of the shard in one cluster slot (`{t3}`).
    public let tag: String

    /// The keys of shard `shard`.
    public init(shard: Int) {
        self.shard = shard
        tag = "{t\(shard)}"
    }

    /// The shard of a user: a stable hash (FNV-1a, 64 bit) of the UUID's bytes, modulo the shard count.
    public static func shard(of uuid: String, count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in uuid.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(max(1, count)))
    }

    /// The owner's lease (`owner|fence`, with a time to live).
    public var lease: String { "shard:\(tag):lease" }
    /// `checkpoint` (the last ledger entry applied), `sequence` (the last fire number), `fence`.
    public var state: String { "shard:\(tag)" }
    /// The set of the shard's users.
    public var users: String { "users:\(tag)" }
    /// A user's hash.
    public func user(_ uuid: String) -> String { "user:\(tag):\(uuid)" }
    /// The shard's users whose own trading state is not `active` (close-only or halted).
    public var restrictedUsers: String { "users:restricted:\(tag)" }
    /// A fire's hash.
    public func fire(_ id: String) -> String { "fire:\(tag):\(id)" }
    /// Fires held in memory (pending, sent, timed out and not yet forgotten), by creation time.
    public var firesInFlight: String { "fires:inflight:\(tag)" }
    /// Every fire of the shard by creation time (trimmed), newest last.
    public var firesRecent: String { "fires:recent:\(tag)" }
    /// Idempotency markers: `signal|user` → `fire_id signal_expires_at`.
    public var fired: String { "fired:\(tag)" }
    /// Slots in use per user.
    public var slots: String { "slots:\(tag)" }
    /// A position's hash (open or closed).
    public func position(_ ticket: Int) -> String { "position:\(tag):\(ticket)" }
    /// The set of open tickets of the shard.
    public var openPositions: String { "open_positions:\(tag)" }
    /// A user's open tickets.
    public func userPositions(_ uuid: String) -> String { "user_positions:\(tag):\(uuid)" }
    /// A user's closed tickets.
    public func closedPositions(_ uuid: String) -> String { "closed_positions:\(tag):\(uuid)" }
    /// A closed trade's hash.
    public func trade(_ ticket: Int) -> String { "trade:\(tag):\(ticket)" }
    /// The shard's latest closed trades.
    public var tradesRecent: String { "trades:recent:\(tag)" }
    /// The shard's latest closed trades of a symbol.
    public func trades(symbol: String) -> String { "trades:\(tag):\(symbol)" }
    /// The shard's latest closed trades of an account.
    public func trades(account: Int) -> String { "trades:account:\(tag):\(account)" }
    /// The shard's closed trades of a day (`YYYY-MM-DD`).
    public func trades(day: String) -> String { "trades:day:\(tag):\(day)" }
    /// A close request's hash.
    public func close(_ ticket: Int) -> String { "close:\(tag):\(ticket)" }
    /// The close requests waiting for their answer.
    public var closesInFlight: String { "closes:inflight:\(tag)" }
    /// Per account: `balance|closes since`.
    public var balances: String { "account_balance:\(tag)" }
    /// The statistics keys of this shard (readers sum them over the shards).
    public var statisticsIndex: String { "stats_keys:\(tag)" }
    /// Confirmations that matched no fire or close.
    public var orphans: String { "orphan_confirmations:\(tag)" }
    /// An operator's list of this shard (`confirmations:untrusted:{t3}`).
    public func list(_ name: String) -> String { "\(name):\(tag)" }
    /// The confirmations of this shard's users, in arrival order.
    public var confirmations: String { "stream:confirmations:\(tag)" }

    /// A statistics record's key in this shard: `global_trade_stats:{t3}`, `symbol_stats:{t3}:EURUSD`, …
    public func statistics(_ coreKey: String) -> String {
        guard let colon = coreKey.firstIndex(of: ":") else { return "\(coreKey):\(tag)" }
        return "\(coreKey[..<colon]):\(tag)\(coreKey[colon...])"
    }
}
