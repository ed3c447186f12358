import Redis

/// Finds TCP ports on the loopback interface that are free right now.
public enum FreePort {
    /// A port on 127.0.0.1 that nothing listens on at this moment.
    public static func next() -> Int { LocalRedisServer.freeLoopbackPort() }

    /// `count` distinct free ports.
    public static func several(_ count: Int) -> [Int] {
        var ports: Set<Int> = []
        while ports.count < count { ports.insert(next()) }
        return Array(ports)
    }
}
