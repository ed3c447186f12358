import Redis

/// Scripts of another kind that go to Redis with the trade engine's next commit round: on one server inside the round's
/// transaction (no round trip and no task of their own), on a cluster beside the shards' commits, in the same moment.
/// A rider is not part of any shard's commit: its replies are its own, whatever the shards' commits do (a fenced shard
/// leaves it in), and it fails only when nothing of the round reached Redis. The concentration holds ride this way
/// (`LotHolds`): a fire's hold goes with the commit of its reservation.
struct CommitRider: Sendable {
    /// One script call.
    struct Call: Sendable {
        var script: RedisScript
        var keys: [String]
        var args: [String]

        /// The call as one command (EVAL with the source: the server caches it by its digest).
        var command: [String] { ["EVAL", script.source, String(keys.count)] + keys + args }
    }

    /// The calls, run in order.
    var calls: [Call]
    /// Told once: one reply per call (an error reply among them for a call Redis refused), or why none ran.
    var finish: @Sendable (Result<[RedisReply], any Error>) -> Void

    /// Every rider's calls as commands, in order.
    static func commands(_ riders: [CommitRider]) -> [[String]] { riders.flatMap { $0.calls.map(\.command) } }

    /// Hands each rider its part of `replies` (one per call of every rider, in order), or the error to all.
    static func finish(_ riders: [CommitRider], with replies: Result<[RedisReply], any Error>) {
        switch replies {
        case .failure(let error):
            for rider in riders { rider.finish(.failure(error)) }
        case .success(let replies):
            var start = 0
            for rider in riders {
                let end = start + rider.calls.count
                guard end <= replies.count else {
                    rider.finish(.failure(RedisError(.unexpectedReply, "\(replies.count) replies for \(end) calls")))
                    continue
                }
                rider.finish(.success(Array(replies[start..<end])))
                start = end
            }
        }
    }

    /// Runs the riders on their own (a round with no shard to commit), in one pipeline.
    static func run(_ riders: [CommitRider], redis: RedisClient) async {
        guard !riders.isEmpty else { return }
        let replies: Result<[RedisReply], any Error>
        do {
            replies = .success(try await redis.pipeline(commands(riders)))
        } catch {
            replies = .failure(error)
        }
        finish(riders, with: replies)
    }
}

/// What hands riders to the trade engine's commit rounds.
protocol CommitRiding: AnyObject, Sendable {
    /// Whether riders wait (the committer does not linger for more changes then).
    var waitingToRide: Bool { get }
    /// The riders for this round (each given once).
    func takeRiders() -> [CommitRider]
}

/// The engine's weak hold on its rider source.
struct RidingSource {
    weak var source: (any CommitRiding)?
}
