import BittenCore
import Foundation
import Redis

/// A trade shard's commits and loading. A commit stores everything one group of events decided in one
/// atomic step (MULTI/EXEC with the lease WATCHed on one server; one script with every key declared, all
/// in the shard's slot, on a cluster), and only while the committer holds the shard's lease with the
/// fence number it was given: an owner that was paused or cut off and lost the lease can never write again.
public struct ShardStore: Sendable {
    /// The trade path's client.
    public let redis: RedisClient
    /// The shard's keys.
    public let keys: ShardKeys
    /// Commits through the fenced script even on one server (as on a cluster).
    let scripted: Bool

    /// The store of shard `shard`.
    public init(redis: RedisClient, shard: Int) {
        self.init(redis: redis, shard: shard, scripted: false)
    }

    init(redis: RedisClient, shard: Int, scripted: Bool) {
        self.redis = redis
        keys = ShardKeys(shard: shard)
        self.scripted = scripted || redis.isCluster
    }

    /// Why a commit was refused.
    public struct Fenced: Error, CustomStringConvertible {
        /// The shard.
        public let shard: Int
        /// Who holds it.
        public let holder: String
        /// A one-line description.
        public var description: String {
            "shard \(shard) is no longer ours (lease: \(holder.isEmpty ? "none" : holder))"
        }
    }

    // MARK: lease

    /// Takes the shard's lease for this run (`instance/boot`), or renews it when this run holds it: the token
    /// (`instance/boot|fence`) every commit must present, or nil while another instance holds it. A new run of
    /// the same instance (a restart) takes its shard back at once with the next fence, so the old run, if it
    /// still lives, is refused its next commit.
    public func acquire(instance: String, boot: String, ttl: Duration) async throws -> String? {
        let ms = ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000
        return try await redis.evaluate(
            Self.acquireScript, keys: [keys.lease, keys.state], args: [instance, boot, String(max(1, ms))]
        ).string
    }

    /// Gives the lease up (only when `token` still holds it).
    public func release(token: String) async throws {
        _ = try await redis.evaluate(Self.releaseScript, keys: [keys.lease], args: [token])
    }

    /// The lease scripts (`Scripts/acquire_lease.lua`, `Scripts/release_lease.lua`).
    static let acquireScript = LuaScripts.acquireLease
    static let releaseScript = LuaScripts.releaseLease

    /// Runs the commands only while the lease holds the committer's token (`Scripts/commit_fenced.lua`).
    static let commitScript = LuaScripts.commitFenced

    // MARK: commit

    /// Stores `changes` and the checkpoint (`lastApplied`, the last ledger entry they include; nil: unchanged)
    /// in one step, if `token` still holds the lease. Throws `Fenced` when it does not (nothing is written).
    /// Returns the commands Redis refused (the others were stored).
    @discardableResult
    public func commit(_ changes: [TradeChange], sequence: Int, lastApplied: String?, token: String) async throws
        -> [CommandFailure]
    {
        let commands = Self.commands(for: changes, keys: keys, sequence: sequence, lastApplied: lastApplied)
        return try await Self.commit([Pending(store: self, commands: commands, token: token)], redis: redis)[0].get()
    }

    /// A command of a commit that Redis refused (a key of another type, written by hand, most likely): the
    /// rest of the commit is stored, as MULTI/EXEC does, and the refusal is reported, never retried.
    public struct CommandFailure: Sendable, Equatable, CustomStringConvertible {
        /// The shard.
        public var shard: Int
        /// The command's name and first key.
        public var command: String
        /// Why.
        public var error: String
        /// A one-line description.
        public var description: String { "shard \(shard): \(command): \(error)" }
    }

    /// The name and key of a command, as a failure names it.
    static func head(_ command: [String]) -> String { command.prefix(2).joined(separator: " ") }

