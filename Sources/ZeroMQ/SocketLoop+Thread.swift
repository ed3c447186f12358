import CZeroMQ
import DequeModule
import Foundation
import Logging
import Synchronization

/// The loop thread: polls, drains, sends and runs the jobs others queue.
extension SocketLoop {
    /// Tries to hand `message` to libzmq; queues it when the socket's queue is full.
    /// Returns an error only when the message was refused (the caller reports it).
    func transmit(
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

    func enqueue(
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

    func flushPending(_ entry: Entry) {
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

    func discard(_ entry: Entry) {
        while let (_, reply) = entry.pending.popFirst() {
            reply?.resume(throwing: ZMQError(code: ETERM, operation: "socket closed"))
        }
        entry.continuation?.finish()
        entry.socket.close()
    }

    func rebuildItems() {
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

    func runLoop() {
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
                logger.error("zmq_poll failed", metadata: ["bitten.error": "\(ZMQError.last("zmq_poll"))"])
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
    func pause(_ nanoseconds: UInt64) {
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

    func runJobs() {
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
    func drain(_ entry: Entry) -> Bool {
        if let handler = entry.rawHandler, entry.continuation != nil { return drainRaw(entry, handler) }
        var batch: [Message] = []
        // REQ and REP must send between two receives.
        let limit = entry.socket.type == .rep || entry.socket.type == .req ? 1 : 2048
        while batch.count < limit {
            do {
                guard let message = try entry.socket.receive(dontWait: true) else { break }
                batch.append(message)
            } catch {
                logger.warning("receive failed", metadata: ["bitten.error": "\(error)"])
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
    func drainRaw(_ entry: Entry, _ handler: @Sendable (RawBatch) -> Void) -> Bool {
        let storage = entry.raw
        storage.reset()
        while storage.messageCount < 2048 && storage.byteCount < 4 << 20 {
            do {
                guard try entry.socket.receive(into: storage, dontWait: true) else { break }
            } catch {
                logger.warning("receive failed", metadata: ["bitten.error": "\(error)"])
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
