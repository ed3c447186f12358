import CHiredis
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Non-blocking Redis connections shared by every caller: hiredis's asynchronous API
/// (`redisAsyncContext`: hiredis writes the commands and parses RESP) driven by one IO thread's `poll`
/// loop through an adapter of our own for its read/write hooks.
///
/// - Commands of all concurrent callers are pipelined on a few connections (no cap on how many wait):
///   each goes to the connection with the fewest replies outstanding; one write carries whatever queued
///   up while the socket was busy.
/// - A caller's round trip is one hand-off to the IO thread (a queue and a wake-up byte) and one back
///   (its continuation resumed from the reply callback).
/// - A cancelled caller is answered at once with `CancellationError`; its reply is discarded when it
///   comes, and never reaches another caller (replies are matched to their commands by hiredis).
/// - The thread and connections start with the first call or `start()`, never in `init`; a lost
///   connection is reconnected by `ReconnectBackoff` (immediately, then with growing pauses), and while
///   every connection is waiting to retry, calls fail at once with `.unavailable`.
/// - Blocking commands (BRPOP, XREADGROUP BLOCK) must not come here: they would hold a shared
///   connection. `RedisClient.withConnection` runs them on a connection of their own.
public final class RedisMultiplexer: @unchecked Sendable {
    /// The server.
    public let url: RedisURL
    let connectionCount: Int
    let connectTimeout: Double
    let backoffRange: (initial: Double, maximum: Double)
    let logger: Logger

    let inbox = Mutex<Inbox>(Inbox())
    let status = Mutex<RedisClientState>(.connecting)
    /// Mirrors `status == .ready`, so that a reply does not take the lock.
    let ready = Atomic<Bool>(false)
    let clock = ContinuousClock()
    let origin: ContinuousClock.Instant

    struct Inbox {
        var jobs: [Job] = []
        var wakePending = false
        var started = false
        var stopped = false
        var exited = false
        var wakeWrite: Int32 = -1
    }

    // IO-thread state.
    var links: [Link] = []
    let clientName: String?
    var wakeRead: Int32 = -1
    var running = true

    /// `connections`: how many connections share the load (commands pipeline on each).
    /// `backoff`: the first and the longest pause between failed connection attempts.
    /// `clientName`: what `CLIENT LIST` shows for these connections (`CLIENT SETNAME`, sent after the
    /// log-in; a server or ACL user that refuses it changes nothing else).
    public init(
        url: RedisURL, connections: Int = 2, connectTimeout: Duration = .seconds(2),
        backoff: (initial: Duration, maximum: Duration) = (.milliseconds(100), .seconds(5)),
        clientName: String? = nil, logger: Logger
    ) {
        self.clientName = clientName.map(Self.clientNameSafe)
        self.url = url
        self.connectionCount = max(1, connections)
        self.connectTimeout = connectTimeout.seconds
        self.backoffRange = (backoff.initial.seconds, backoff.maximum.seconds)
        self.logger = logger
        self.origin = clock.now
    }

    deinit { stop() }

    /// The state of the connections: ready while one is up.
    public var state: RedisClientState { status.withLock { $0 } }

