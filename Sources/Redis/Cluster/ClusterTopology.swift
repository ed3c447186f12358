/// Which primary serves each hash slot, read from `CLUSTER SHARDS` (Redis 7) or `CLUSTER SLOTS`, and
/// corrected one slot at a time by MOVED replies until the next full refresh.
public struct ClusterTopology: Sendable, Equatable {
    /// A slot range and the primary that serves it, with its replicas.
    public struct Range: Sendable, Equatable {
        /// The slots this range covers.
        public var slots: ClosedRange<Int>
        /// The primary serving them.
        public var primary: ClusterEndpoint
        /// Its replicas.
        public var replicas: [ClusterEndpoint]
    }

    /// The ranges, sorted by first slot.
    public private(set) var ranges: [Range]
    /// Slots moved since the map was read (MOVED), which override the ranges.
    public private(set) var moved: [Int: ClusterEndpoint] = [:]

    /// The topology of these ranges (from `CLUSTER SLOTS`).
    public init(ranges: [Range]) {
        self.ranges = ranges.sorted { $0.slots.lowerBound < $1.slots.lowerBound }
    }

    /// The primary that serves `slot`, if the map has one.
    public func primary(for slot: Int) -> ClusterEndpoint? {
        if let endpoint = moved[slot] { return endpoint }
        var low = 0
        var high = ranges.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let range = ranges[middle].slots
            if slot < range.lowerBound {
                high = middle - 1
            } else if slot > range.upperBound {
                low = middle + 1
            } else {
                return ranges[middle].primary
            }
        }
        return nil
    }

    /// Every primary in the map.
    public var primaries: [ClusterEndpoint] {
        var seen = Set<ClusterEndpoint>()
        return (ranges.map(\.primary) + moved.values).filter { seen.insert($0).inserted }
    }

    /// Whether every slot has a primary.
    public var coversAllSlots: Bool {
        var next = 0
        for range in ranges {
            guard range.slots.lowerBound <= next else { return false }
            next = max(next, range.slots.upperBound + 1)
        }
        return next >= ClusterSlot.count
    }

    /// Notes a MOVED reply: `slot` is served by `endpoint` from now on.
    public mutating func apply(moved slot: Int, to endpoint: ClusterEndpoint) { moved[slot] = endpoint }

    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, …], replica…], …]`. An empty host
    /// means the node that answered (`askedHost`).
    public init(slotsReply reply: RedisReply, askedHost: String) throws(RedisError) {
        guard let items = reply.array else { throw RedisError(.unexpectedReply, "CLUSTER SLOTS answered \(reply)") }
        var ranges: [Range] = []
        for item in items {
            guard let fields = item.array, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                start >= 0, start <= end, end < ClusterSlot.count
            else { throw RedisError(.unexpectedReply, "CLUSTER SLOTS entry \(item) is not [start, end, node, …]") }
            let nodes = try fields[2...].map { (node: RedisReply) throws(RedisError) -> ClusterEndpoint in
                guard let parts = node.array, parts.count >= 2, let port = parts[1].int else {
                    throw RedisError(.unexpectedReply, "CLUSTER SLOTS node \(node) is not [host, port, …]")
                }
                let host = parts[0].string ?? ""
                return ClusterEndpoint(host: host.isEmpty || host == "?" ? askedHost : host, port: port)
            }
            ranges.append(Range(slots: start...end, primary: nodes[0], replicas: Array(nodes.dropFirst())))
        }
        self.init(ranges: ranges)
    }

    /// Reads a `CLUSTER SHARDS` reply (RESP2: each shard a flat list of `slots`, `[start, end, …]`,
    /// `nodes`, each node a flat list of `ip`, `port`, `role`, `health`, …). Failed nodes are left out.
    public init(shardsReply reply: RedisReply, askedHost: String) throws(RedisError) {
        guard let shards = reply.array else { throw RedisError(.unexpectedReply, "CLUSTER SHARDS answered \(reply)") }
        func fields(_ reply: RedisReply) -> [String: RedisReply] {
            var result: [String: RedisReply] = [:]
            let items = reply.array ?? []
            var index = 0
            while index + 1 < items.count {
                if let key = items[index].string { result[key] = items[index + 1] }
                index += 2
            }
            return result
        }
        var ranges: [Range] = []
        for shard in shards {
            let shardFields = fields(shard)
            guard let bounds = shardFields["slots"]?.array?.compactMap(\.int), bounds.count % 2 == 0 else {
                throw RedisError(.unexpectedReply, "CLUSTER SHARDS entry \(shard) has no slots list")
            }
            var primary: ClusterEndpoint?
            var replicas: [ClusterEndpoint] = []
            for node in shardFields["nodes"]?.array ?? [] {
                let n = fields(node)
                guard let port = n["port"]?.int, n["health"]?.string != "fail" else { continue }
                let ip = n["ip"]?.string ?? n["endpoint"]?.string ?? ""
                let endpoint = ClusterEndpoint(host: ip.isEmpty || ip == "?" ? askedHost : ip, port: port)
                if n["role"]?.string == "master" { primary = endpoint } else { replicas.append(endpoint) }
            }
            guard !bounds.isEmpty else { continue }  // a shard without slots (a primary being added)
            guard let primary else {
                throw RedisError(.unexpectedReply, "CLUSTER SHARDS shard with slots \(bounds) has no healthy primary")
            }
            var index = 0
            while index < bounds.count {
                let (start, end) = (bounds[index], bounds[index + 1])
                guard start >= 0, start <= end, end < ClusterSlot.count else {
                    throw RedisError(.unexpectedReply, "CLUSTER SHARDS slot range \(start)-\(end) is out of bounds")
                }
                ranges.append(Range(slots: start...end, primary: primary, replicas: replicas))
                index += 2
            }
        }
        self.init(ranges: ranges)
    }
}
