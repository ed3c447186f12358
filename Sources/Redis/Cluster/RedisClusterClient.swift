import Logging
import Synchronization

/// Commands to a Redis Cluster, each sent to the primary of its keys' slot.
///
/// It reads the slot map from a seed (`CLUSTER SHARDS`, or `CLUSTER SLOTS` on servers before 7), keeps a
/// `RedisMultiplexer` per primary (non-blocking, shared by every caller), follows `MOVED` (the slot map is
/// corrected at once and read again by the next caller) and `ASK` (`ASKING` and the command written
/// together, once), and waits and retries on `TRYAGAIN` and `CLUSTERDOWN`. A command whose keys span slots
/// fails before it is sent, naming the keys. A pipeline is split by primary and its replies put back in the
/// caller's order.
///
/// Sharded pub/sub is `RedisShardedSubscriber`. Not done: retrying a command whose connection broke after
/// it was written (it may have run; the caller gets the error, as with one server).
public final class RedisClusterClient: @unchecked Sendable {
    /// The cluster.
    public let url: RedisClusterURL
    private let logger: Logger
    private let connectionsPerNode: Int
    private let state = Mutex<State>(State())
    /// Redirects and retries one command may take before it fails.
    public let maxAttempts: Int

    private struct State {
        var topology: ClusterTopology?
        var nodes: [ClusterEndpoint: RedisMultiplexer] = [:]
        var refreshing = false
        /// A MOVED said the map is out of date: the next caller reads it again.
        var stale = false
        var stopped = false
    }

    /// A client; it learns the slots when it runs.
    public init(
        url: RedisClusterURL, connectionsPerNode: Int = 1, maxAttempts: Int = 6,
        logger: Logger
    ) {
        self.url = url
        self.connectionsPerNode = connectionsPerNode
        self.maxAttempts = maxAttempts
        self.logger = logger
    }

    deinit { stop() }

    /// Closes every connection.
    public func stop() {
        let nodes = state.withLock { s -> [RedisMultiplexer] in
            s.stopped = true
            defer { s.nodes = [:] }
            return Array(s.nodes.values)
        }
        for node in nodes { node.stop() }
    }

    /// The slot map as last read (nil before the first call).
    public var topology: ClusterTopology? { state.withLock { $0.topology } }

    private func node(_ endpoint: ClusterEndpoint) throws(RedisError) -> RedisMultiplexer {
        try state.withLock { s throws(RedisError) in
            guard !s.stopped else { throw RedisError(.closed, "cluster client stopped") }
            if let known = s.nodes[endpoint] { return known }
            let fresh = RedisMultiplexer(url: url.url(of: endpoint), connections: connectionsPerNode, logger: logger)
            s.nodes[endpoint] = fresh
            return fresh
        }
    }