    /// Starts the IO thread (the first call does it too).
    public func start() {
        let start: Bool = inbox.withLock { box in
            guard !box.started, !box.stopped else { return false }
            box.started = true
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { return false }
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            wakeRead = fds[0]
            box.wakeWrite = fds[1]
            return true
        }
        guard start else { return }
        // Named from inside: on Linux a name set before the start does not reach the kernel (`top -H`, perf).
        let thread = Thread { [self] in
            Thread.current.name = RedisClient.threadName("redis-io", label: logger.label)
            loop()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Stops the thread; waiting and later calls fail with `.closed`.
    public func stop() {
        let (jobs, wake) = inbox.withLock { box -> ([Job], Int32) in
            guard !box.stopped else { return ([], -1) }
            box.stopped = true
            defer { box.jobs = [] }
            return (box.jobs, box.started ? box.wakeWrite : -1)
        }
        status.withLock { $0 = .closed }
        for job in jobs { job.request.finish(.failure(RedisError(.closed, "client shut down"))) }
        if wake >= 0 {
            var byte: UInt8 = 1
            _ = write(wake, &byte, 1)
        }
    }

    // MARK: calls

    /// Sends `commands` one after another on one connection and returns their replies in order (error
    /// replies are values). Nothing else is written between them, so MULTI … EXEC is safe.
    public func send(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        let request = Request(expected: commands.count)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[RedisReply], any Error>) in
                guard request.install(continuation) else { return }
                submit(Job(commands: commands, request: request))
            }
        } onCancel: {
            request.finish(.failure(CancellationError()))
        }
    }

    /// One command.
    public func command(_ args: [String]) async throws -> RedisReply {
        try await send([args.map { Array($0.utf8) }])[0]
    }

    private func submit(_ job: Job) {
        start()
        let (accepted, wake): (Bool, Int32) = inbox.withLock { box in
            guard !box.stopped else { return (false, -1) }
            box.jobs.append(job)
            if box.wakePending { return (true, -1) }
            box.wakePending = true
            return (true, box.wakeWrite)
        }
        if !accepted { return job.request.finish(.failure(RedisError(.closed, "client shut down"))) }
        if wake >= 0 {
            var byte: UInt8 = 1
            _ = write(wake, &byte, 1)
        }
    }

    // MARK: IO thread

    var now: Double { (clock.now - origin).seconds }

    private func loop() {
        links = (0..<connectionCount).map {
            Link(index: $0, backoff: ReconnectBackoff(initial: backoffRange.initial, maximum: backoffRange.maximum))
        }
        for link in links { if case .connect = link.backoff.start(at: now) { connect(link) } }
        var items: [pollfd] = []
        while running {
            let at = now
            var deadline = Double.infinity
            for link in links { deadline = min(deadline, maintain(link, at: at)) }
            items.removeAll(keepingCapacity: true)
            items.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            var polled: [Link] = []
            for link in links {
                guard let ac = link.context else { continue }
                var events: Int16 = 0
                if link.wantRead { events |= Int16(POLLIN) }
                if link.wantWrite { events |= Int16(POLLOUT) }
                guard events != 0 else { continue }
                items.append(pollfd(fd: ac.pointee.c.fd, events: events, revents: 0))
                polled.append(link)
            }
            let timeout: Int32 = deadline.isFinite ? Int32(max(0, min(1000, (deadline - at) * 1000 + 1))) : 1000
            let rc = items.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeout) }
            if rc < 0 && errno != EINTR { break }
            if items[0].revents != 0 { takeJobs() }
            for (index, link) in polled.enumerated() {
                let revents = items[index + 1].revents
                guard revents != 0, let ac = link.context else { continue }
                if revents & Int16(POLLOUT) != 0 { redisAsyncHandleWrite(ac) }
                // The write may have found the connection broken and freed it.
                if revents & Int16(POLLIN | POLLERR | POLLHUP) != 0, let ac = link.context { redisAsyncHandleRead(ac) }
            }
        }
        for link in links {
            if let ac = link.context { redisAsyncFree(ac) }  // fails its outstanding commands
            failWaiting(link, RedisError(.closed, "client shut down"))
        }
        links = []
        close(wakeRead)
        let wake = inbox.withLock { box -> Int32 in
            box.exited = true
            return box.wakeWrite
        }
        close(wake)
    }

    /// Connects a link that is due, gives up on one that connects too long. Returns when it next needs attention.
    private func maintain(_ link: Link, at now: Double) -> Double {
        switch link.phase {
        case .connecting(let since):
            if now - since >= connectTimeout, let ac = link.context {
                link.lastError = "no connection within \(connectTimeout) s"
                redisAsyncFree(ac)  // cleanup hook clears the link; the failure is handled there
            }
            return since + connectTimeout
        case .down:
            // Lost while up: the back-off says reconnect at once.
            if case .connecting = link.backoff.state {
                connect(link)
                return now + connectTimeout
            }
            switch link.backoff.due(at: now) {
            case .connect:
                connect(link)
                return now + connectTimeout
            case .wait(let until): return until
            case .none: return .infinity
            }
        case .up: return .infinity
        }
    }

    private func takeJobs() {
        var sink = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &sink, sink.count) > 0 {}
        let (jobs, stop) = inbox.withLock { box -> ([Job], Bool) in
            box.wakePending = false
            defer { box.jobs.removeAll(keepingCapacity: true) }
            return (box.jobs, box.stopped)
        }
        if stop {
            running = false
            for job in jobs { job.request.finish(.failure(RedisError(.closed, "client shut down"))) }
            return
        }
        for job in jobs where !job.request.isFinished { dispatch(job) }
        // Write now rather than after another poll: a connected socket can almost always take it.
        for link in links where link.wantWrite {
            if case .up = link.phase, let ac = link.context { redisAsyncHandleWrite(ac) }
        }
    }

    private func dispatch(_ job: Job) {
        // The connection with the fewest replies outstanding; else one that is connecting (the job waits
        // for it); else none can take it now.
        var best: Link?
        var connecting: Link?
        for link in links {
            switch link.phase {
            case .up: if best == nil || link.outstanding < best!.outstanding { best = link }
            case .connecting: if connecting == nil { connecting = link }
            case .down: break
            }
        }
        if let best { return issue(job, on: best) }
        if let connecting {
            connecting.waiting.append(job)
            return
        }
        let reason = links.compactMap(\.lastError).first ?? "not connected"
        job.request.finish(
            .failure(RedisError(.unavailable, "\(url.host):\(url.port) unavailable (\(reason)); retrying")))
    }

    func issue(_ job: Job, on link: Link) {
        guard let ac = link.context else { return job.request.finish(.failure(RedisError(.io, "connection lost"))) }
        var arguments = ArgumentBuffer()
        for command in job.commands {
            arguments.beginCommand()
            for arg in command { arg.withUnsafeBufferPointer { arguments.append($0) } }
        }
        let commands = arguments.commands
        let issued: Int = arguments.withArgv { argv, lengths in
            var count = 0
            for (start, argc) in commands {
                let token = Unmanaged.passRetained(job.request).toOpaque()
                let rc = redisAsyncCommandArgv(ac, replyCallback, token, Int32(argc), argv + start, lengths + start)
                guard rc == REDIS_OK else {
                    Unmanaged<Request>.fromOpaque(token).release()
                    break
                }
                count += 1
            }
            return count
        }
        link.outstanding += issued
        if issued < job.commands.count {
            job.request.finish(
                .failure(RedisError(.io, "connection refused the command (\(String(cString: ac.pointee.errstr)))")))
        }
    }

}
