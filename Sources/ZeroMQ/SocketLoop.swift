import CZeroMQ
import DequeModule
import Foundation
import Logging
import Synchronization

/// A thread that owns many sockets and polls them with `zmq_poll`.
///
/// Every libzmq call on a socket happens on this thread. Other code talks to it through
/// closures queued on an inbox and a self-pipe that wakes the poller; received messages come
/// out as batches on an `AsyncStream`, so async code never blocks and never touches a socket.
public final class SocketLoop: @unchecked Sendable {
    /// How received messages are buffered for the consumer.
    public enum ReceiveBuffer: Sendable {
        /// Keep everything (the consumer must keep up).
        case unbounded
        /// Keep at most this many batches; newer batches are dropped and counted.
        case bounded(Int)
    }

    /// The context every socket of this loop is created in.
    public let context: Context
    let logger: Logger
    let inbox = Mutex<Inbox>(Inbox())
    let wakeRead: Int32
    let wakeWrite: Int32
    let ids = Atomic<Int>(0)
    /// Largest number of messages queued on one socket while libzmq reports a full queue.
    let maxPendingPerSocket: Int

    // Loop-thread state: touched only by the loop thread.
    var entries: [Int: Entry] = [:]
    var pollItems: [zmq_pollitem_t] = []
    var pollIDs: [Int] = []
    var itemsDirty = true
    var running = true
    /// The loop thread, set once it starts; lets `post` from the loop thread itself skip the inbox.
    let loopThread = Atomic<UInt>(0)

    struct Inbox {
        var jobs: [@Sendable () -> Void] = []
        var wakePending = false
        var stopped = false
        var exited = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    final class Entry {
        let socket: Socket
        let stats: SocketStats
        let continuation: AsyncStream<[Message]>.Continuation?
        /// When set, received batches are handed to this closure on the loop thread instead of the stream.
        var inlineHandler: (@Sendable ([Message]) -> Void)?
        /// When set, received batches are read into `raw` and handed to this closure on the loop thread.
        var rawHandler: (@Sendable (RawBatch) -> Void)?
        /// The reused buffer of raw batches.
        let raw = RawBatchStorage()
        /// Messages waiting for the socket to take them, oldest first.
        var pending = Deque<(Message, CheckedContinuation<Void, any Error>?)>()

        init(socket: Socket, stats: SocketStats, continuation: AsyncStream<[Message]>.Continuation?) {
            self.socket = socket
            self.stats = stats
            self.continuation = continuation
        }

        var hasPending: Bool { !pending.isEmpty }
    }

    /// Shortest time between two receiving wake-ups (nanoseconds; 0: none). See `init`.
    let coalesceNanoseconds: UInt64

