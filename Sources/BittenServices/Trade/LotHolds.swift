import BittenCore
import Foundation
import Redis
import Synchronization

/// The concentration holds of many fires, gathered per key: while one `hold_lots` call for a key is on its way to
/// Redis, the holds that arrive meanwhile wait and go together in the next call (the group commit's idea, for the
/// totals). Under load a signal fired by many users costs one call per key per round trip instead of one per fire;
/// a lone fire goes at once, as before. The holds of one call are decided in the order they arrived.
final class LotHolds: Sendable {
    /// One fire's hold on one key, and where its answer goes (`held`, and the total after, or before a refusal).
    struct Request: Sendable {
        var field: String
        var lots: Double
        var limit: Double
        var ttl: Int
        var deliver: @Sendable (Result<(held: Bool, total: Double), any Error>) -> Void
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

    /// Queues a hold on `key`; its answer goes to `request.deliver` once its call returns.
    func hold(_ key: String, _ request: Request) {
        let start = queues.withLock { queues -> Bool in
            queues[key, default: Queue()].waiting.append(request)
            guard !queues[key]!.busy else { return false }
            queues[key]!.busy = true
            return true
        }
        if start { Task { await self.drain(key) } }
    }

    /// Holds every fire of `requests` (one per key) and returns their answers in the same order.
    func hold(_ requests: [(key: String, request: Request)]) async -> [Result<(held: Bool, total: Double), any Error>] {
        guard !requests.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            let gathered = Mutex<(left: Int, results: [Result<(held: Bool, total: Double), any Error>?])>(
                (requests.count, Array(repeating: nil, count: requests.count)))
            for (index, item) in requests.enumerated() {
                var request = item.request
                request.deliver = { result in
                    let done = gathered.withLock { state -> [Result<(held: Bool, total: Double), any Error>]? in
                        state.results[index] = result
                        state.left -= 1
                        return state.left == 0 ? state.results.map { $0! } : nil
                    }
                    if let done { continuation.resume(returning: done) }
                }
                hold(item.key, request)
            }
        }
    }

    /// Sends the key's waiting holds, a call at a time, until none waits.
    private func drain(_ key: String) async {
        while true {
            let batch = queues.withLock { queues -> [Request] in
                guard var queue = queues[key], !queue.waiting.isEmpty else {
                    queues[key] = nil
                    return []
                }
                // One limit per call (a key's limit comes from the configuration: the same for all, in practice).
                let limit = queue.waiting[0].limit
                let count = min(
                    Self.maxPerCall, queue.waiting.prefix { $0.limit == limit }.count)
                let batch = Array(queue.waiting.prefix(count))
                queue.waiting.removeFirst(count)
                queues[key] = queue
                return batch
            }
            guard !batch.isEmpty else { return }
            var args = [number(batch[0].limit), String(batch.map(\.ttl).max() ?? 0)]
            args.reserveCapacity(2 + batch.count * 2)
            for request in batch { args += [request.field, number(request.lots)] }
            do {
                let parts = try await redis.evaluate(LuaScripts.holdLots, keys: [key], args: args).array ?? []
                for (index, request) in batch.enumerated() {
                    guard parts.count == batch.count * 2, let flag = parts[index * 2].int,
                        let total = parts[index * 2 + 1].string.flatMap(Double.init)
                    else {
                        request.deliver(.failure(Malformed(count: parts.count, expected: batch.count * 2)))
                        continue
                    }
                    request.deliver(.success((flag == 1, total)))
                }
            } catch {
                for request in batch { request.deliver(.failure(error)) }
            }
        }
    }

    /// `hold_lots` answered something else than a flag and a total per hold.
    struct Malformed: Error, CustomStringConvertible {
        var count: Int
        var expected: Int
        var description: String { "hold_lots answered \(count) values for \(expected)" }
    }

    private func number(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 8) ?? "0" }
}
