import Foundation
import Logging
import Redis
import Synchronization

/// The trade engine's commit connection on one server: a blocking connection of its own (a `RedisClient` with one
/// worker, used only through `withConnection`) that keeps the shards it has checked WATCHed from one commit round
/// to the next, so that a round usually costs one round trip instead of two. The engine's commit loop runs on its
/// worker's thread (`RedisWorkerExecutor`), so a round's blocking work costs no hand-off to the pool and back.
///
/// A round on one server is fenced by WATCHing each shard's state hash (which a new owner's lease bumps, its
/// `fence`) and reading the shard's lease after the WATCH: if the lease is the committer's token and the state is
/// untouched until EXEC, nobody took the shard in between. Each round sends, after its EXEC and in the same write,
/// the WATCH of every shard it found its own and one MGET of their leases. The next round whose shards are all
/// among those skips its own WATCH and lease read: the same two facts hold (the lease was the token after the
/// WATCH; EXEC fails if the state changed since). When EXEC fails (a shard changed hands, or this process took one
/// again), every shard is checked afresh, those no longer held are left out, and the round is sent once more.
public final class CommitLane: Sendable {
    /// A shard this connection checked and WATCHes: the token its lease held after the WATCH, and its keys.
    struct Verified: Sendable, Equatable {
        var token: String
        var state: String
        var lease: String
    }

    /// The shards WATCHed on a connection since its last EXEC. The client replaces its connection only after a
    /// command on it failed, and a round that fails forgets what it WATCHed, so a new connection (even one at the
    /// address of the old) never inherits a WATCH it does not have; the identity is one more guard.
    private struct Watching {
        var connection: ObjectIdentifier?
        var shards: [Int: Verified] = [:]
    }

    /// One blocking worker and its connection; nothing else uses it.
    let client: RedisClient
    private let watching = Mutex(Watching())
    /// Rounds that had to WATCH and read the leases first (a round trip more); for the tests.
    let checkedRounds = Atomic<Int>(0)

    /// A lane to the server at `url` (its connection opens with the first round).
    public init(url: RedisURL) {
        client = RedisClient(url: url, poolSize: 1, logger: Logger(label: "bitten.redis.commit"))
    }

    /// Ends its thread.
    public func shutdown() { client.shutdown() }

    /// The shards the lane's connection WATCHes now, by index.
    var watched: [Int: Verified] { watching.withLock { $0.shards } }

    /// The shards `connection` WATCHes (none when it is not the connection the last round left them on).
    func watched(on connection: RedisConnection) -> [Int: Verified] {
        let identity = ObjectIdentifier(connection)
        return watching.withLock { $0.connection == identity ? $0.shards : [:] }
    }

    /// What `connection` WATCHes after a round (nothing: after a failure, once UNWATCHed).
    func watch(_ shards: [Int: Verified], on connection: RedisConnection) {
        let identity = ObjectIdentifier(connection)
        watching.withLock { $0 = Watching(connection: identity, shards: shards) }
    }
}

extension ShardStore {
    /// Stores a round on `lane` (one server): see `CommitLane`.
    static func commit(_ pending: [Pending], riding: [[String]], lane: CommitLane) async throws -> (
        [Result<[CommandFailure], any Error>], [RedisReply]
    ) {
        try await lane.client.withConnection { connection in
            do {
                let done = try transact(
                    pending, riding: riding, on: connection, verified: lane.watched(on: connection), lane: lane)
                lane.watch(done.verified ?? [:], on: connection)
                return (done.results, done.riders)
            } catch {
                lane.watch([:], on: connection)
                if !connection.isBroken { _ = try? connection.command(["UNWATCH"]) }
                throw error
            }
        }
    }

