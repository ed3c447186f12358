import CZeroMQ
import Glibc

/// One event of a socket monitor (`zmq_socket_monitor`): what happened to which connection.
public struct MonitorEvent: Sendable, Equatable {
    /// What happened on the socket.
    public enum Kind: Sendable, Equatable {
        /// A peer's TCP connection was accepted; `value` is its file descriptor.
        case accepted
        /// A connection ended (peer closed, heartbeat timeout, error); `value` is its file descriptor.
        case disconnected
        /// The ZMTP handshake (and ZAP, if any) of a connection completed.
        case handshakeSucceeded
        /// Any other event, by its libzmq number.
        case other(UInt16)
    }

    /// What happened.
    public let kind: Kind
    /// The event's value: a file descriptor for `accepted` and `disconnected`, an error code for failures.
    public let value: UInt32
    /// The endpoint the event concerns (for accepted connections, the bound endpoint).
    public let endpoint: String

    /// The events `Socket.startMonitor` can ask for.
    public struct Selection: OptionSet, Sendable {
        /// libzmq's event bits.
        public let rawValue: Int32
        /// Events from libzmq's bits.
        public init(rawValue: Int32) { self.rawValue = rawValue }
        /// A connection accepted.
        public static let accepted = Selection(rawValue: ZMQ_EVENT_ACCEPTED)
        /// A connection closed.
        public static let disconnected = Selection(rawValue: ZMQ_EVENT_DISCONNECTED)
        /// A ZMTP handshake (and CURVE, if on) completed.
        public static let handshakeSucceeded = Selection(rawValue: ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
    }

    /// An event as libzmq reported it.
    public init(kind: Kind, value: UInt32, endpoint: String) {
        self.kind = kind
        self.value = value
        self.endpoint = endpoint
    }

    /// Decodes the two frames a monitor socket delivers (16-bit event and 32-bit value in native byte
    /// order, then the endpoint); nil for anything else.
    public init?(_ message: Message) {
        guard message.frames.count == 2, message.frames[0].count == 6 else { return nil }
        let head = message.frames[0]
        let number = head.withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
        value = head.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        endpoint = String(decoding: message.frames[1], as: UTF8.self)
        switch Int32(number) {
        case ZMQ_EVENT_ACCEPTED: kind = .accepted
        case ZMQ_EVENT_DISCONNECTED: kind = .disconnected
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: kind = .handshakeSucceeded
        default: kind = .other(number)
        }
    }
}

extension Socket {
    /// Publishes this socket's connection events on a PAIR socket bound at `endpoint` (`inproc://…`);
    /// connect a PAIR there to read them (it may connect first: inproc allows connect before bind).
    public func startMonitor(_ endpoint: String, events: MonitorEvent.Selection) throws(ZMQError) {
        guard zmq_socket_monitor(handle, endpoint, events.rawValue) == 0 else {
            throw ZMQError.last("zmq_socket_monitor \(endpoint)")
        }
    }
}

/// The TCP connection behind a libzmq peer, named by the descriptor libzmq reports (`ZMQ_SRCFD`,
/// monitor events). libzmq has no call to drop one peer of a ROUTER (only the draft
/// `zmq_disconnect_peer` of the SERVER socket); shutting the connection down makes libzmq close it as
/// if the peer had, and the peer's DEALER reconnects by itself. The descriptor belongs to libzmq, so it
/// is never closed here, and it is shut down only while it still is the same connection.
public enum TCPLink {
    /// The remote end (numeric host, port) of descriptor `fd`, or nil when it is no connected TCP socket.
    public static func remoteEndpoint(_ fd: Int32) -> (host: String, port: Int)? {
        endpoint(fd, remote: true)
    }

    /// The local port of descriptor `fd`, or nil.
    public static func localPort(_ fd: Int32) -> Int? {
        endpoint(fd, remote: false)?.port
    }

    /// Shuts down the connection on `fd` if it still is the one from `remote` on local port
    /// `localPort` (the number may have been reused for another connection since it was learnt).
    /// Returns whether it was shut down.
    @discardableResult
    public static func drop(_ fd: Int32, remote: (host: String, port: Int), localPort: Int) -> Bool {
        guard fd >= 0, let now = remoteEndpoint(fd), now == remote, Self.localPort(fd) == localPort else {
            return false
        }
        return shutdown(fd, Int32(SHUT_RDWR)) == 0
    }

    private static func endpoint(_ fd: Int32, remote: Bool) -> (host: String, port: Int)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                remote ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        guard rc == 0 else { return nil }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let named = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo(
                    $0, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                    NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard named == 0 else { return nil }
        let family = Int32(storage.ss_family)
        guard family == AF_INET || family == AF_INET6 else { return nil }
        guard let port = Int(String(cString: service)) else { return nil }
        return (String(cString: host), port)
    }
}