    /// Starts the loop thread.
    ///
    /// `coalesce`: when messages wake the loop again sooner than this after the last time they did, the
    /// loop waits out the rest of it before it receives again, so that a busy socket is read in batches
    /// instead of once per message (each wake-up is a `poll` and a thread switch: at 10 000 EAs sending
    /// one message a second, more than the messages' handling). Jobs (sends) are not held back: they
    /// end the wait. A quiet socket is read at once; a busy one at most `coalesce` late.
    public init(
        context: Context, name: String = "zmq-loop", maxPendingPerSocket: Int = 10_000,
        coalesce: Duration = .zero, logger: Logger
    ) throws(ZMQError) {
        let parts = coalesce.components
        self.coalesceNanoseconds =
            UInt64(max(0, parts.seconds)) * 1_000_000_000 + UInt64(max(0, parts.attoseconds) / 1_000_000_000)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ZMQError(code: errno, operation: "pipe for \(name)") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        self.context = context
        self.wakeRead = fds[0]
        self.wakeWrite = fds[1]
        self.logger = logger
        self.maxPendingPerSocket = maxPendingPerSocket
        // Named from inside as well: on Linux a name set before the start does not reach the kernel (`top -H`, perf).
        let thread = Thread { [self] in
            Thread.current.name = name
            self.runLoop()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Runs `job` on the loop thread (in order with every other job).
    func execute(_ job: @escaping @Sendable () -> Void) {
        let wake: Bool = inbox.withLock { inbox in
            guard !inbox.stopped else { return false }
            inbox.jobs.append(job)
            if inbox.wakePending { return false }
            inbox.wakePending = true
            return true
        }
        if wake {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
    }

    /// Whether the loop has been asked to stop.
    public var isStopped: Bool { inbox.withLock { $0.stopped } }

    /// Creates a socket on the loop thread, lets `configure` set options and bind or connect it
    /// (on that thread), and starts polling it.
    public func open(
        _ type: SocketType, receiveBuffer: ReceiveBuffer = .unbounded,
        configure: @escaping @Sendable (Socket) throws -> Void = { _ in }
    ) async throws -> LoopSocket {
        let id = ids.add(1, ordering: .relaxed).newValue
        let receives = ![.pub, .push].contains(type)
        let (stream, continuation) = AsyncStream<[Message]>.makeStream(
            bufferingPolicy: {
                switch receiveBuffer {
                case .unbounded: .unbounded
                case .bounded(let n): .bufferingOldest(n)
                }
            }())
        if !receives { continuation.finish() }
        let stats = SocketStats()
        let port: Int? = try await withCheckedThrowingContinuation { (reply: CheckedContinuation<Int?, any Error>) in
            let job: @Sendable () -> Void = { [self] in
                do {
                    let socket = try Socket(context: context, type: type)
                    try configure(socket)
                    entries[id] = Entry(socket: socket, stats: stats, continuation: receives ? continuation : nil)
                    itemsDirty = true
                    reply.resume(returning: socket.boundPort)
                } catch {
                    continuation.finish()
                    reply.resume(throwing: error)
                }
            }
            if !submit(job) { reply.resume(throwing: ZMQError(code: ETERM, operation: "open \(type.rawValue)")) }
        }
        return LoopSocket(id: id, type: type, loop: self, messages: stream, stats: stats, boundPort: port)
    }

    /// Queues a job unless the loop is stopped; returns false when stopped.
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        if isStopped { return false }
        execute(job)
        return true
    }

    /// Runs `body` with the socket on the loop thread (for options after opening).
    public func withSocket<T: Sendable>(
        _ handle: LoopSocket, _ body: @escaping @Sendable (Socket) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (reply: CheckedContinuation<T, any Error>) in
            let job: @Sendable () -> Void = { [self] in
                guard let entry = entries[handle.id] else {
                    return reply.resume(throwing: ZMQError(code: ENOTSOCK, operation: "socket \(handle.id) closed"))
                }
                do { reply.resume(returning: try body(entry.socket)) } catch { reply.resume(throwing: error) }
            }
            if !submit(job) { reply.resume(throwing: ZMQError(code: ETERM, operation: "withSocket")) }
        }
    }

    /// Sends on the loop thread; resumes when libzmq has taken the message or refused it.
    func send(_ messages: [Message], on id: Int) async throws {
        try await withCheckedThrowingContinuation { (reply: CheckedContinuation<Void, any Error>) in
            let job: @Sendable () -> Void = { [self] in
                guard let entry = entries[id] else {
                    return reply.resume(throwing: ZMQError(code: ENOTSOCK, operation: "send on closed socket"))
                }
                for (index, message) in messages.enumerated() {
                    let isLast = index == messages.count - 1
                    if let error = transmit(message, entry: entry, reply: isLast ? reply : nil) {
                        return reply.resume(throwing: error)
                    }
                }
            }
            if !submit(job) { reply.resume(throwing: ZMQError(code: ETERM, operation: "send after loop stop")) }
        }
    }

    /// Whether the caller runs on this loop's thread.
    var isLoopThread: Bool {
        let thread = loopThread.load(ordering: .acquiring)
        return thread != 0 && pthread_equal(pthread_t(thread), pthread_self()) != 0
    }

    /// Hands later batches received on `id` to `handler`, called on the loop thread (nil: back to
    /// the stream). The handler must be quick and must not block: it holds up every socket of the loop.
    func setInlineHandler(_ handler: (@Sendable ([Message]) -> Void)?, on id: Int) async {
        await withCheckedContinuation { (reply: CheckedContinuation<Void, Never>) in
            let job: @Sendable () -> Void = { [self] in
                entries[id]?.inlineHandler = handler
                reply.resume()
            }
            if !submit(job) { reply.resume() }
        }
    }

    /// Hands later batches received on `id` to `handler` as raw batches, on the loop thread, with no
    /// allocation per message (nil: back to the stream). Peer metadata is not captured on this path.
    func setRawHandler(_ handler: (@Sendable (RawBatch) -> Void)?, on id: Int) async {
        await withCheckedContinuation { (reply: CheckedContinuation<Void, Never>) in
            let job: @Sendable () -> Void = { [self] in
                entries[id]?.rawHandler = handler
                reply.resume()
            }
            if !submit(job) { reply.resume() }
        }
    }

    /// Sends a two-frame message from borrowed bytes. On the loop thread, with nothing queued before it,
    /// the bytes go to libzmq without a copy; otherwise they are copied and posted.
    func post(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, on id: Int) {
        if isLoopThread, let entry = entries[id], !entry.hasPending {
            do {
                try entry.socket.send(first, second, dontWait: true)
                entry.stats.sentCount.add(1, ordering: .relaxed)
                return
            } catch let error where error.wouldBlock && entry.socket.type != .router {
                // Falls through to the copying path, which queues it.
            } catch {
                entry.stats.failedCount.add(1, ordering: .relaxed)
                return
            }
        }
        post([Message([Array(first), Array(second)])], on: id)
    }

    /// Sends without waiting for the outcome; failures are counted in the socket's stats.
    /// Called on the loop thread (from an inline handler) it sends at once, without a hop.
    func post(_ messages: [Message], on id: Int) {
        if isLoopThread {
            guard let entry = entries[id] else { return }
            for message in messages { _ = transmit(message, entry: entry, reply: nil) }
            return
        }
        _ = submit { [self] in
            guard let entry = entries[id] else { return }
            for message in messages { _ = transmit(message, entry: entry, reply: nil) }
        }
    }

    func closeSocket(_ id: Int) {
        _ = submit { [self] in
            guard let entry = entries.removeValue(forKey: id) else { return }
            discard(entry)
            itemsDirty = true
        }
    }

    /// Closes every socket and ends the thread; returns when the thread has finished.
    public func shutdown() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let (wake, done) = inbox.withLock { inbox -> (Bool, Bool) in
                if inbox.exited { return (false, true) }
                inbox.waiters.append(waiter)
                let first = !inbox.stopped
                inbox.stopped = true
                return (first, false)
            }
            if done { return waiter.resume() }
            if wake {
                var byte: UInt8 = 1
                _ = write(wakeWrite, &byte, 1)
            }
        }
    }
}
