/// Where a command's keys are among its arguments, so that a cluster client can route it by slot and
/// refuse it before sending when its keys span slots.
public enum CommandKeys {
    /// What the arguments say about keys.
    public enum Keys: Sendable, Equatable {
        /// No key: any node may answer (PING, INFO, SCRIPT LOAD, …).
        case none
        /// These keys (one slot or an error).
        case keys([[UInt8]])
        /// A sharded pub/sub channel, routed like a key.
        case channel([UInt8])
        /// A command this table does not know; a cluster client refuses it rather than guess.
        case unknown
    }

    private static let firstKey: Set<String> = [
        "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "GETDEL", "GETEX", "INCR", "INCRBY", "INCRBYFLOAT", "DECR",
        "DECRBY", "APPEND", "STRLEN", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "TTL", "PTTL", "PERSIST", "TYPE",
        "HGET", "HSET", "HSETNX", "HMSET", "HMGET", "HGETALL", "HDEL", "HINCRBY", "HINCRBYFLOAT", "HEXISTS", "HLEN",
        "HKEYS", "HVALS", "HSCAN", "HSTRLEN", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LRANGE", "LLEN",
        "LTRIM", "LINDEX", "LREM", "LSET", "LINSERT", "LPOS", "SADD", "SREM", "SMEMBERS", "SISMEMBER", "SMISMEMBER",
        "SCARD", "SPOP", "SRANDMEMBER", "SSCAN", "ZADD", "ZREM", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE",
        "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZSCORE", "ZMSCORE", "ZCARD", "ZINCRBY", "ZCOUNT", "ZRANK", "ZREVRANK",
        "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK", "ZSCAN", "ZPOPMIN", "ZPOPMAX", "XADD", "XLEN", "XRANGE", "XREVRANGE",
        "XTRIM", "XDEL", "XACK", "XCLAIM", "XAUTOCLAIM", "XPENDING", "XSETID", "DUMP", "RESTORE",
        "PFADD", "GETRANGE", "SETRANGE", "BITCOUNT", "GETBIT", "SETBIT",
    ]
    private static let allKeys: Set<String> = [
        "DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH", "SINTER", "SUNION", "SDIFF", "PFCOUNT",
    ]
    private static let keyless: Set<String> = [
        "PING", "ECHO", "INFO", "TIME", "DBSIZE", "CLUSTER", "SCRIPT", "FUNCTION", "CONFIG", "CLIENT", "COMMAND",
        "HELLO", "AUTH", "SELECT", "MULTI", "EXEC", "DISCARD", "UNWATCH", "ASKING", "READONLY", "READWRITE", "FLUSHALL",
        "FLUSHDB", "SCAN", "KEYS", "RANDOMKEY", "WAIT", "LASTSAVE", "ROLE", "MEMORY", "LATENCY", "SLOWLOG", "PUBLISH",
        "SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "PUBSUB", "QUIT", "RESET",
    ]

    /// The keys of `arguments` (command name first).
    public static func of(_ arguments: [[UInt8]]) -> Keys {
        guard let head = arguments.first else { return .none }
        let name = String(decoding: head, as: UTF8.self).uppercased()
        let rest = Array(arguments.dropFirst())
        if keyless.contains(name) { return .none }
        if firstKey.contains(name) { return rest.isEmpty ? .unknown : .keys([rest[0]]) }
        if allKeys.contains(name) { return rest.isEmpty ? .unknown : .keys(rest) }
        switch name {
        case "MSET", "MSETNX":
            return rest.isEmpty ? .unknown : .keys(stride(from: 0, to: rest.count, by: 2).map { rest[$0] })
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard rest.count >= 2, let count = Int(String(decoding: rest[1], as: UTF8.self)), count >= 0,
                rest.count >= 2 + count
            else {
                return .unknown
            }
            return count == 0 ? .none : .keys(Array(rest[2..<(2 + count)]))
        case "BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX":
            return rest.count < 2 ? .unknown : .keys(Array(rest.dropLast()))
        case "RENAME", "RENAMENX", "SMOVE", "LMOVE", "RPOPLPUSH", "BLMOVE", "BRPOPLPUSH", "COPY":
            return rest.count < 2 ? .unknown : .keys([rest[0], rest[1]])
        case "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE":
            return rest.isEmpty ? .unknown : .keys(rest)
        case "XREAD", "XREADGROUP":
            guard
                let streams = rest.firstIndex(where: { String(decoding: $0, as: UTF8.self).uppercased() == "STREAMS" })
            else { return .unknown }
            let tail = rest[(streams + 1)...]
            guard !tail.isEmpty, tail.count % 2 == 0 else { return .unknown }
            return .keys(Array(tail.prefix(tail.count / 2)))
        case "XGROUP", "XINFO":
            // XGROUP CREATE key …, XINFO STREAM key …; HELP has no key.
            return rest.count < 2 ? .none : .keys([rest[1]])
        case "SPUBLISH", "SSUBSCRIBE", "SUNSUBSCRIBE":
            return rest.isEmpty ? .none : .channel(rest[0])
        default:
            return .unknown
        }
    }

    /// The slot `arguments` must go to: nil for keyless commands; throws when the keys span slots or
    /// the command is not in the table.
    public static func slot(of arguments: [[UInt8]]) throws(RedisError) -> Int? {
        let name = arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
        switch of(arguments) {
        case .none: return nil
        case .keys(let keys): return try ClusterSlot.common(keys, command: name)
        case .channel(let channel): return ClusterSlot.of(channel)
        case .unknown:
            throw RedisError(
                .crossSlot, "\(name) is not known to the cluster router (its keys cannot be found); it was not sent")
        }
    }
}