    /// One round on a blocking connection: each shard's lease checked (WATCH its state, then read its lease) unless
    /// `verified` holds it with the same token, the commands of the shards still held in one MULTI/EXEC with
    /// `riding` after them. With `verified` (a lane), the WATCH and the lease reads for the next round follow EXEC
    /// in the same write, and what they found is returned; without, nothing stays WATCHed.
    static func transact(
        _ pending: [Pending], riding: [[String]], on connection: RedisConnection, verified: [Int: CommitLane.Verified]?,
        lane: CommitLane? = nil
    ) throws -> (
        results: [Result<[CommandFailure], any Error>], riders: [RedisReply], verified: [Int: CommitLane.Verified]?
    ) {
        var known = verified ?? [:]
        let own = pending.map {
            CommitLane.Verified(token: $0.token, state: $0.store.keys.state, lease: $0.store.keys.lease)
        }
        let indices = pending.map(\.store.keys.shard)
        /// WATCHes the shards' states, then reads their leases (one MGET).
        func check(_ shards: [(Int, CommitLane.Verified)]) throws -> [Int: String] {
            lane?.checkedRounds.add(1, ordering: .relaxed)
            let head = try connection.pipeline([["WATCH"] + shards.map(\.1.state), ["MGET"] + shards.map(\.1.lease)])
            try head[0].orThrow()
            let leases = try head[1].orThrow().array ?? []
            guard leases.count == shards.count else {
                throw RedisError(.unexpectedReply, "MGET answered \(leases.count) leases for \(shards.count)")
            }
            var holders: [Int: String] = [:]
            for (shard, lease) in zip(shards, leases) { holders[shard.0] = lease.string }
            return holders
        }
        var holders: [Int: String] = [:]
        if verified != nil, zip(indices, own).allSatisfy({ known[$0.0]?.token == $0.1.token }) {
            for (index, item) in zip(indices, own) { holders[index] = item.token }
        } else {
            holders = try check(Array(zip(indices, own)))
        }
        /// The shards still held and their commands, each commit's as one group (with `riding` after them, and
        /// `count` commands in all); the others refused (`Fenced`). The groups go out as they are, not joined.
        func build() -> (
            results: [Result<[CommandFailure], any Error>], groups: [[[String]]], count: Int, owners: [Int]
        ) {
            var results = [Result<[CommandFailure], any Error>](repeating: .success([]), count: pending.count)
            var groups: [[[String]]] = []
            var owners: [Int] = []  // the pending commit each command belongs to
            for (offset, item) in pending.enumerated() {
                if holders[indices[offset]] == item.token {
                    groups.append(item.commands)
                    owners += repeatElement(offset, count: item.commands.count)
                } else {
                    results[offset] = .failure(Fenced(shard: indices[offset], holder: holders[indices[offset]] ?? ""))
                }
            }
            groups.append(riding)
            return (results, groups, owners.count + riding.count, owners)
        }
        /// The shards to keep WATCHed for the next round: those known and those found held now.
        func keeping() -> [(Int, CommitLane.Verified)] {
            guard verified != nil else { return [] }
            var keep = known
            for (index, item) in zip(indices, own) where holders[index] == item.token { keep[index] = item }
            return keep.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        var round = build()
        var keep = keeping()
        var replies: [RedisReply] = []
        var after: [RedisReply] = []
        for attempt in 0..<2 {
            guard round.count > riding.count else {
                _ = try? connection.command(["UNWATCH"])
                return (
                    round.results, riding.isEmpty ? [] : try connection.pipeline(riding), verified == nil ? nil : [:]
                )
            }
            let tail = keep.isEmpty ? [] : [["WATCH"] + keep.map(\.1.state), ["MGET"] + keep.map(\.1.lease)]
            let all = try connection.pipeline(joining: [[["MULTI"]]] + round.groups + [[["EXEC"]], tail])
            let split = round.count + 2
            let outcome = Result { () throws(RedisError) -> [RedisReply] in
                try RedisConnection.execResult(Array(all.prefix(split)))
            }
            if case .failure(let error) = outcome, error.code == .transactionAborted, attempt == 0 {
                // A shard changed hands since it was checked (its new owner's lease, or this process taking it
                // again): nothing was written. Every shard checked afresh; those no longer held are refused and
                // WATCHed no more, the rest sent once more.
                _ = try? connection.command(["UNWATCH"])
                var every = Dictionary(uniqueKeysWithValues: zip(indices, own))
                for (index, item) in known where every[index] == nil { every[index] = item }
                let fresh = try check(every.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
                known = known.filter { fresh[$0.key] == $0.value.token }
                holders = fresh
                round = build()
                keep = keeping()
                continue
            }
            replies = try outcome.get()
            after = Array(all.dropFirst(split))
            break
        }
        var results = round.results
        let shardCommands = round.owners.count
        // EXEC runs every command; one Redis refuses is in its reply, the others are stored.
        for (position, reply) in replies.enumerated() where position < shardCommands {
            guard case .error(let message) = reply else { continue }
            let owner = round.owners[position]
            let command = round.groups.joined().dropFirst(position).first ?? []
            let failure = CommandFailure(shard: indices[owner], command: head(command), error: message)
            if case .success(var failures) = results[owner] {
                failures.append(failure)
                results[owner] = .success(failures)
            }
        }
        var next: [Int: CommitLane.Verified]?
        if verified != nil {
            // After EXEC: the WATCH, then the leases as read after it.
            var found: [Int: CommitLane.Verified] = [:]
            if after.count == 2, case .status = after[0], let leases = after[1].array, leases.count == keep.count {
                for ((index, item), lease) in zip(keep, leases) where lease.string == item.token { found[index] = item }
            }
            next = found
        }
        return (results, Array(replies.dropFirst(shardCommands)), next)
    }
}
