import DequeModule
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// The connection state a `RedisClient` reports.
public enum RedisClientState: Sendable, Equatable, CustomStringConvertible {
    /// No command has connected yet.
    case connecting
    /// The last command or health check succeeded.
    case ready
    /// The server could not be reached; the client is retrying with back-off.
    case unavailable(String)
    /// The client has shut down.
    case closed

    /// The state's name (`connected`, `reconnecting`…).
    public var description: String {
        switch self {
        case .connecting: "connecting"
        case .ready: "ready"
        case .unavailable(let reason): "unavailable: \(reason)"
        case .closed: "closed"
        }
    }
}

/// Redis for the services. Commands, pipelines, transactions and scripts go through a
/// `RedisMultiplexer`: non-blocking connections shared by every caller, driven by one IO thread, with
/// the commands of concurrent callers pipelined together. `withConnection` (blocking commands such as
/// XREADGROUP BLOCK, and multi-step work on one connection) runs on a small pool of blocking hiredis
/// connections, each on a worker thread of its own, so that no hiredis call runs on Swift's cooperative
/// pool and a blocking command never holds a shared connection. Threads and connections start with the
/// first call or `run()`. It is a `Service`: `run()` checks the server every second and stops
/// everything on shutdown.
public final class RedisClient: Service, @unchecked Sendable {
    /// Where the client connects.
    public let url: RedisURL
    let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`.
    // Waiting jobs, oldest first; a taken job leaves the queue at once, so its closure (and what it
    // captured, a whole pipeline's commands) is released when it has run.
    private var jobs = Deque<Job>()
    private var stopped = false
    private var currentState: RedisClientState = .connecting
    /// When the blocking workers may connect again (seconds since `origin`), by the same pure back-off
    /// as the shared connections.
    private var retryAt: Double?
    private var backoff: ReconnectBackoff
    private let origin = ContinuousClock.now
    private var lastPing: Duration?
    private var liveWorkers: Int
    private var workersStarted = false
    private let poolSize: Int
    private let multiplexer: RedisMultiplexer
    /// Set when the client talks to a Redis Cluster: commands go to their slot's primary.
    private let cluster: RedisClusterClient?
    private let clusterState = Mutex<RedisClientState>(.connecting)
    private let scriptSHAs = Mutex<[String: String]>([:])
    /// Runs tasks that prefer it on the blocking workers (`RedisWorkerExecutor`).
    public let executor = RedisWorkerExecutor()

    private let connectTimeout: Duration
    private let minBackoff: Duration
    private let maxBackoff: Duration
    private let healthInterval: Duration
    private let latency: Metrics.Timer
    private let failures: Counter

    struct Job {
        /// Runs on the worker; returns how to answer the caller, which the worker does only after it
        /// has noted a broken connection (so a caller that sees an error also sees the state change).
        let body: (RedisConnection) -> () -> Void
        let fail: (RedisError) -> Void
        /// A task's job (`RedisWorkerExecutor`): run as it is, whatever the connection's state.
        var task: UnownedJob? = nil
    }

    /// Creates the client; nothing connects and no thread starts until the first call (or `run()`).
    /// `poolSize`: blocking connections for `withConnection`; `connections`: shared non-blocking ones.
    public convenience init(
        url: RedisURL, poolSize: Int = 4, connections: Int = 2, connectTimeout: Duration = .seconds(2),
        minBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(5),
        healthInterval: Duration = .seconds(1), logger: Logger
    ) {
        self.init(
            url: url, cluster: nil, poolSize: poolSize, connections: connections, connectTimeout: connectTimeout,
            minBackoff: minBackoff, maxBackoff: maxBackoff, healthInterval: healthInterval, logger: logger)
    }

    /// A client of a Redis Cluster: `command`, `pipeline`, `transaction` and `evaluate` go to the primary of
    /// their keys' slot (`RedisClusterClient`: MOVED, ASK, fail-over), a pipeline split by primary with its
    /// replies in order; a transaction or script whose keys span slots fails before it is sent, naming them.
    /// `withConnection` (blocking commands on one connection) is not available on a cluster yet.
    public convenience init(
        cluster url: RedisClusterURL, connectionsPerNode: Int = 1, healthInterval: Duration = .seconds(1),
        logger: Logger
    ) {
        self.init(
            url: url.url(of: url.seeds[0]), cluster: url, poolSize: 1, connections: connectionsPerNode,
            connectTimeout: .seconds(2), minBackoff: .milliseconds(100), maxBackoff: .seconds(5),
            healthInterval: healthInterval, logger: logger)
    }

    private init(
        url: RedisURL, cluster: RedisClusterURL?, poolSize: Int, connections: Int, connectTimeout: Duration,
        minBackoff: Duration, maxBackoff: Duration, healthInterval: Duration, logger: Logger
    ) {
        self.cluster = cluster.map { RedisClusterClient(url: $0, connectionsPerNode: connections, logger: logger) }
        self.url = url
        self.logger = logger
        self.connectTimeout = connectTimeout
        self.minBackoff = minBackoff
        self.maxBackoff = maxBackoff
        self.backoff = ReconnectBackoff(initial: minBackoff.seconds, maximum: maxBackoff.seconds)
        self.healthInterval = healthInterval
        self.liveWorkers = poolSize
        self.latency = Metrics.Timer(label: "bitten_redis_command_duration_seconds")
        self.failures = Counter(label: "bitten_redis_failures_total")
        self.poolSize = max(poolSize, 1)
        self.multiplexer = RedisMultiplexer(
            url: url, connections: connections, connectTimeout: connectTimeout,
            backoff: (minBackoff, maxBackoff), clientName: logger.label, logger: logger)
        executor.attach(self)
    }

    /// Starts the blocking workers the first time one is needed.
    func startWorkers() {
        let start: Bool = condition.withLock {
            guard !workersStarted, !stopped else { return false }
            workersStarted = true
            return true
        }
        guard start else { return }
        let label = logger.label
        for index in 0..<poolSize {
            // Named from inside: on Linux a name set before the start does not reach the kernel (`top -H`, perf).
            let thread = Thread { [self] in
                Thread.current.name = Self.threadName("redis", label: label, index: index)
                self.work()
            }
            thread.start()
        }
    }

    /// A thread's name (the kernel keeps 15 bytes): `role`, a tag made of the last part of the client's log label
    /// unless that is `redis` (`commit`; `trade_inbox` → `tinbox`: the first letters of its words but the last; at
    /// most 6 characters), and the index: `redis-0`, `redis-trade-3`, `redis-commit-0`, `redis-io-tinbox`. Two
    /// clients' threads tell apart in `top -H` and perf.
    public static func threadName(_ role: String, label: String, index: Int? = nil) -> String {
        let last = label.split(separator: ".").last.map(String.init) ?? ""
        let words = last.split(separator: "_")
        let tag = words.dropLast().map { String($0.prefix(1)) }.joined() + (words.last ?? "")
        var name = role
        if !tag.isEmpty && last != "redis" { name += "-" + tag.prefix(6) }
        if let index { name += "-\(index)" }
        return String(name.utf8.prefix(15)) ?? name
    }

    /// The state of the shared connections as of the last command or health check.
    public var state: RedisClientState { cluster == nil ? multiplexer.state : clusterState.withLock { $0 } }

    /// Whether the client talks to a Redis Cluster.
    public var isCluster: Bool { cluster != nil }

    /// The round trip of the last health-check PING.
    public var lastPingLatency: Duration? { condition.withLock { lastPing } }

    /// Runs `body` with a pooled connection on a worker thread and returns its result.
    /// Throws `.unavailable` at once while the client is backing off after a failure.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (RedisConnection) throws -> T
    ) async throws -> T {
        if cluster != nil {
            throw RedisError(
                .unavailable, "blocking work on one connection (withConnection) is not available on a Redis Cluster yet"
            )
        }
        startWorkers()
        return try await withCheckedThrowingContinuation { (reply: CheckedContinuation<T, any Error>) in
            let job = Job(
                body: { connection in
                    let result = Result { try body(connection) }
                    return { reply.resume(with: result) }
                },
                fail: { reply.resume(throwing: $0) })
            enqueue(job)
        }
    }

    /// A blocking command (BRPOP, BLMOVE, XREADGROUP BLOCK…) that may wait up to `seconds` on the server.
    /// On one server it runs on a blocking worker's connection (its read timeout stretched to cover the
    /// wait), never on a shared one, where every other caller's commands would queue behind it. On a
    /// cluster it goes to its slot's primary on that client's shared connection: give such work a client
    /// of its own there (as the gateway inbox has).
    public func blockingCommand(_ args: [String], waitsUpTo seconds: Double) async throws -> RedisReply {
        if cluster != nil { return try await command(args) }
        let normal = connectTimeout
        let stretched = normal + .milliseconds(Int64(max(0, seconds) * 1000))
        return try await withConnection { connection in
            connection.setTimeout(stretched)
            defer { connection.setTimeout(normal) }
            return try connection.command(args)
        }.orThrow()
    }

    /// Sends commands through the shared connections, timing them and counting connection failures.
    private func shared(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        let start = ContinuousClock.now
        if let cluster {
            do {
                let replies =
                    commands.count == 1 ? [try await cluster.send(commands[0])] : try await cluster.pipeline(commands)
                latency.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
                clusterState.withLock { $0 = .ready }
                return replies
            } catch let error as RedisError {
                if error.isConnectionProblem {
                    failures.increment()
                    clusterState.withLock { $0 = .unavailable(error.message) }
                }
                throw error
            }
        }
        do {
            let replies = try await multiplexer.send(commands)
            latency.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
            return replies
        } catch let error as RedisError {
            if error.isConnectionProblem { failures.increment() }
            throw error
        }
    }

    private static func bytes(_ command: [String]) -> [[UInt8]] { command.map { Array($0.utf8) } }

    /// Runs one command; error replies are thrown as `RedisError(.server)`.
    @discardableResult
    public func command(_ args: [String]) async throws -> RedisReply {
        try await shared([Self.bytes(args)])[0].orThrow()
    }

    /// Runs one command given as variadic words.
    @discardableResult
    public func command(_ args: String...) async throws -> RedisReply {
        try await command(args)
    }

    /// Runs one binary-safe command; error replies are thrown.
    @discardableResult
    public func command(bytes args: [[UInt8]]) async throws -> RedisReply {
        try await shared([args])[0].orThrow()
    }

    /// Pipelines commands in one write; replies (including error replies) come back in order.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisReply] {
        try await shared(commands.map(Self.bytes))
    }

    /// Runs commands in MULTI/EXEC (written together: nothing else comes between them).
    public func transaction(_ commands: [[String]]) async throws -> [RedisReply] {
        if let cluster {
            return try RedisConnection.execResult(try await cluster.transaction(commands.map(Self.bytes)))
        }
        return try RedisConnection.execResult(try await shared(([["MULTI"]] + commands + [["EXEC"]]).map(Self.bytes)))
    }

    /// Runs a Lua script with EVALSHA, loading it (SCRIPT LOAD) when the server does not know it.
    public func evaluate(_ script: RedisScript, keys: [String] = [], args: [String] = []) async throws -> RedisReply {
        // On a cluster each primary has its own script cache: EVAL carries the source to whichever owns the slot.
        if cluster != nil { return try await command(["EVAL", script.source, String(keys.count)] + keys + args) }
        for _ in 0..<2 {
            let sha: String
            if let known = scriptSHAs.withLock({ $0[script.source] }) {
                sha = known
            } else {
                guard let loaded = try await command(["SCRIPT", "LOAD", script.source]).string else {
                    throw RedisError(.unexpectedReply, "SCRIPT LOAD returned no SHA")
                }
                scriptSHAs.withLock { $0[script.source] = loaded }
                sha = loaded
            }
            let reply = try await shared([Self.bytes(["EVALSHA", sha, String(keys.count)] + keys + args)])[0]
            if RedisConnection.isNoScript(reply) {
                scriptSHAs.withLock { $0[script.source] = nil }
                continue
            }
            return try reply.orThrow()
        }
        throw RedisError(.server, "script could not be loaded")
    }

    /// Runs a keyless command (INFO, DBSIZE, …) on every primary: one reply on a single server, one per
    /// primary on a cluster (a primary that cannot be reached fails the call).
    public func commandOnEveryPrimary(_ args: [String]) async throws -> [RedisReply] {
        guard let cluster else { return [try await command(args)] }
        return try await cluster.onEveryPrimary(args).map { try $0.1.get().orThrow() }
    }

    /// Health checks until shutdown, then stops the workers.
    public func run() async throws {
        if cluster == nil { multiplexer.start() }
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                _ = try? await ping()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.healthInterval) }
            }
        } onGracefulShutdown: {
        }
        shutdown()
    }

    /// PINGs the server and records the round trip.
    @discardableResult
    public func ping() async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        try await command(["PING"])
        let elapsed = clock.now - start
        condition.withLock { lastPing = elapsed }
        return elapsed
    }

    /// Stops the workers and the shared connections; queued and later commands fail with `.closed`.
    public func shutdown() {
        multiplexer.stop()
        cluster?.stop()
        let pending: [Job] = condition.withLock {
            stopped = true
            currentState = .closed
            let rest = Array(jobs)
            jobs = []
            condition.broadcast()
            return rest
        }
        for job in pending {
            if let task = job.task {
                globalConcurrentExecutor.enqueue(ExecutorJob(task))
            } else {
                job.fail(RedisError(.closed, "client shut down"))
            }
        }
    }

    func enqueue(_ job: Job) {
        if job.task != nil { startWorkers() }
        let accepted: Bool = condition.withLock {
            guard !stopped else { return false }
            jobs.append(job)
            condition.signal()
            return true
        }
        guard !accepted else { return }
        if let task = job.task {
            // A task's job always runs: after shutdown on Swift's own pool.
            globalConcurrentExecutor.enqueue(ExecutorJob(task))
        } else {
            job.fail(RedisError(.closed, "client shut down"))
        }
    }

    private func nextJob() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty && !stopped { condition.wait() }
        guard !stopped else { return nil }
        return jobs.popFirst()
    }

    private func work() {
        var connection: RedisConnection?
        let executor = self.executor.asUnownedTaskExecutor()
        while let job = nextJob() {
            if let task = job.task {
                task.runSynchronously(on: executor)
                continue
            }
            if connection?.isBroken ?? false { connection = nil }
            if connection == nil {
                switch connect() {
                case .success(let fresh): connection = fresh
                case .failure(let error):
                    job.fail(error)
                    continue
                }
            }
            guard let live = connection else { continue }
            let start = ContinuousClock.now
            let answer = job.body(live)
            latency.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
            if live.isBroken {
                connection = nil
                markDown("connection lost")
            }
            answer()
        }
        connection?.close()
    }

    private var elapsed: Double { (ContinuousClock.now - origin).seconds }

    private func connect() -> Result<RedisConnection, RedisError> {
        let now = elapsed
        let waitUntil: Double? = condition.withLock { retryAt }
        // Backing off after a failure, unless the shared connections already found the server back.
        if let waitUntil, now < waitUntil, multiplexer.state != .ready {
            let reason: String = condition.withLock {
                if case .unavailable(let why) = currentState { return why }
                return "backing off"
            }
            return .failure(RedisError(.unavailable, "\(url.host):\(url.port) unavailable (\(reason)); retrying"))
        }
        do {
            let connection = try RedisConnection(url: url, timeout: connectTimeout)
            condition.withLock {
                currentState = stopped ? .closed : .ready
                retryAt = nil
                backoff.connected(at: elapsed)
            }
            return .success(connection)
        } catch {
            markDown(error.message)
            return .failure(error)
        }
    }

    /// A worker's connection failed (the shared connections log and report the outage).
    private func markDown(_ reason: String) {
        failures.increment()
        condition.withLock {
            if !stopped { currentState = .unavailable(reason) }
            if case .wait(let until) = backoff.failed(at: elapsed) { retryAt = until }
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
