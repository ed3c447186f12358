import CHiredis
import Foundation
import Logging
import Synchronization

/// The callback for every command: collects the reply into its request (nil: the connection is gone).
func replyCallback(
    _ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?, _ token: UnsafeMutableRawPointer?
) {
    guard let token else { return }
    let request = Unmanaged<Request>.fromOpaque(token).takeRetainedValue()
    if let data = ac?.pointee.data {
        let link = Unmanaged<Link>.fromOpaque(data).takeUnretainedValue()
        link.owner?.replied(on: link)
    }
    guard let reply else {
        // Seen by the caller only after the state says so.
        let owner = ac?.pointee.data.map { Unmanaged<Link>.fromOpaque($0).takeUnretainedValue() }?.owner
        owner?.noteLost()
        let server = owner.map { " to \($0.url.host):\($0.url.port)" } ?? ""
        return request.finish(.failure(RedisError(.io, "connection\(server) lost before the reply")))
    }
    if let data = ac?.pointee.data { Unmanaged<Link>.fromOpaque(data).takeUnretainedValue().owner?.noteAlive() }
    let value = RedisConnection.convert(reply.assumingMemoryBound(to: redisReply.self))
    if let link = request.login, case .error(let message) = value {
        link.lastError = "log-in refused: \(message)"
        if let ac { redisAsyncDisconnect(ac) }
    }
    request.collect(value)
}

/// What the IO thread queues: commands and the caller waiting for their replies.
struct Job {
    let commands: [[[UInt8]]]
    let request: Request
}

/// One connection of the multiplexer (IO-thread state).
final class Link {
    enum Phase {
        case down
        case connecting(since: Double)
        case up
    }
    let index: Int
    var context: UnsafeMutablePointer<redisAsyncContext>?
    var phase: Phase = .down
    var wantRead = false
    var wantWrite = false
    var outstanding = 0
    var waiting: [Job] = []
    var lastError: String?
    var backoff: ReconnectBackoff
    weak var owner: RedisMultiplexer?

    init(index: Int, backoff: ReconnectBackoff) {
        self.index = index
        self.backoff = backoff
    }

    func contextFreed() { owner?.contextFreed(self) }
}

/// A caller waiting for `expected` replies. Finished once: by its last reply, a failure, or cancellation.
final class Request: @unchecked Sendable {
    private struct State {
        var continuation: CheckedContinuation<[RedisReply], any Error>?
        var early: Result<[RedisReply], any Error>?
        var finished = false
    }

    private let state = Mutex(State())
    let expected: Int
    /// The link whose log-in this is (AUTH/SELECT), if it is one.
    let login: Link?
    /// Replies so far (IO thread only).
    private var replies: [RedisReply] = []

    init(expected: Int, login: Link? = nil) {
        self.expected = expected
        self.login = login
        replies.reserveCapacity(expected)
    }

    var isFinished: Bool { state.withLock { $0.finished } }

    /// Attaches the caller; false when the request already finished (cancelled before it was sent).
    func install(_ continuation: CheckedContinuation<[RedisReply], any Error>) -> Bool {
        let early: Result<[RedisReply], any Error>? = state.withLock { s in
            if s.finished { return s.early ?? .failure(CancellationError()) }
            s.continuation = continuation
            return nil
        }
        guard let early else { return true }
        continuation.resume(with: early)
        return false
    }

    func collect(_ reply: RedisReply) {
        replies.append(reply)
        if replies.count == expected { finish(.success(replies)) }
    }

    func finish(_ result: Result<[RedisReply], any Error>) {
        let continuation: CheckedContinuation<[RedisReply], any Error>? = state.withLock { s in
            guard !s.finished else { return nil }
            s.finished = true
            if s.continuation == nil { s.early = result }
            defer { s.continuation = nil }
            return s.continuation
        }
        continuation?.resume(with: result)
    }
}
