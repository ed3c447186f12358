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
    private let inbox = Mutex<Inbox>(Inbox())
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let ids = Atomic<Int>(0)
    /// Largest number of messages queued on one socket while libzmq reports a full queue.
    let maxPendingPerSocket: Int

    // Loop-thread state: touched only by the loop thread.
    private var entries: [Int: Entry] = [:]
    private var pollItems: [zmq_pollitem_t] = []
    private var pollIDs: [Int] = []
    private var itemsDirty = true
    private var running = true
    /// The loop thread, set once it starts; lets `post` from the loop thread itself skip the inbox.
    private let loopThread = Atomic<UInt>(0)

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
    private let coalesceNanoseconds: UInt64

    /// Starts the loop thread.
    ///
    /// `coalesce`: when messages wake the loop again sooner than this after the last time they did, the
    /// loop waits out the rest of it before it receives again, so that a busy socket is read in batches
    /// instead of once per message (each wake-up is a `poll` and a thread switch: at 10 000 EAs sending
    /// one message a second, more than the messages' handling). Jobs (sends) are not held back: they
    /// end the wait. A quiet socket is read at once; a busy one at most `coalesce` late.
    public init(
        context: Context, name: String = "zmq-loop", maxPendingPerSocket: Int = 10_000,
        coalesce: Duration = .zero, logger: Logger = Logger(label: "bitten.zmq")
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
        let thread = Thread { [self] in self.runLoop() }
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
    private func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
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

    // MARK: loop thread

    /// Tries to hand `message` to libzmq; queues it when the socket's queue is full.
    /// Returns an error only when the message was refused (the caller reports it).
    private func transmit(
        _ message: Message, entry: Entry, reply: CheckedContinuation<Void, any Error>?
    ) -> ZMQError? {
        if entry.hasPending {
            return enqueue(message, entry: entry, reply: reply)
        }
        do {
            try entry.socket.send(message, dontWait: true)
            entry.stats.sentCount.add(1, ordering: .relaxed)
            reply?.resume()
            return nil
        } catch let error where error.wouldBlock && entry.socket.type != .router {
            return enqueue(message, entry: entry, reply: reply)
        } catch {
            entry.stats.failedCount.add(1, ordering: .relaxed)
            return error
        }
    }

    private func enqueue(
        _ message: Message, entry: Entry, reply: CheckedContinuation<Void, any Error>?
    ) -> ZMQError? {
        guard entry.pending.count < maxPendingPerSocket else {
            entry.stats.failedCount.add(1, ordering: .relaxed)
            return ZMQError(code: EAGAIN, operation: "send queue full (\(maxPendingPerSocket) pending)")
        }
        if !entry.hasPending { itemsDirty = true }
        entry.pending.append((message, reply))
        return nil
    }

    private func flushPending(_ entry: Entry) {
        while let (message, reply) = entry.pending.first {
            do {
                try entry.socket.send(message, dontWait: true)
                entry.stats.sentCount.add(1, ordering: .relaxed)
                reply?.resume()
            } catch let error where error.wouldBlock {
                return
            } catch {
                entry.stats.failedCount.add(1, ordering: .relaxed)
                reply?.resume(throwing: error)
            }
            entry.pending.removeFirst()
        }
        itemsDirty = true
    }

    private func discard(_ entry: Entry) {
        while let (_, reply) = entry.pending.popFirst() {
            reply?.resume(throwing: ZMQError(code: ETERM, operation: "socket closed"))
        }
        entry.continuation?.finish()
        entry.socket.close()
    }

    private func rebuildItems() {
        pollItems.removeAll(keepingCapacity: true)
        pollIDs.removeAll(keepingCapacity: true)
        pollItems.append(zmq_pollitem_t(socket: nil, fd: wakeRead, events: Int16(ZMQ_POLLIN), revents: 0))
        pollIDs.append(-1)
        for (id, entry) in entries {
            var events: Int16 = 0
            if entry.continuation != nil { events |= Int16(ZMQ_POLLIN) }
            if entry.hasPending { events |= Int16(ZMQ_POLLOUT) }
            guard events != 0 else { continue }
            pollItems.append(zmq_pollitem_t(socket: entry.socket.handle, fd: 0, events: events, revents: 0))
            pollIDs.append(id)
        }
        itemsDirty = false
    }

    private func runLoop() {
        loopThread.store(UInt(pthread_self()), ordering: .releasing)
        var lastReceive: UInt64 = 0
        while running {
            if itemsDirty { rebuildItems() }
            if coalesceNanoseconds > 0, lastReceive > 0 {
                // Jobs run as they come; the sockets are read again once the time is up.
                while running {
                    let elapsed = DispatchTime.now().uptimeNanoseconds &- lastReceive
                    guard elapsed < coalesceNanoseconds else { break }
                    pause(coalesceNanoseconds - elapsed)
                }
                if !running { break }
                if itemsDirty { rebuildItems() }
            }
            let count = pollItems.count
            let rc = pollItems.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32(count), -1) }
            if rc < 0 {
                if zmq_errno() == EINTR { continue }
                logger.error("zmq_poll failed", metadata: ["error": "\(ZMQError.last("zmq_poll"))"])
                break
            }
            // The wake-up's time when it received and read every socket empty; 0 (no pause) otherwise.
            var wokeAt: UInt64 = 0
            var full = false
            for index in 1..<max(count, 1) {
                let revents = pollItems[index].revents
                guard revents != 0, let entry = entries[pollIDs[index]] else { continue }
                if revents & Int16(ZMQ_POLLOUT) != 0 { flushPending(entry) }
                if revents & Int16(ZMQ_POLLIN) != 0 {
                    if coalesceNanoseconds > 0, wokeAt == 0 { wokeAt = DispatchTime.now().uptimeNanoseconds }
                    if drain(entry) { full = true }
                }
            }
            if pollItems[0].revents != 0 { runJobs() }
            lastReceive = full ? 0 : wokeAt
        }
        for (_, entry) in entries { discard(entry) }
        entries = [:]
        let waiters = inbox.withLock { inbox -> [CheckedContinuation<Void, Never>] in
            inbox.exited = true
            inbox.stopped = true
            defer { inbox.waiters = [] }
            return inbox.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits up to `nanoseconds` for jobs only (what sockets receive meanwhile stays queued in libzmq),
    /// and runs them if they come.
    private func pause(_ nanoseconds: UInt64) {
        // select, not poll: poll counts whole milliseconds.
        var set = fd_set()
        withUnsafeMutableBytes(of: &set) { bytes in
            let words = bytes.bindMemory(to: Int.self)
            words[Int(wakeRead) / Int.bitWidth] |= 1 << (Int(wakeRead) % Int.bitWidth)
        }
        var timeout = timeval(
            tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000 / 1_000))
        if select(wakeRead + 1, &set, nil, nil, &timeout) > 0 { runJobs() }
    }

    private func runJobs() {
        var sink = [UInt8](repeating: 0, count: 256)
        while read(wakeRead, &sink, sink.count) > 0 {}
        let (jobs, stop) = inbox.withLock { inbox -> ([@Sendable () -> Void], Bool) in
            inbox.wakePending = false
            defer { inbox.jobs.removeAll(keepingCapacity: true) }
            return (inbox.jobs, inbox.stopped)
        }
        for job in jobs { job() }
        if stop { running = false }
    }

    /// Reads what is queued on a socket, up to a batch, and hands it to the consumer. Returns whether the
    /// batch was full (more may be waiting).
    @discardableResult
    private func drain(_ entry: Entry) -> Bool {
        if let handler = entry.rawHandler, entry.continuation != nil { return drainRaw(entry, handler) }
        var batch: [Message] = []
        // REQ and REP must send between two receives.
        let limit = entry.socket.type == .rep || entry.socket.type == .req ? 1 : 2048
        while batch.count < limit {
            do {
                guard let message = try entry.socket.receive(dontWait: true) else { break }
                batch.append(message)
            } catch {
                logger.warning("receive failed", metadata: ["error": "\(error)"])
                break
            }
        }
        guard !batch.isEmpty, let continuation = entry.continuation else { return false }
        entry.stats.receivedCount.add(batch.count, ordering: .relaxed)
        if let handler = entry.inlineHandler {
            handler(batch)
        } else if case .dropped = continuation.yield(batch) {
            entry.stats.droppedCount.add(batch.count, ordering: .relaxed)
        }
        return batch.count >= limit
    }

    /// Reads up to a batch (2 048 messages or 4 MiB) into the socket's reused buffer and hands it over.
    private func drainRaw(_ entry: Entry, _ handler: @Sendable (RawBatch) -> Void) -> Bool {
        let storage = entry.raw
        storage.reset()
        while storage.messageCount < 2048 && storage.byteCount < 4 << 20 {
            do {
                guard try entry.socket.receive(into: storage, dontWait: true) else { break }
            } catch {
                logger.warning("receive failed", metadata: ["error": "\(error)"])
                break
            }
        }
        guard storage.messageCount > 0 else { return false }
        let full = storage.messageCount >= 2048 || storage.byteCount >= 4 << 20
        entry.stats.receivedCount.add(storage.messageCount, ordering: .relaxed)
        storage.withBatch { handler($0) }
        storage.trim(maxBytes: 16 << 20)
        return full
    }
}
