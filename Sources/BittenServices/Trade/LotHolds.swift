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

    /// One fire's hold on its way to Redis: `answer` gives what `hold_lots` decided, at once when it has already
    /// come. Submitting costs the caller no task of its own (the fire desk submits from inside the reservation's
    /// commit and reads the answer after it); one reader per ticket.
    final class Ticket: Sendable {
        private let state = Mutex<
            (answer: Result<Answer, any Error>?, waiter: CheckedContinuation<Result<Answer, any Error>, Never>?)
        >((nil, nil))

        fileprivate init() {}

        fileprivate init(answer: Result<Answer, any Error>) { state.withLock { $0.answer = answer } }

        fileprivate func deliver(_ answer: Result<Answer, any Error>) {
            let waiter = state.withLock { state in
                state.answer = answer
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: answer)
        }

        /// The answer, once it has come.
        var answer: Result<Answer, any Error> {
            get async {
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state -> Result<Answer, any Error>? in
                        if let answer = state.answer { return answer }
                        state.waiter = continuation
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            }
        }
    }

    private struct Request: Sendable {
        var field: String
        var lots: Double
        var limits: [Limit]
        var ticket: Ticket
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
    /// on the same keys; the ticket gives the answer.
    func submit(field: String, lots: Double, on limits: [Limit]) -> Ticket {
        guard !limits.isEmpty else { return Ticket(answer: .success(Answer(held: true, refusedBy: nil, total: 0))) }
        let name = limits.map(\.key).joined(separator: "\n")
        let ticket = Ticket()
        let start = queues.withLock { queues -> Bool in
            queues[name, default: Queue()].waiting.append(
                Request(field: field, lots: lots, limits: limits, ticket: ticket))
            guard !queues[name]!.busy else { return false }
            queues[name]!.busy = true
            return true
        }
        if start { Task { await self.drain(name) } }
        return ticket
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
            var args = limits.flatMap { [TradeShard.number($0.limit), String($0.ttl)] }
            args.reserveCapacity(args.count + batch.count * 2)
            for request in batch { args += [request.field, TradeShard.number(request.lots)] }
            do {
                let parts =
                    try await redis.evaluate(LuaScripts.holdLots, keys: limits.map(\.key), args: args).array
                    ?? []
                for (index, request) in batch.enumerated() {
                    guard parts.count == batch.count * 3, let flag = parts[index * 3].int,
                        let key = parts[index * 3 + 1].int
                    else {
                        request.ticket.deliver(.failure(Malformed(count: parts.count, expected: batch.count * 3)))
                        continue
                    }
                    let total = parts[index * 3 + 2].string.flatMap(Double.init) ?? 0
                    request.ticket.deliver(
                        .success(Answer(held: flag == 1, refusedBy: flag == 1 ? nil : key - 1, total: total)))
                }
            } catch {
                for request in batch { request.ticket.deliver(.failure(error)) }
            }
        }
    }

    /// `hold_lots` answered something else than a flag, a key and a total per hold.
    struct Malformed: Error, CustomStringConvertible {
        var count: Int
        var expected: Int
        var description: String { "hold_lots answered \(count) values for \(expected)" }
    }
}
