import Foundation
import Redis

/// Finds TCP ports on the loopback interface that are free right now.
///
/// Ports come from 23000–32767, below Linux's ephemeral range (32768–60999): a port the kernel picks
/// for a port-0 bind or an outgoing connection of a parallel test can then never take ours between
/// the check and the bind (seen as a flaky "Address already in use"). Local Redis Clusters take
/// 10000–12999 and their bus ports 20000–22999 (`LocalRedisCluster.freePorts`), apart from these too.
public enum FreePort {
    private static let taken = NSLock()
    nonisolated(unsafe) private static var handedOut: Set<Int> = []

    /// A port on 127.0.0.1 that nothing listens on at this moment (and not handed out before by this process).
    public static func next() -> Int {
        for _ in 0..<1000 {
            let port = Int.random(in: 23_000...32_767)
            taken.lock()
            let fresh = handedOut.insert(port).inserted
            taken.unlock()
            if fresh && isFree(port) { return port }
        }
        return LocalRedisServer.freeLoopbackPort()
    }

    /// `count` distinct free ports.
    public static func several(_ count: Int) -> [Int] {
        var ports: Set<Int> = []
        while ports.count < count { ports.insert(next()) }
        return Array(ports)
    }

    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }
}
