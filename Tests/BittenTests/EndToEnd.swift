import BittenServices
import Redis
import Testing

/// The suites that start real `bitten` processes (with Redis, EA fleets and sockets). They run one
/// after another: side by side on a two-core machine, their timing checks (heartbeat timeouts,
/// relay receipts) starved each other.
@Suite("End to end, one suite at a time", .serialized)
enum EndToEnd {}

/// The trade path's keys as a `bitten` with the default 16 trade shards writes them.
enum TradeKeys {
    static let shards = 16

    /// The keys of `uuid`'s shard.
    static func of(_ uuid: String) -> ShardKeys { ShardKeys(shard: ShardKeys.shard(of: uuid, count: shards)) }

    /// Every shard's keys.
    static var all: [ShardKeys] { (0..<shards).map { ShardKeys(shard: $0) } }

    /// Confirmations in every shard's ledger (a stream entry holds a batch of them).
    static func ledgerLength(_ redis: RedisConnection) throws -> Int { try ledgerEntries(redis).count }

    /// Every confirmation in the ledger, shard by shard, each as an entry of its own.
    static func ledgerEntries(_ redis: RedisConnection) throws -> [StreamEntry] {
        try all.flatMap { try redis.xrange($0.confirmations).flatMap(LedgerRecord.messages(of:)) }
    }
}
