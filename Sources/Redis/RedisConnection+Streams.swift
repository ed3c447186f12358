extension RedisConnection {
    /// XADD with an automatic id and an optional approximate MAXLEN; returns the new entry id.
    public func xadd(_ stream: String, fields: [(String, String)], maxLength: Int? = nil) throws(RedisError)
        -> String
    {
        var args = ["XADD", stream]
        if let maxLength { args += ["MAXLEN", "~", String(maxLength)] }
        args.append("*")
        for (field, value) in fields { args += [field, value] }
        guard let id = try command(args).orThrow().string else {
            throw RedisError(.unexpectedReply, "XADD returned no id")
        }
        return id
    }

    /// Creates a consumer group (and the stream, with MKSTREAM); an existing group is not an error.
    public func xgroupCreate(_ stream: String, group: String, startID: String = "0") throws(RedisError) {
        let reply = try command(["XGROUP", "CREATE", stream, group, startID, "MKSTREAM"])
        if case .error(let message) = reply, !message.hasPrefix("BUSYGROUP") {
            throw RedisError(.server, message)
        }
    }

    /// XREADGROUP for one stream; `id` is `>` for new entries or `0` for this consumer's pending ones.
    public func xreadgroup(
        group: String, consumer: String, stream: String, id: String = ">", count: Int = 100,
        block: Duration? = nil
    ) throws(RedisError) -> [StreamEntry] {
        var args = ["XREADGROUP", "GROUP", group, consumer, "COUNT", String(count)]
        if let block {
            args += [
                "BLOCK", String(block.components.seconds * 1000 + block.components.attoseconds / 1_000_000_000_000_000),
            ]
        }
        args += ["STREAMS", stream, id]
        let reply = try command(args).orThrow()
        guard let streams = reply.array else { return [] }
        var entries: [StreamEntry] = []
        for item in streams {
            guard let pair = item.array, pair.count == 2 else { continue }
            entries += StreamEntry.list(pair[1])
        }
        return entries
    }

    /// XRANGE: entries from `start` (`-`, an id, or `(id` for after it) to `end`, at most `count`.
    public func xrange(_ stream: String, from start: String = "-", to end: String = "+", count: Int? = nil)
        throws(RedisError)
        -> [StreamEntry]
    {
        var args = ["XRANGE", stream, start, end]
        if let count { args += ["COUNT", String(count)] }
        return StreamEntry.list(try command(args).orThrow())
    }

    /// XACK; returns how many entries were acknowledged.
    public func xack(_ stream: String, group: String, ids: [String]) throws(RedisError) -> Int {
        try command(["XACK", stream, group] + ids).orThrow().int ?? 0
    }

    /// The number of entries delivered to the group but not yet acknowledged (XPENDING summary).
    public func xpendingCount(_ stream: String, group: String) throws(RedisError) -> Int {
        let reply = try command(["XPENDING", stream, group]).orThrow()
        return reply.array?.first?.int ?? 0
    }
}

/// One stream entry: its id and its field/value pairs in order.
public struct StreamEntry: Sendable, Equatable {
    /// The entry id (`ms-seq`).
    public let id: String
    /// Field/value pairs.
    public let fields: [(String, String)]

    /// The value of the first field named `name`.
    public subscript(_ name: String) -> String? { fields.first(where: { $0.0 == name })?.1 }

    /// An entry with its id and fields.
    public init(id: String, fields: [(String, String)]) {
        self.id = id
        self.fields = fields
    }

    /// Whether stream entry id `a` (`ms-seq`, or "0" for the start) comes at or after `b`, in stream order.
    public static func id(_ a: String, isAtOrAfter b: String) -> Bool {
        func parts(_ id: String) -> (UInt64, UInt64) {
            let halves = id.split(separator: "-", maxSplits: 1)
            return (UInt64(halves.first ?? "") ?? 0, halves.count > 1 ? UInt64(halves[1]) ?? 0 : 0)
        }
        let (x, y) = (parts(a), parts(b))
        return x.0 != y.0 ? x.0 > y.0 : x.1 >= y.1
    }

    /// The entries of an XRANGE / XREADGROUP list reply (`[[id, [field, value, …]], …]`).
    public static func list(_ reply: RedisReply) -> [StreamEntry] {
        var entries: [StreamEntry] = []
        for raw in reply.array ?? [] {
            guard let parts = raw.array, parts.count == 2, let entryID = parts[0].string else { continue }
            var fields: [(String, String)] = []
            let values = parts[1].array ?? []
            var index = 0
            while index + 1 < values.count {
                fields.append((values[index].string ?? "", values[index + 1].string ?? ""))
                index += 2
            }
            entries.append(StreamEntry(id: entryID, fields: fields))
        }
        return entries
    }

    /// Same id and the same fields in the same order.
    public static func == (lhs: StreamEntry, rhs: StreamEntry) -> Bool {
        lhs.id == rhs.id && lhs.fields.map(\.0) == rhs.fields.map(\.0) && lhs.fields.map(\.1) == rhs.fields.map(\.1)
    }
}