    /// The fenced script: the commands run only while the lease holds `token`; those Redis refuses are reported.
    func script(_ commands: [[String]], token: String) async throws -> [CommandFailure] {
        var touched: Set<String> = [keys.lease]
        var keyList = [keys.lease]
        var args = [token]
        args.reserveCapacity(commands.reduce(1) { $0 + $1.count + 1 })
        for command in commands {
            args.append(String(command.count))
            args += command
            // A PUBLISH names a channel, not a key.
            if command.count > 1, command[0] != "PUBLISH", touched.insert(command[1]).inserted {
                keyList.append(command[1])
            }
            // COPY / SMOVE name a second key.
            if command[0] == "COPY", command.count > 2, touched.insert(command[2]).inserted {
                keyList.append(command[2])
            }
        }
        do {
            // {commands run, {index, error}…}: index is the 1-based position of a refused command.
            let reply = try await redis.evaluate(Self.commitScript, keys: keyList, args: args)
            let refused = reply.array?.dropFirst().first?.array ?? []
            return stride(from: 0, to: refused.count - 1, by: 2).compactMap { i -> CommandFailure? in
                guard let position = refused[i].int, commands.indices.contains(position - 1) else { return nil }
                return CommandFailure(
                    shard: keys.shard, command: Self.head(commands[position - 1]), error: refused[i + 1].string ?? "")
            }
        } catch let error as RedisError where error.message.contains("FENCED") {
            let holder = error.message.components(separatedBy: "FENCED ").last ?? ""
            throw Fenced(shard: keys.shard, holder: holder.trimmingCharacters(in: .whitespaces))
        }
    }

    /// One shard's part of a commit round.
    public struct Pending: Sendable {
        /// The shard's store.
        public var store: ShardStore
        /// The commit's commands.
        public var commands: [[String]]
        /// The lease token the commit is fenced with.
        public var token: String
    }

    /// Stores several shards' commits; one result per commit, in order. On one server they go together in
    /// one MULTI/EXEC on a connection of their own, every lease checked first and every shard's state hash
    /// WATCHed (a new owner's lease bumps its `fence` there): a shard whose lease is not its token any more
    /// is refused (`Fenced`) and left out; if a shard changes hands between the check and EXEC, nothing is
    /// written and the round is checked and sent once more, then fails (to be tried again). On a
    /// cluster each shard's commit is its own fenced script, all at once.
    /// A stored commit reports the commands Redis refused (`CommandFailure`); the rest of it is stored.
    /// `riders` go with the round (`CommitRider`): in its transaction on one server, beside it on a cluster.
    /// With a `lane` (one server), the round goes on the lane's own connection, which keeps the shards WATCHed
    /// between rounds (`CommitLane`).
    public static func commit(_ pending: [Pending], redis: RedisClient) async -> [Result<[CommandFailure], any Error>] {
        await commit(pending, riders: [], redis: redis)
    }

    static func commit(_ pending: [Pending], riders: [CommitRider], redis: RedisClient, lane: CommitLane? = nil) async
        -> [Result<[CommandFailure], any Error>]
    {
        guard !pending.isEmpty else {
            await CommitRider.run(riders, redis: redis)
            return []
        }
        if pending.contains(where: \.store.scripted) {
            return await withTaskGroup(of: (Int, Result<[CommandFailure], any Error>).self) { group in
                if !riders.isEmpty {
                    group.addTask {
                        await CommitRider.run(riders, redis: redis)
                        return (-1, .success([]))
                    }
                }
                for (index, item) in pending.enumerated() {
                    group.addTask {
                        do {
                            return (index, .success(try await item.store.script(item.commands, token: item.token)))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var finished: [(Int, Result<[CommandFailure], any Error>)] = []
                for await item in group where item.0 >= 0 { finished.append(item) }
                return finished.sorted { $0.0 < $1.0 }.map(\.1)
            }
        }
        let riding = CommitRider.commands(riders)
        // Set once the transaction ran (or failed): the riders are told after, outside the connection's thread.
        var riderReplies: Result<[RedisReply], any Error> = .success([])
        defer { CommitRider.finish(riders, with: riderReplies) }
        do {
            let (results, replies): ([Result<[CommandFailure], any Error>], [RedisReply])
            if let lane {
                (results, replies) = try await Self.commit(pending, riding: riding, lane: lane)
            } else {
                (results, replies) = try await redis.withConnection { connection in
                    let done = try Self.transact(pending, riding: riding, on: connection, verified: nil)
                    return (done.results, done.riders)
                }
            }
            riderReplies = .success(replies)
            return results
        } catch {
            riderReplies = .failure(error)
            return pending.map { _ in .failure(error) }
        }
    }

    /// Bounded lists are trimmed to this many entries.
    static let listLimit = 1_000
}
