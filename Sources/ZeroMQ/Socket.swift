import CZeroMQ

/// A libzmq socket. Not thread-safe: a socket is used only by the thread that owns it (a
/// `SocketLoop` thread, or the one thread of a blocking client such as a benchmark loop).
public final class Socket {
    /// The pattern this socket was created with.
    public let type: SocketType
    let handle: UnsafeMutableRawPointer
    private let context: Context
    private var closed = false
    /// Whether received messages carry the sender's `Peer-Address` (libzmq metadata, one lookup per
    /// message) and the descriptor of the connection they came in on (`ZMQ_SRCFD`); set it on the
    /// sockets whose peers must be told apart (the EA-facing ones).
    public var capturesPeerAddress = false

    /// Creates a socket with a short linger (never infinite) so that shutdown cannot hang.
    public init(context: Context, type: SocketType, linger: Duration = .milliseconds(100)) throws(ZMQError) {
        guard let socket = zmq_socket(context.handle, type.raw) else {
            throw ZMQError.last("zmq_socket \(type.rawValue)")
        }
        self.handle = socket
        self.type = type
        self.context = context
        try setOption(ZMQ_LINGER, Int32(linger.milliseconds), name: "ZMQ_LINGER")
    }

    deinit { close() }

    /// Closes the socket; later calls fail with `ENOTSOCK`.
    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }

    /// Binds to an endpoint such as `tcp://*:5555` or `tcp://127.0.0.1:0`.
    public func bind(_ endpoint: String) throws(ZMQError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("bind \(endpoint)") }
    }

    /// Connects to an endpoint such as `tcp://127.0.0.1:5555`.
    public func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("connect \(endpoint)") }
    }

    /// Unbinds an endpoint (as returned by `lastEndpoint`).
    public func unbind(_ endpoint: String) throws(ZMQError) {
        guard zmq_unbind(handle, endpoint) == 0 else { throw ZMQError.last("unbind \(endpoint)") }
    }

    /// The endpoint last bound, with the real port when bound to port 0.
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return "" }
        return cString(buffer)
    }

    /// The TCP port of `lastEndpoint`, if any.
    public var boundPort: Int? {
        guard let colon = lastEndpoint.lastIndex(of: ":") else { return nil }
        return Int(lastEndpoint[lastEndpoint.index(after: colon)...])
    }

    /// Sends every frame of `message`. With `dontWait` a full queue throws `EAGAIN` instead of blocking.
    public func send(_ message: Message, dontWait: Bool = false) throws(ZMQError) {
        let last = message.frames.count - 1
        guard last >= 0 else { return }
        let base: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        for (index, frame) in message.frames.enumerated() {
            let flags = index < last ? base | ZMQ_SNDMORE : base
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if rc < 0 { throw ZMQError.last("send (\(type.rawValue))") }
        }
    }

    /// Sends one frame built from a string.
    public func send(_ text: String, dontWait: Bool = false) throws(ZMQError) {
        try send(Message(strings: [text]), dontWait: dontWait)
    }

    /// Receives one whole multipart message. Returns nil when `dontWait` is set and nothing is queued,
    /// or when the receive timeout (`ZMQ_RCVTIMEO`) expires.
    public func receive(dontWait: Bool = false) throws(ZMQError) -> Message? {
        var frames: [[UInt8]] = []
        var peer: String?
        var descriptor: Int32?
        var part = zmq_msg_t()
        let flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        while true {
            zmq_msg_init(&part)
            let rc = zmq_msg_recv(&part, handle, frames.isEmpty ? flags : 0)
            if rc < 0 {
                let error = ZMQError.last("receive (\(type.rawValue))")
                zmq_msg_close(&part)
                if error.wouldBlock && frames.isEmpty { return nil }
                throw error
            }
            // A ROUTER's identity frame carries no metadata when the message was prefetched by a poll:
            // take the address from the first frame that has it.
            if capturesPeerAddress, peer == nil, let address = zmq_msg_gets(&part, "Peer-Address") {
                peer = String(cString: address)
            }
            if capturesPeerAddress, descriptor == nil {
                let fd = zmq_msg_get(&part, ZMQ_SRCFD)
                if fd >= 0 { descriptor = fd }
            }
            let size = zmq_msg_size(&part)
            if let data = zmq_msg_data(&part), size > 0 {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            let more = zmq_msg_more(&part)
            zmq_msg_close(&part)
            if more == 0 { return Message(frames, peerAddress: peer, sourceDescriptor: descriptor) }
        }
    }

    /// Receives one whole multipart message into `storage` (no allocation once its buffers have grown).
    /// Returns false when `dontWait` is set and nothing is queued. Peer metadata is not read here.
    func receive(into storage: RawBatchStorage, dontWait: Bool) throws(ZMQError) -> Bool {
        var part = zmq_msg_t()
        var first = true
        while true {
            zmq_msg_init(&part)
            let rc = zmq_msg_recv(&part, handle, first && dontWait ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                let error = ZMQError.last("receive (\(type.rawValue))")
                zmq_msg_close(&part)
                if error.wouldBlock && first { return false }
                storage.dropUnfinished()
                throw error
            }
            let more = zmq_msg_more(&part)
            storage.append(
                UnsafeRawBufferPointer(start: zmq_msg_data(&part), count: zmq_msg_size(&part)), last: more == 0)
            zmq_msg_close(&part)
            if more == 0 { return true }
            first = false
        }
    }

    /// Sends two frames from borrowed bytes (a topic and a body) without copying them into a `Message`.
    func send(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, dontWait: Bool) throws(ZMQError) {
        let base: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        if zmq_send(handle, first.baseAddress, first.count, base | ZMQ_SNDMORE) < 0 {
            throw ZMQError.last("send (\(type.rawValue))")
        }
        if zmq_send(handle, second.baseAddress, second.count, base) < 0 {
            throw ZMQError.last("send (\(type.rawValue))")
        }
    }

    /// The pending events (`ZMQ_EVENTS`): whether a receive or a send would succeed now.
    public var events: (readable: Bool, writable: Bool) {
        let value = (try? intOption(ZMQ_EVENTS)) ?? 0
        return (value & Int32(ZMQ_POLLIN) != 0, value & Int32(ZMQ_POLLOUT) != 0)
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
