/// Token buckets per key (an EA identity or UUID): `rate` messages a second with bursts up to
/// `burst`. Pure and clock-free (every call takes the time). The table is bounded: past `maxKeys`
/// the keys idle longest are forgotten (a forgotten key starts again with a full bucket).
public struct RateLimiter: Sendable {
    /// Messages per second refilled.
    public let rate: Double
    /// The bucket's size.
    public let burst: Double
    /// Keys tracked at most (the least recent go first).
    public let maxKeys: Int
    private var buckets: [String: (tokens: Double, at: Double)] = [:]
    /// Messages refused per key since the last `drainRefusals()`.
    public private(set) var refusals: [String: Int] = [:]

    /// A limiter of `rate` per second with bursts of `burst`, for at most `maxKeys` keys.
    public init(rate: Double, burst: Double, maxKeys: Int = 50_000) {
        self.rate = rate
        self.burst = max(1, burst)
        self.maxKeys = maxKeys
    }

    /// Whether one more message from `key` at `time` is allowed (and takes its token).
    public mutating func allow(_ key: String, at time: Double) -> Bool {
        // One lookup, the bucket changed in place.
        let (burst, rate) = (self.burst, self.rate)
        let allowed: Bool = {
            (bucket: inout (tokens: Double, at: Double)) -> Bool in
            bucket.tokens = min(burst, bucket.tokens + max(0, time - bucket.at) * rate)
            bucket.at = time
            guard bucket.tokens >= 1 else { return false }
            bucket.tokens -= 1
            return true
        }(&buckets[key, default: (burst, time)])
        if !allowed { refusals[key, default: 0] += 1 }
        if buckets.count > maxKeys { evict() }
        return allowed
    }

    /// Refusals per key since the last call (for one log line per offender).
    public mutating func drainRefusals() -> [String: Int] {
        defer { refusals = [:] }
        return refusals
    }

    /// Keys with a bucket now.
    public var trackedKeys: Int { buckets.count }

    private mutating func evict() {
        let keep = maxKeys * 3 / 4
        let newest = buckets.sorted { $0.value.at > $1.value.at }.prefix(keep)
        buckets = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value) })
    }
}
