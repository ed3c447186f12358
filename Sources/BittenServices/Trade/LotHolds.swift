import BittenCore
import Foundation
import Redis
import Synchronization

/// The concentration holds of many fires, gathered per set of keys and riding a trade engine's commit rounds (the fire
/// desk's engine): the holds that arrive between two rounds go with the next round, one `hold_lots` call per set of
/// keys, inside the round's transaction on one server (`CommitRider`). A fire holds on all its keys (its symbol's and
/// its signal's) in one step, or on none. Under load a signal fired by many users costs one call per round instead of
/// one per fire. The rounds go one after another, and the holds of one call are decided in the order they arrived.
final class LotHolds: Sendable {
    /// One key a fire holds on: its limit, and how long the key is kept (0: for ever).
    struct Limit: Sendable, Hashable {
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

    /// The engine whose commit rounds carry the holds.
    private weak let engine: TradeEngine?
    /// Holds waiting for the next commit round, in the order they came.
    private let riders = Mutex<[Request]>([])
    /// Holds per call are capped (one Lua call blocks Redis while it runs).
    static let maxPerCall = 500

    /// Holds that ride `engine`'s commit rounds: a fire's hold goes to Redis with the commit of its reservation, with
    /// no task and no round trip of its own.
    init(riding engine: TradeEngine) {
        self.engine = engine
        engine.carry(self)
    }

    /// Holds a fire's `lots` (its hold field `field`) on every key of `limits`, gathered with the other fires' holds
    /// on the same keys; the ticket gives the answer.
    func submit(field: String, lots: Double, on limits: [Limit]) -> Ticket {
        guard !limits.isEmpty else { return Ticket(answer: .success(Answer(held: true, refusedBy: nil, total: 0))) }
        guard let engine else {
            return Ticket(answer: .failure(RedisError(.closed, "the trade engine that carries the holds is gone")))
        }
        let ticket = Ticket()
        riders.withLock { $0.append(Request(field: field, lots: lots, limits: limits, ticket: ticket)) }
        engine.wakeCommitter()
        return ticket
    }

    /// One `hold_lots` call for holds on the same limits.
    private static func call(_ batch: [Request], limits: [Limit]) -> CommitRider.Call {
        var args = limits.flatMap { [TradeShard.number($0.limit), String($0.ttl)] }
        args.reserveCapacity(args.count + batch.count * 2)
        for request in batch { args += [request.field, TradeShard.number(request.lots)] }
        return CommitRider.Call(script: LuaScripts.holdLots, keys: limits.map(\.key), args: args)
    }

    /// What one `hold_lots` call answered, to each of its holds.
    private static func deliver(_ reply: Result<RedisReply, any Error>, to batch: [Request]) {
        let parts: [RedisReply]
        do {
            parts = try reply.get().orThrow().array ?? []
        } catch {
            for request in batch { request.ticket.deliver(.failure(error)) }
            return
        }
        for (index, request) in batch.enumerated() {
            guard parts.count == batch.count * 3, let flag = parts[index * 3].int, let key = parts[index * 3 + 1].int
            else {
                request.ticket.deliver(.failure(Malformed(count: parts.count, expected: batch.count * 3)))
                continue
            }
            let total = parts[index * 3 + 2].string.flatMap(Double.init) ?? 0
            request.ticket.deliver(
                .success(Answer(held: flag == 1, refusedBy: flag == 1 ? nil : key - 1, total: total)))
        }
    }

    /// `hold_lots` answered something else than a flag, a key and a total per hold.
    struct Malformed: Error, CustomStringConvertible {
        var count: Int
        var expected: Int
        var description: String { "hold_lots answered \(count) values for \(expected)" }
    }
}

extension LotHolds: CommitRiding {
    var waitingToRide: Bool { riders.withLock { !$0.isEmpty } }

    /// The holds waiting, as one `hold_lots` call per set of limits (in the order the sets came), each call at most
    /// `maxPerCall` holds.
    func takeRiders() -> [CommitRider] {
        let waiting = riders.withLock { riders in
            defer { riders = [] }
            return riders
        }
        var order: [[Limit]] = []
        var groups: [[Limit]: [Request]] = [:]
        for request in waiting {
            if groups[request.limits] == nil { order.append(request.limits) }
            groups[request.limits, default: []].append(request)
        }
        return order.flatMap { limits in
            let requests = groups[limits]!
            return stride(from: 0, to: requests.count, by: Self.maxPerCall).map { start in
                let batch = Array(requests[start..<min(requests.count, start + Self.maxPerCall)])
                return CommitRider(calls: [Self.call(batch, limits: limits)]) { replies in
                    Self.deliver(replies.map { $0.first ?? .null }, to: batch)
                }
            }
        }
    }
}
