import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP relay on a free loopback port that forwards every connection to `127.0.0.1:target`, for tests
/// that need a network path to go dead: `freeze()` stops moving bytes on the connections open now
/// (they stay open, like a link whose far end lost power), new connections relay normally. When one
/// side of a relayed connection closes, the other is closed too.
public final class TCPRelay: Sendable {
    /// The port it listens on.
    public let port: Int
    private let listener: Int32
    private let target: Int
    private let state = Mutex<State>(State())

    private struct State {
        var connections: [Int: Pair] = [:]
        var nextID = 0
        var stopped = false
    }

    private struct Pair {
        var client: Int32
        var server: Int32
        var frozen = false
    }

    /// A relay from a free loopback port to `target`.
    public init(to target: Int) throws {
        self.target = target
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Stops relaying on every connection open now; they stay open.
    public func freeze() {
        state.withLock { s in for id in s.connections.keys { s.connections[id]?.frozen = true } }
    }

    /// Closes the listener and every connection.
    public func stop() {
        let pairs = state.withLock { s -> [Pair] in
            s.stopped = true
            defer { s.connections = [:] }
            return Array(s.connections.values)
        }
        Glibc.shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for pair in pairs {
            Glibc.shutdown(pair.client, Int32(SHUT_RDWR))
            Glibc.shutdown(pair.server, Int32(SHUT_RDWR))
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: target)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            let id = state.withLock { s -> Int in
                s.nextID += 1
                s.connections[s.nextID] = Pair(client: client, server: server)
                return s.nextID
            }
            for (from, to) in [(client, server), (server, client)] {
                let thread = Thread { [self] in pump(id: id, from: from, to: to) }
                thread.start()
            }
        }
    }

    /// Copies bytes one way until either end closes; a frozen connection keeps its bytes.
    private func pump(id: Int, from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var poll = pollfd(fd: from, events: Int16(POLLIN), revents: 0)
        while true {
            let frozen = state.withLock { $0.connections[id]?.frozen }
            guard let frozen else { break }
            if frozen {
                usleep(20_000)
                continue
            }
            guard Glibc.poll(&poll, 1, 50) >= 0 else { break }
            if poll.revents == 0 { continue }
            if state.withLock({ $0.connections[id]?.frozen ?? true }) { continue }
            let count = read(from, &buffer, buffer.count)
            if count <= 0 { break }
            var sent = 0
            while sent < count {
                let n = buffer[sent..<count].withUnsafeBytes { write(to, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                sent += n
            }
        }
        // One side ended: end both (the other pump sees its read fail and leaves).
        let pair = state.withLock { $0.connections.removeValue(forKey: id) }
        Glibc.shutdown(from, Int32(SHUT_RDWR))
        Glibc.shutdown(to, Int32(SHUT_RDWR))
        if let pair {
            // The pump that removed the pair waits for the other to leave before closing.
            usleep(100_000)
            close(pair.client)
            close(pair.server)
        }
    }
}
