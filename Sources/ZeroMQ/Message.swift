/// One multipart ZeroMQ message: its frames in order.
public struct Message: Sendable, Equatable {
    /// The frames, first to last.
    public var frames: [[UInt8]]
    /// The sender's address as libzmq reports it (`Peer-Address` metadata: the IP of the TCP peer),
    /// on messages received by a socket with `capturesPeerAddress` set; nil otherwise.
    public var peerAddress: String?

    /// Makes a message from byte frames.
    public init(_ frames: [[UInt8]], peerAddress: String? = nil) {
        self.frames = frames
        self.peerAddress = peerAddress
    }

    /// Makes a message from text frames (UTF-8).
    public init(strings: [String]) { self.frames = strings.map { Array($0.utf8) } }

    /// The last frame (the payload of a ROUTER-received message), or empty.
    public var payload: [UInt8] { frames.last ?? [] }

    /// Total size of all frames in bytes.
    public var byteCount: Int { frames.reduce(0) { $0 + $1.count } }
}
