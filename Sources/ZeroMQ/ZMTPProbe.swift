#if canImport(Glibc)
    import Glibc
#endif

/// Reads a ZeroMQ peer's socket type from its ZMTP 3 handshake (NULL mechanism) over plain TCP, for
/// `bitten check`. The parser is separate from the socket and checks every length against what
/// arrived, so a peer that sends garbage, a short greeting or lying lengths gets a failure, never a crash.
public enum ZMTPProbe {
    /// Why the probe failed, in words for the operator.
    public struct Failure: Error, CustomStringConvertible, Sendable, Equatable {
        /// What went wrong, in one line.
        public let message: String
        /// A failure with its reason.
        public init(_ message: String) { self.message = message }
        /// The reason.
        public var description: String { message }
    }

    /// What the bytes received so far say.
    public enum Reading: Sendable, Equatable {
        /// At least this many bytes in all are needed to go on.
        case needMore(Int)
        /// The peer's `Socket-Type`.
        case socketType(String)
        /// The peer uses another security mechanism (CURVE): no READY to read without its keys.
        case security(String)
    }

    /// The largest READY command accepted (a real one is a few dozen bytes).
    public static let maxCommandBytes = 64 * 1024

    /// Our greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
    public static let greeting: [UInt8] = {
        var bytes: [UInt8] = [0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 0]
        bytes += Array("NULL".utf8) + [UInt8](repeating: 0, count: 16)
        bytes += [0] + [UInt8](repeating: 0, count: 31)
        return bytes
    }()

    /// Parses the peer's greeting and READY command from everything received so far.
    public static func read(_ buffer: [UInt8]) throws(Failure) -> Reading {
        guard buffer.count >= 10 else {
            if let first = buffer.first, first != 0xFF { throw Failure("not a ZMTP greeting (not a ZeroMQ socket)") }
            return .needMore(64)
        }
        guard buffer[0] == 0xFF, buffer[9] == 0x7F else { throw Failure("not a ZMTP greeting (not a ZeroMQ socket)") }
        guard buffer.count >= 64 else { return .needMore(64) }
        guard buffer[10] >= 3 else {
            throw Failure("the peer speaks ZMTP \(buffer[10]).\(buffer[11]); 3.0 or later is needed")
        }
        let mechanism = String(decoding: buffer[12..<32].prefix { $0 != 0 }, as: UTF8.self)
        guard mechanism == "NULL" else { return .security(mechanism) }
        guard buffer.count >= 66 else { return .needMore(66) }
        let flags = buffer[64]
        guard flags & 0x04 != 0 else { throw Failure("the peer sent a message before its READY command") }
        var offset = 66
        var size = Int(buffer[65])
        if flags & 0x02 != 0 {
            guard buffer.count >= 73 else { return .needMore(73) }
            let long = buffer[65..<73].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard long <= UInt64(maxCommandBytes) else { throw Failure("the peer announced a \(long)-byte command") }
            size = Int(long)
            offset = 73
        }
        guard buffer.count >= offset + size else { return .needMore(offset + size) }
        let body = Array(buffer[offset..<(offset + size)])
        guard let nameLength = body.first.map(Int.init), nameLength > 0, body.count > nameLength,
            String(decoding: body[1...nameLength], as: UTF8.self) == "READY"
        else {
            throw Failure("the peer sent no READY command")
        }
        var index = 1 + nameLength
        while index < body.count {
            let keyLength = Int(body[index])
            guard index + 1 + keyLength + 4 <= body.count else {
                throw Failure("a READY property runs past the command")
            }
            let key = String(decoding: body[(index + 1)..<(index + 1 + keyLength)], as: UTF8.self)
            index += 1 + keyLength
            let valueLength = body[index..<(index + 4)].reduce(0) { $0 << 8 | Int($1) }
            index += 4
            guard valueLength <= body.count - index else {
                throw Failure("a READY property value runs past the command")
            }
            let value = String(decoding: body[index..<(index + valueLength)], as: UTF8.self)
            index += valueLength
            if key.lowercased() == "socket-type" { return .socketType(value) }
        }
        throw Failure("READY without a Socket-Type")
    }

    /// Connects to `host:port`, sends our greeting and returns the `Socket-Type` the peer announces
    /// (or `(CURVE security)` for a peer with another mechanism).
    public static func socketType(host: String, port: Int, timeout: Double) throws(Failure) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            throw Failure("nothing listening on \(host):\(port) (\(String(cString: strerror(errno))))")
        }
        guard send(fd, greeting, greeting.count, 0) == greeting.count else {
            throw Failure("could not send the ZMTP greeting")
        }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            switch try read(buffer) {
            case .socketType(let type): return type
            case .security(let mechanism): return "(\(mechanism) security)"
            case .needMore:
                let n = recv(fd, &chunk, chunk.count, 0)
                guard n > 0 else {
                    throw Failure("the peer closed or timed out during the ZMTP handshake (not a ZeroMQ socket?)")
                }
                buffer += chunk[0..<n]
            }
        }
    }
}
