import Foundation
import Redis

/// A real `redis-server` for tests: started on a free loopback port in a temporary directory,
/// stopped (and its directory removed) by `stop()` or when released.
public final class RedisServerProcess: @unchecked Sendable {
    /// The port it listens on.
    public let port: Int
    /// Its working directory (AOF files).
    public let directory: URL
    private let appendOnly: Bool
    private let lock = NSLock()
    private var server: LocalRedisServer?

    /// `redis://127.0.0.1:PORT`.
    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts redis-server and waits until it answers PING. Without a `port`, a free one is chosen,
    /// and another one when a parallel test took it first.
    public init(port wanted: Int? = nil, appendOnly: Bool = false) throws {
        self.appendOnly = appendOnly
        var attempt = 0
        while true {
            let port = wanted ?? FreePort.next()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "bitten-redis-\(port)-\(UUID().uuidString)")
            do {
                let started = try LocalRedisServer(port: port, directory: directory.path, appendOnly: appendOnly)
                self.port = port
                self.directory = directory
                server = started
                return
            } catch {
                attempt += 1
                if wanted != nil || attempt >= 5 { throw error }
            }
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts (or restarts) the server on the same port and directory.
    public func start() throws {
        let started = try LocalRedisServer(port: port, directory: directory.path, appendOnly: appendOnly)
        lock.withLock { server = started }
    }

    /// Stops the server (SIGTERM, waiting for it to exit).
    public func stop() {
        let running = lock.withLock { () -> LocalRedisServer? in
            defer { server = nil }
            return server
        }
        running?.stop()
    }
}

extension RedisServerProcess {
    /// Whether something answers PING on 127.0.0.1:`port`.
    public static func isUp(port: Int) -> Bool {
        (try? RedisConnection(url: RedisURL(host: "127.0.0.1", port: port), timeout: .milliseconds(300)).command([
            "PING"
        ])) == .status("PONG")
    }
}

/// A failure inside the test helpers.
public struct TestSupportError: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String
    /// A failure with its reason.
    public init(_ description: String) { self.description = description }
}