    /// Reads the slot map from the known primaries, then the seeds, the first that answers.
    public func refreshTopology() async throws {
        let known = state.withLock { $0.topology?.primaries ?? [] }
        var lastError: (any Error)?
        for endpoint in known + url.seeds.filter({ !known.contains($0) }) {
            do {
                let mux = try node(endpoint)
                var map: ClusterTopology
                let shards = try await mux.command(["CLUSTER", "SHARDS"])
                if case .error = shards {
                    map = try ClusterTopology(
                        slotsReply: try await mux.command(["CLUSTER", "SLOTS"]).orThrow(), askedHost: endpoint.host)
                } else {
                    map = try ClusterTopology(shardsReply: shards, askedHost: endpoint.host)
                }
                guard !map.ranges.isEmpty else { throw RedisError(.unexpectedReply, "\(endpoint) knows no slots") }
                state.withLock { $0.topology = map }
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? RedisError(.connectionFailed, "no cluster node to ask (\(url))")
    }

    /// After a MOVED: the map is read again by the next caller that routes a command (the MOVED itself
    /// was already applied), so no task outlives its caller.
    private func markStale() {
        state.withLock { $0.stale = true }
    }

    /// Reads the map again when a MOVED marked it stale and nobody else is reading it.
    private func refreshIfStale() async {
        let refresh = state.withLock { s -> Bool in
            guard s.stale, !s.refreshing, !s.stopped else { return false }
            s.stale = false
            s.refreshing = true
            return true
        }
        guard refresh else { return }
        defer { state.withLock { $0.refreshing = false } }
        do { try await refreshTopology() } catch {
            logger.warning("cluster slot map not refreshed", metadata: ["bitten.error": "\(error)"])
        }
    }

    private func primary(for slot: Int?) async throws -> ClusterEndpoint {
        if state.withLock({ $0.topology == nil }) { try await refreshTopology() } else { await refreshIfStale() }
        let map = state.withLock { $0.topology }
        if let slot, let owner = map?.primary(for: slot) { return owner }
        if slot == nil, let any = map?.primaries.first { return any }
        try await refreshTopology()
        if let slot, let owner = state.withLock({ $0.topology?.primary(for: slot) }) { return owner }
        throw RedisError(
            .unavailable, "no primary serves slot \(slot.map(String.init) ?? "any") (the cluster is incomplete)")
    }

    /// Sends one command to the primary of its slot, following redirects; error replies are values.
    public func send(_ command: [[UInt8]]) async throws -> RedisReply {
        let slot = try CommandKeys.slot(of: command)
        var endpoint = try await primary(for: slot)
        var asking = false
        for attempt in 0..<maxAttempts {
            let reply: RedisReply
            do {
                let mux = try node(endpoint)
                reply =
                    asking
                    ? try await mux.send([[Array("ASKING".utf8)], command])[1] : try await mux.send([command])[0]
            } catch let error as RedisError where error.code == .unavailable || error.code == .connectionFailed {
                // Not written: a primary down during a fail-over. Wait, read the map again, retry.
                try await pause(attempt)
                try? await refreshTopology()
                endpoint = try await primary(for: slot)
                asking = false
                continue
            }
            asking = false
            guard case .error(let message) = reply, let redirect = ClusterRedirect(error: message) else { return reply }
            switch redirect {
            case .moved(let movedSlot, let to):
                state.withLock { $0.topology?.apply(moved: movedSlot, to: to) }
                markStale()
                endpoint = to
            case .ask(_, let to):
                endpoint = to
                asking = true
            case .tryAgain, .clusterDown:
                try await pause(attempt)
                if case .clusterDown = redirect { try? await refreshTopology() }
                endpoint = try await primary(for: slot)
            }
        }
        throw RedisError(
            .unavailable,
            "\(String(decoding: command.first ?? [], as: UTF8.self)) still redirected after \(maxAttempts) attempts")
    }

    /// One command given as text; error replies are thrown.
    @discardableResult
    public func command(_ args: [String]) async throws -> RedisReply {
        try await send(args.map { Array($0.utf8) }).orThrow()
    }

    /// Sends commands, each to its slot's primary (one write per primary), and returns the replies in
    /// the order given. A command that meets a redirect is sent again on its own.
    public func pipeline(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        var groups: [ClusterEndpoint: [Int]] = [:]
        for (index, command) in commands.enumerated() {
            groups[try await primary(for: try CommandKeys.slot(of: command)), default: []].append(index)
        }
        var replies = [RedisReply](repeating: .null, count: commands.count)
        try await withThrowingTaskGroup(of: [(Int, RedisReply)].self) { group in
            for (endpoint, indices) in groups {
                let mux = try node(endpoint)
                group.addTask {
                    let answers = try await mux.send(indices.map { commands[$0] })
                    var result: [(Int, RedisReply)] = []
                    for (index, answer) in zip(indices, answers) {
                        if case .error(let message) = answer, ClusterRedirect(error: message) != nil {
                            result.append((index, try await self.send(commands[index])))
                        } else {
                            result.append((index, answer))
                        }
                    }
                    return result
                }
            }
            for try await part in group { for (index, reply) in part { replies[index] = reply } }
        }
        return replies
    }

    /// Runs `commands` in MULTI/EXEC on the primary of their one slot (written together); returns every
    /// reply, EXEC's last. Keys that span slots fail before anything is sent; a slot that moved meanwhile
    /// (a redirect while queueing aborts the transaction) is looked up again and the transaction retried.
    public func transaction(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        var slot: Int?
        for command in commands {
            guard let own = try CommandKeys.slot(of: command) else { continue }
            if let slot, slot != own {
                let names = commands.compactMap { $0.count > 1 ? String(decoding: $0[1], as: UTF8.self) : nil }
                throw RedisError(
                    .crossSlot, "a transaction's keys span slots \(slot) and \(own): \(names.joined(separator: ", "))")
            }
            slot = own
        }
        let block = [[Array("MULTI".utf8)]] + commands + [[Array("EXEC".utf8)]]
        for attempt in 0..<maxAttempts {
            let endpoint = try await primary(for: slot)
            let replies: [RedisReply]
            do {
                replies = try await node(endpoint).send(block)
            } catch let error as RedisError where error.code == .unavailable || error.code == .connectionFailed {
                try await pause(attempt)
                try? await refreshTopology()
                continue
            }
            let redirect = replies.lazy.compactMap { reply -> ClusterRedirect? in
                if case .error(let message) = reply { return ClusterRedirect(error: message) }
                return nil
            }.first
            guard let redirect else { return replies }
            if case .moved(let movedSlot, let to) = redirect {
                state.withLock { $0.topology?.apply(moved: movedSlot, to: to) }
            }
            try await pause(attempt)
            try? await refreshTopology()
        }
        throw RedisError(.unavailable, "transaction still redirected after \(maxAttempts) attempts")
    }

    /// Sends a keyless command (INFO, DBSIZE, …) to every primary of the slot map at once; the replies
    /// come back per primary, error replies as values, a primary that cannot be reached as its error.
    public func onEveryPrimary(_ command: [String]) async throws -> [(ClusterEndpoint, Result<RedisReply, RedisError>)]
    {
        if state.withLock({ $0.topology == nil }) { try await refreshTopology() }
        let primaries = state.withLock { $0.topology?.primaries ?? [] }
        let bytes = command.map { Array($0.utf8) }
        return try await withThrowingTaskGroup(of: (Int, ClusterEndpoint, Result<RedisReply, RedisError>).self) {
            group in
            for (index, endpoint) in primaries.enumerated() {
                group.addTask {
                    do {
                        return (index, endpoint, .success(try await self.node(endpoint).send([bytes])[0]))
                    } catch let error as RedisError {
                        return (index, endpoint, .failure(error))
                    }
                }
            }
            var answers: [(Int, ClusterEndpoint, Result<RedisReply, RedisError>)] = []
            for try await answer in group { answers.append(answer) }
            return answers.sorted { $0.0 < $1.0 }.map { ($0.1, $0.2) }
        }
    }

    private func pause(_ attempt: Int) async throws {
        try await Task.sleep(for: .milliseconds(50 << min(attempt, 5)))
    }
}
