/// One multipart ZeroMQ message: its frames in order.
public struct Message: Sendable, Equatable {
    /// The frames, first to last.
    public var frames: [[UInt8]]
    /// The sender's address as libzmq reports it (`Peer-Address` metadata: the IP of the TCP peer),
    /// on messages received by a socket with `capturesPeerAddress` set; nil otherwise.
    public var peerAddress: String?
    /// The file descriptor of the TCP connection the message came in on (`ZMQ_SRCFD`), on messages
    /// received by a socket with `capturesPeerAddress` set; nil otherwise. It names one connection
    /// while that connection lives (libzmq reuses the number afterwards): see `TCPLink`.
    public var sourceDescriptor: Int32?

    /// Makes a message from byte frames.
    public init(_ frames: [[UInt8]], peerAddress: String? = nil, sourceDescriptor: Int32? = nil) {
        self.frames = frames
        self.peerAddress = peerAddress
        self.sourceDescriptor = sourceDescriptor
    }

    /// Makes a message from text frames (UTF-8).
    public init(strings: [String]) { self.frames = strings.map { Array($0.utf8) } }

    /// The last frame (the payload of a ROUTER-received message), or empty.
    public var payload: [UInt8] { frames.last ?? [] }

    /// Total size of all frames in bytes.
    public var byteCount: Int { frames.reduce(0) { $0 + $1.count } }
}
