import DequeModule
import Foundation
import Logging
import Metrics
import ServiceLifecycle

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

    public var description: String {
        switch self {
        case .connecting: "connecting"
        case .ready: "ready"
        case .unavailable(let reason): "unavailable: \(reason)"
        case .closed: "closed"
        }
    }
}

/// A small pool of blocking hiredis connections, each owned by a worker thread of its own, so that
/// no hiredis call runs on Swift's cooperative pool. It is a `Service`: `run()` checks the server
/// every second (reconnecting with exponential back-off) and stops the workers on shutdown.
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
    private var retryAt: ContinuousClock.Instant?
    private var backoff: Duration
    private var lastPing: Duration?
    private var liveWorkers: Int

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
    }

    /// Creates the pool and starts its worker threads (connections open lazily).
    public init(
        url: RedisURL, poolSize: Int = 4, connectTimeout: Duration = .seconds(2),
        minBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(5),
        healthInterval: Duration = .seconds(1), logger: Logger = Logger(label: "bitten.redis")
    ) {
        self.url = url
        self.logger = logger
        self.connectTimeout = connectTimeout
        self.minBackoff = minBackoff
        self.maxBackoff = maxBackoff
        self.backoff = minBackoff
        self.healthInterval = healthInterval
        self.liveWorkers = poolSize
        self.latency = Metrics.Timer(label: "bitten_redis_command_duration_seconds")
        self.failures = Counter(label: "bitten_redis_failures_total")
        for index in 0..<max(poolSize, 1) {
            let thread = Thread { [self] in self.work() }
            thread.name = "redis-\(index)"
            thread.start()
        }
    }

    /// The state as of the last command or health check.
    public var state: RedisClientState { condition.withLock { currentState } }

    /// The round trip of the last health-check PING.
    public var lastPingLatency: Duration? { condition.withLock { lastPing } }

    /// Runs `body` with a pooled connection on a worker thread and returns its result.
    /// Throws `.unavailable` at once while the client is backing off after a failure.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (RedisConnection) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (reply: CheckedContinuation<T, any Error>) in
            let job = Job(
                body: { connection in
                    let result = Result { try body(connection) }
                    return { reply.resume(with: result) }
                },
                fail: { reply.resume(throwing: $0) })
            enqueue(job)
        }
    }

    /// Runs one command; error replies are thrown as `RedisError(.server)`.
    @discardableResult
    public func command(_ args: [String]) async throws -> RedisReply {
        try await withConnection { try $0.command(args).orThrow() }
    }

    /// Runs one command given as variadic words.
    @discardableResult
    public func command(_ args: String...) async throws -> RedisReply {
        try await command(args)
    }

    /// Pipelines commands in one write; replies (including error replies) come back in order.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisReply] {
        try await withConnection { try $0.pipeline(commands) }
    }

    /// Runs commands in MULTI/EXEC.
    public func transaction(_ commands: [[String]]) async throws -> [RedisReply] {
        try await withConnection { try $0.transaction(commands) }
    }

    /// Runs a Lua script with EVALSHA.
    public func evaluate(_ script: RedisScript, keys: [String] = [], args: [String] = []) async throws -> RedisReply {
        try await withConnection { try $0.evaluate(script, keys: keys, args: args).orThrow() }
    }

    /// Health checks until shutdown, then stops the workers.
    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                _ = try? await ping()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.healthInterval) }
            }
        } onGracefulShutdown: {}
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

    /// Stops the workers; queued and later commands fail with `.closed`.
    public func shutdown() {
        let pending: [Job] = condition.withLock {
            stopped = true
            currentState = .closed
            let rest = Array(jobs)
            jobs = []
            condition.broadcast()
            return rest
        }
        for job in pending { job.fail(RedisError(.closed, "client shut down")) }
    }

    private func enqueue(_ job: Job) {
        let accepted: Bool = condition.withLock {
            guard !stopped else { return false }
            jobs.append(job)
            condition.signal()
            return true
        }
        if !accepted { job.fail(RedisError(.closed, "client shut down")) }
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
        while let job = nextJob() {
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

    private func connect() -> Result<RedisConnection, RedisError> {
        let now = ContinuousClock.now
        let waitUntil: ContinuousClock.Instant? = condition.withLock { retryAt }
        if let waitUntil, now < waitUntil {
            let reason: String = condition.withLock {
                if case .unavailable(let why) = currentState { return why }
                return "backing off"
            }
            return .failure(RedisError(.unavailable, "\(url.host):\(url.port) unavailable (\(reason)); retrying"))
        }
        do {
            let connection = try RedisConnection(url: url, timeout: connectTimeout)
            let recovered: Bool = condition.withLock {
                let was = currentState
                currentState = stopped ? .closed : .ready
                retryAt = nil
                backoff = minBackoff
                if case .unavailable = was { return true }
                return false
            }
            if recovered { logger.info("redis reconnected", metadata: ["redis.url": "\(url)"]) }
            return .success(connection)
        } catch {
            markDown(error.message)
            return .failure(error)
        }
    }

    private func markDown(_ reason: String) {
        failures.increment()
        let first: Bool = condition.withLock {
            let wasReady = currentState == .ready || currentState == .connecting
            if !stopped { currentState = .unavailable(reason) }
            retryAt = ContinuousClock.now + backoff
            backoff = min(backoff * 2, maxBackoff)
            return wasReady
        }
        if first { logger.warning("redis unavailable", metadata: ["redis.url": "\(url)", "reason": "\(reason)"]) }
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
