import BittenCore
import Redis

/// The Lua scripts that remain on the trade path. The trade state itself is written by the trade engine's
/// fenced group commits (`ShardStore`); the rules are in BittenCore (`TradeShard`).
enum TradeScripts {
    /// Stores a new signal (never overwrites one). KEYS: signal hash, recent zset.
    /// ARGV: ttl seconds, received_at, signal_id, then field/value pairs. → 1 stored, 0 exists already
    static let saveSignal = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local fields = {}
        for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
        redis.call('HSET', KEYS[1], unpack(fields))
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
        redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1001)
        return 1
        """)
}
