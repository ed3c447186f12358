import Synchronization

/// Counters of one loop-owned socket, readable from any thread.
public final class SocketStats: Sendable {
    let receivedCount = Atomic<Int>(0)
    let sentCount = Atomic<Int>(0)
    let failedCount = Atomic<Int>(0)
    let droppedCount = Atomic<Int>(0)

    init() {}

    /// Messages received.
    public var received: Int { receivedCount.load(ordering: .relaxed) }
    /// Messages sent (handed to libzmq).
    public var sent: Int { sentCount.load(ordering: .relaxed) }
    /// Sends that failed (unknown identity, queue full, closed socket).
    public var failed: Int { failedCount.load(ordering: .relaxed) }
    /// Received messages dropped because the consumer's bounded buffer was full.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }
}
