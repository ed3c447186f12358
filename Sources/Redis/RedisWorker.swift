import DequeModule
import Foundation

/// One blocking connection on a thread of its own, for work whose connection state must carry from one call to the
/// next and be seen by nothing else: a WATCH set at the end of one call and relied on by the next (the trade
/// engine's commit rounds). The connection opens with the first call and again after it broke (a call that cannot
/// open it fails at once; the caller backs off). Calls run one after another, in the order they came. The body is
/// given the connection and whether it is the one the previous call had (false after a reconnect: what that
/// connection kept, a WATCH, is gone).
public final class RedisWorker: @unchecked Sendable {
    /// Where the worker connects.
    public let url: RedisURL
    private let name: String
    private let connectTimeout: Duration
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs = Deque<Job>()
    private var started = false
    private var stopped = false

    private typealias Job = (Result<(RedisConnection, Bool), RedisError>) -> Void

    /// A worker for `url`; its thread (named `name`) starts with the first call.
    public init(url: RedisURL, name: String, connectTimeout: Duration = .seconds(2)) {
        self.url = url
        self.name = name
        self.connectTimeout = connectTimeout
    }

    /// Runs `body` on the worker's connection (and whether it is the previous call's) and returns what it gives; a
    /// connection that cannot be opened, or a worker shut down, throws.
    public func run<T: Sendable>(_ body: @escaping @Sendable (RedisConnection, _ same: Bool) throws -> T) async throws
        -> T
    {
        let start = condition.withLock { () -> Bool in
            defer { started = true }
            return !started && !stopped
        }
        if start {
            let thread = Thread { [self] in
                // Named from inside: on Linux a name set before the start does not reach the kernel.
                Thread.current.name = name
                work()
            }
            thread.start()
        }
        return try await withCheckedThrowingContinuation { (reply: CheckedContinuation<T, any Error>) in
            let job: Job = { connection in
                switch connection {
                case .success(let (connection, same)): reply.resume(with: Result { try body(connection, same) })
                case .failure(let error): reply.resume(throwing: error)
                }
            }
            let queued = condition.withLock { () -> Bool in
                guard !stopped else { return false }
                jobs.append(job)
                condition.signal()
                return true
            }
            if !queued { job(.failure(closed)) }
        }
    }

    /// Ends the thread; calls still queued fail.
    public func shutdown() {
        let rest = condition.withLock { () -> [Job] in
            stopped = true
            condition.broadcast()
            defer { jobs = [] }
            return Array(jobs)
        }
        for job in rest { job(.failure(closed)) }
    }

    private var closed: RedisError { RedisError(.closed, "the Redis worker \(name) was shut down") }

    private func work() {
        var connection: RedisConnection?
        var previous: ObjectIdentifier?
        while true {
            let job: Job? = condition.withLock {
                while jobs.isEmpty && !stopped { condition.wait() }
                return stopped ? nil : jobs.popFirst()
            }
            guard let job else { break }
            if connection?.isBroken ?? false {
                connection = nil
                previous = nil
            }
            if connection == nil {
                do {
                    connection = try RedisConnection(url: url, timeout: connectTimeout)
                } catch {
                    job(.failure(error))
                    continue
                }
            }
            guard let live = connection else { continue }
            // The connection is held here until replaced, so its identity is not reused meanwhile.
            let same = previous == ObjectIdentifier(live)
            previous = ObjectIdentifier(live)
            job(.success((live, same)))
        }
        connection?.close()
    }
}
