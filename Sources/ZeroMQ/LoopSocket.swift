/// A handle to a socket owned by a `SocketLoop`. Safe to share; every operation is carried
/// out on the loop's thread.
public struct LoopSocket: Sendable {
    /// Everything behind one reference: a handle is copied wherever it is bound (`guard let`, a property
    /// read), and the relay posts through it once per message; one retain per copy, not four.
    final class Storage: Sendable {
        let id: Int
        let type: SocketType
        let loop: SocketLoop
        let messages: AsyncStream<[Message]>
        let stats: SocketStats
        let boundPort: Int?

        init(
            id: Int, type: SocketType, loop: SocketLoop, messages: AsyncStream<[Message]>, stats: SocketStats,
            boundPort: Int?
        ) {
            self.id = id
            self.type = type
            self.loop = loop
            self.messages = messages
            self.stats = stats
            self.boundPort = boundPort
        }
    }

    let storage: Storage

    init(
        id: Int, type: SocketType, loop: SocketLoop, messages: AsyncStream<[Message]>, stats: SocketStats,
        boundPort: Int?
    ) {
        storage = Storage(id: id, type: type, loop: loop, messages: messages, stats: stats, boundPort: boundPort)
    }

    var id: Int { storage.id }
    /// The socket's pattern.
    public var type: SocketType { storage.type }
    /// The loop that owns the socket.
    public var loop: SocketLoop { storage.loop }
    /// Received messages, in batches (one batch per poll wake-up). Empty for PUB and PUSH.
    public var messages: AsyncStream<[Message]> { storage.messages }
    /// Counters for this socket.
    public var stats: SocketStats { storage.stats }
    /// The TCP port bound during configuration, if any (useful after binding port 0).
    public var boundPort: Int? { storage.boundPort }

    /// Sends one message; throws when libzmq refuses it (e.g. `EHOSTUNREACH` from ROUTER_MANDATORY).
    public func send(_ message: Message) async throws {
        try await loop.send([message], on: id)
    }

    /// Sends several messages in order with a single hop to the loop thread.
    public func send(batch: [Message]) async throws {
        guard !batch.isEmpty else { return }
        try await loop.send(batch, on: id)
    }

    /// Queues messages without waiting; failures are only counted (`stats.failed`).
    public func post(_ messages: [Message]) {
        guard !messages.isEmpty else { return }
        loop.post(messages, on: id)
    }

    /// From now on, received batches go to `handler` on the loop thread instead of `messages`
    /// (batches already in the stream stay there). The handler may `post` on sockets of the same
    /// loop without a hop; it must not block.
    public func handleInline(_ handler: @escaping @Sendable ([Message]) -> Void) async {
        await loop.setInlineHandler(handler, on: id)
    }

    /// From now on, received batches go to `handler` on the loop thread as raw batches: the bytes in a
    /// buffer the loop reuses, valid during the call only (no allocation per message). Peer metadata
    /// is not captured on this path. The handler must not block.
    public func handleInlineRaw(_ handler: @escaping @Sendable (RawBatch) -> Void) async {
        await loop.setRawHandler(handler, on: id)
    }

    /// Sends a two-frame message from borrowed bytes (a topic and a body). Called on the loop thread
    /// (from an inline handler), libzmq takes the bytes without an intermediate copy.
    public func post(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) {
        loop.post(first, second, on: id)
    }

    /// Sends received batches to `messages` again.
    public func stopInlineHandling() async {
        await loop.setRawHandler(nil, on: id)
        await loop.setInlineHandler(nil, on: id)
    }

    /// Closes the socket on the loop thread.
    public func close() { loop.closeSocket(id) }
}
