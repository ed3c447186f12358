import BittenCore
import Redis

/// The Lua scripts that remain on the trade path. The trade state itself is written by the trade engine's
/// fenced group commits (`ShardStore`); the rules are in BittenCore (`TradeShard`).
enum TradeScripts {
    /// Stores a new signal (never overwrites one). KEYS: signal hash. ARGV: ttl seconds, then field/value
    /// pairs. → 1 stored, 0 exists already. (The recent list, another slot on a cluster, is written after.)
    static let saveSignal = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local fields = {}
        for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
        redis.call('HSET', KEYS[1], unpack(fields))
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        return 1
        """)
}
