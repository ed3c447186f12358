import BittenCore
import Foundation
import Redis
import Synchronization

/// The concentration holds of many fires, gathered per set of keys: while one `hold_lots` call for those keys is on
/// its way to Redis, the holds that arrive meanwhile wait and go together in the next call (the group commit's idea,
/// for the totals). A fire holds on all its keys (its symbol's and its signal's) in one step, or on none. Under load
/// a signal fired by many users costs one call per round trip instead of one per fire; a lone fire goes at once. The
/// holds of one call are decided in the order they arrived.
final class LotHolds: Sendable {
    /// One key a fire holds on: its limit, and how long the key is kept (0: for ever).
    struct Limit: Sendable, Equatable {
        var key: String
        var limit: Double
        var ttl: Int
    }

    /// What `hold_lots` answered for one fire: held on every key, or refused by the key at `refusedBy` (an index
    /// into the fire's limits) whose total was `total`.
    struct Answer: Sendable, Equatable {
        var held: Bool
        var refusedBy: Int?
        var total: Double
    }

    private struct Request: Sendable {
        var field: String
        var lots: Double
        var limits: [Limit]
        var deliver: @Sendable (Result<Answer, any Error>) -> Void
    }

    private struct Queue {
        var busy = false
        var waiting: [Request] = []
    }

    private let redis: RedisClient
    private let queues = Mutex<[String: Queue]>([:])
    /// Holds per call are capped (one Lua call blocks Redis while it runs).
    static let maxPerCall = 500

    init(redis: RedisClient) { self.redis = redis }

    /// Holds a fire's `lots` (its hold field `field`) on every key of `limits`, gathered with the other fires' holds
    /// on the same keys.
    func hold(field: String, lots: Double, on limits: [Limit]) async -> Result<Answer, any Error> {
        guard !limits.isEmpty else { return .success(Answer(held: true, refusedBy: nil, total: 0)) }
        let name = limits.map(\.key).joined(separator: "\n")
        return await withCheckedContinuation { continuation in
            let request = Request(field: field, lots: lots, limits: limits) { continuation.resume(returning: $0) }
            let start = queues.withLock { queues -> Bool in
                queues[name, default: Queue()].waiting.append(request)
                guard !queues[name]!.busy else { return false }
                queues[name]!.busy = true
                return true
            }
            if start { Task { await self.drain(name) } }
        }
    }

    /// Sends the waiting holds on one set of keys, a call at a time, until none waits.
    private func drain(_ name: String) async {
        while true {
            let batch = queues.withLock { queues -> [Request] in
                guard var queue = queues[name], !queue.waiting.isEmpty else {
                    queues[name] = nil
                    return []
                }
                // One set of limits per call (they come from the configuration: the same for all, in practice).
                let limits = queue.waiting[0].limits
                let count = min(Self.maxPerCall, queue.waiting.prefix { $0.limits == limits }.count)
                let batch = Array(queue.waiting.prefix(count))
                queue.waiting.removeFirst(count)
                queues[name] = queue
                return batch
            }
            guard let limits = batch.first?.limits else { return }
            var args = limits.flatMap { [number($0.limit), String($0.ttl)] }
            args.reserveCapacity(args.count + batch.count * 2)
            for request in batch { args += [request.field, number(request.lots)] }
            do {
                let parts =
                    try await redis.evaluate(LuaScripts.holdLots, keys: limits.map(\.key), args: args).array
                    ?? []
                for (index, request) in batch.enumerated() {
                    guard parts.count == batch.count * 3, let flag = parts[index * 3].int,
                        let key = parts[index * 3 + 1].int
                    else {
                        request.deliver(.failure(Malformed(count: parts.count, expected: batch.count * 3)))
                        continue
                    }
                    let total = parts[index * 3 + 2].string.flatMap(Double.init) ?? 0
                    request.deliver(
                        .success(Answer(held: flag == 1, refusedBy: flag == 1 ? nil : key - 1, total: total)))
                }
            } catch {
                for request in batch { request.deliver(.failure(error)) }
            }
        }
    }

    /// `hold_lots` answered something else than a flag, a key and a total per hold.
    struct Malformed: Error, CustomStringConvertible {
        var count: Int
        var expected: Int
        var description: String { "hold_lots answered \(count) values for \(expected)" }
    }

    private func number(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 8) ?? "0" }
}
